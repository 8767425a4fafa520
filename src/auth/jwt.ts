/**
 * Read a JWT's header and claims WITHOUT verifying the signature (RFC 7519 §7.2 steps 1-6
 * only). For display (`status`, `token --json`) and diagnosis; never for a trust decision:
 * the resource server (Exchange, Dovecot) is the one that verifies.
 *
 * Microsoft says access tokens are opaque to clients and may be encrypted (JWE, five parts)
 * or change format; callers must cope with `undefined`.
 */

export interface DecodedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

function part(s: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(s)) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Header and claims of a JWS compact serialization, or undefined if it is not one. */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.trim().split('.');
  if (parts.length !== 3) return undefined;
  const header = part(parts[0]!);
  const claims = part(parts[1]!);
  if (!header || !claims) return undefined;
  return { header, claims };
}

/** The claims worth showing: who, for what, until when. Never the token itself. */
export interface TokenSummary {
  audience?: string;
  subject?: string;
  user?: string;
  appId?: string;
  tenantId?: string;
  scopes: string[];
  roles: string[];
  expiresAt?: Date;
  issuedAt?: Date;
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const date = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? new Date(v * 1000) : undefined);

export function summarizeJwt(token: string): TokenSummary | undefined {
  const d = decodeJwt(token);
  if (!d) return undefined;
  const c = d.claims;
  const aud = Array.isArray(c.aud) ? str(c.aud[0]) : str(c.aud);
  const scp = str(c.scp) ?? str(c.scope);
  return {
    audience: aud,
    subject: str(c.sub),
    user: str(c.upn) ?? str(c.preferred_username) ?? str(c.unique_name) ?? str(c.email),
    appId: str(c.appid) ?? str(c.azp),
    tenantId: str(c.tid),
    scopes: scp ? scp.split(' ').filter(Boolean) : [],
    roles: Array.isArray(c.roles) ? c.roles.filter((r): r is string => typeof r === 'string') : [],
    expiresAt: date(c.exp),
    issuedAt: date(c.iat),
  };
}
