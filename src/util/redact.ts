/**
 * Redaction of secrets in anything we print.
 *
 * Two layers: every secret value the process handles is registered here (tokens, client
 * secrets, passphrases) and replaced wherever it shows up; and shapes that look like
 * credentials (JWTs, bearer headers, token fields in JSON or form bodies, base64 XOAUTH2
 * strings) are masked even if nobody registered them.
 */

const known = new Set<string>();

/** Remember a secret so that every later redact() call masks it. Short values are ignored. */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string' || value.length < 8) return;
  known.add(value);
  // the same secret inside a base64 SASL string or URL-encoded form
  known.add(encodeURIComponent(value));
}

export function clearRegisteredSecrets(): void {
  known.clear();
}

const PATTERNS: Array<[RegExp, string]> = [
  // JWT / JWS (three base64url parts; the first starts with {" encoded)
  [/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, '[REDACTED:jwt]'],
  // Authorization headers and SASL "auth=Bearer x"
  [/(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, '$1[REDACTED]'],
  // JSON fields and form fields that carry credentials
  [
    /("(?:access_token|refresh_token|id_token|client_secret|password|passphrase|code_verifier|assertion|private_key|client_assertion|code|device_code|secret)"\s*:\s*")(?!(?:\.\.\.|…|)")[^"]*(")/gi,
    '$1[REDACTED]$2',
  ],
  [
    /\b((?:access_token|refresh_token|id_token|client_secret|password|code_verifier|assertion|client_assertion|device_code)=)[^&\s"]+/gi,
    '$1[REDACTED]',
  ],
  // an authorization code in a redirect URL or form body (not "error code=..." in prose)
  [/([?&]code=)[^&\s"]+/g, '$1[REDACTED]'],
  // PEM private keys
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, '[REDACTED:private-key]'],
  // base64 XOAUTH2 initial responses ("user=...\x01auth=Bearer ...") start with dXNlcj
  [/dXNlcj[A-Za-z0-9+/]{16,}={0,2}/g, '[REDACTED:sasl]'],
  // OAUTHBEARER initial responses start with "n,a=" / "n,," -> biw
  [/\bbiw[A-Za-z0-9+/=]{24,}/g, '[REDACTED:sasl]'],
];

export function redact(text: string): string {
  let out = text;
  // longest first, so that a secret containing another is masked whole
  for (const s of [...known].sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join('[REDACTED]');
  }
  for (const [re, rep] of PATTERNS) out = out.replace(re, rep);
  return out;
}
