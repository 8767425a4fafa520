/**
 * The SASL OAuth mechanisms, encoded in one place for `send`, `fetch` (through the libraries) and
 * `test`:
 * - XOAUTH2 (Google's and Microsoft's): "user=USER^Aauth=Bearer TOKEN^A^A".
 * - OAUTHBEARER (RFC 7628 §3.1): "n,a=USER,^Ahost=H^Aport=P^Aauth=Bearer TOKEN^A^A", the user
 *   in a GS2 header (RFC 5801: "=" and "," escaped).
 * On a refused token the server answers with an error challenge, base64 of a JSON object
 * (RFC 7628 §3.2.2); the client answers it (XOAUTH2: an empty line; OAUTHBEARER: %x01) and gets
 * the final refusal. Each initial response is registered as a secret so that no log shows it.
 */
import { registerSecret } from '../util/redact.js';

export type OauthMechanism = 'XOAUTH2' | 'OAUTHBEARER';

/** The base64 initial response of `mech` for `user` with `token` (registered as a secret). */
export function saslInitialResponse(
  mech: OauthMechanism,
  user: string,
  token: string,
  server: { host: string; port: number | string },
): string {
  const raw =
    mech === 'XOAUTH2'
      ? `user=${user}\x01auth=Bearer ${token}\x01\x01`
      : `n,a=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},\x01host=${server.host}\x01port=${String(server.port)}\x01auth=Bearer ${token}\x01\x01`;
  const ir = Buffer.from(raw).toString('base64');
  registerSecret(ir);
  return ir;
}

/** The client's answer to an error challenge, which makes the server send its final reply. */
export function saslErrorAnswer(mech: OauthMechanism): string {
  return mech === 'XOAUTH2' ? '' : 'AQ==';
}

/** Decode a SASL error challenge: base64 of a JSON object (RFC 7628 §3.2.2). */
export function decodeSaslError(b64: string): Record<string, unknown> | undefined {
  try {
    const text = Buffer.from(b64.trim(), 'base64').toString('utf8');
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** One short clause for the server's OAuth error JSON. */
export function describeOauthError(o: Record<string, unknown>): string {
  const status = typeof o.status === 'string' ? o.status : undefined;
  const scope = typeof o.scope === 'string' ? o.scope : undefined;
  const parts: string[] = [];
  switch (status) {
    case 'invalid_token':
    case '401':
      parts.push('the token is invalid or expired');
      break;
    case 'insufficient_scope':
    case '403':
      parts.push('the token lacks the scope the server requires');
      break;
    case 'invalid_request':
    case '400':
      parts.push('the server found the SASL request malformed (user name or host/port fields)');
      break;
    default:
      if (status) parts.push(`status ${status}`);
  }
  if (scope) parts.push(`required scope: ${scope}`);
  return parts.join('; ');
}

