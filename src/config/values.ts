/**
 * The values profile keys take: the closed lists (providers, flows, security modes...) and the
 * checks for addresses, tenants and names. The field table (fields.ts) is built from these.
 */

export const PROVIDERS = ['microsoft', 'google', 'custom'] as const;
export type Provider = (typeof PROVIDERS)[number];
export const FLOWS = ['browser', 'device', 'client-credentials', 'service-account'] as const;
export type Flow = (typeof FLOWS)[number];
export const CLIENT_TYPES = ['public', 'secret', 'certificate'] as const;
export const PROMPTS = ['select_account', 'login', 'consent', 'none'] as const;
export const SMTP_SECURITY = ['starttls', 'tls', 'none'] as const;
export const IMAP_SECURITY = ['tls', 'starttls', 'none'] as const;
export const SASL = ['auto', 'xoauth2', 'oauthbearer'] as const;
export const STORAGE = ['auto', 'keychain', 'file'] as const;
export const CAPABILITIES = ['send', 'read'] as const;
export type Capability = (typeof CAPABILITIES)[number];
export const RETRY_MODES = ['none', 'any', 'status'] as const;
export const QUEUE_MODES = ['on', 'off'] as const;
export const TOKEN_ENDPOINT_AUTH = ['client_secret_basic', 'client_secret_post'] as const;

export const PROFILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const DOMAIN_RE = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;
export const HOST_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[?[0-9a-fA-F:.]+\]?$/;
// RFC 5321/5322 addr-spec, deliberately strict: no quoted local parts, no comments, no spaces.
const EMAIL_RE =
  /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
export const HAS_CRLF = /[\r\n\0]/;

export function isEmail(s: string): boolean {
  return s.length <= 254 && EMAIL_RE.test(s) && s.split('@')[0]!.length <= 64;
}

/** "Name <addr@x>" or "addr@x". */
export function isMailbox(s: string): boolean {
  if (HAS_CRLF.test(s)) return false;
  const m = /^\s*(?:"?([^"<>]*)"?\s*)?<([^<>]+)>\s*$/.exec(s);
  if (m) return isEmail(m[2]!.trim());
  return isEmail(s.trim());
}

export function isTenant(s: string): boolean {
  return ['common', 'organizations', 'consumers'].includes(s) || GUID_RE.test(s) || DOMAIN_RE.test(s);
}

/** A real calendar date written YYYY-MM-DD (2027-02-30 is refused). */
export function isIsoDate(s: string): boolean {
  return (
    /^\d{4}-\d{2}-\d{2}$/.test(s) &&
    !Number.isNaN(Date.parse(s + 'T00:00:00Z')) &&
    new Date(s + 'T00:00:00Z').toISOString().startsWith(s)
  );
}

/** Authorization-request parameters oauthmail sets itself (RFC 6749 §4.1.1, RFC 7636, OIDC nonce). */
export const RESERVED_AUTH_PARAMS = new Set([
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
]);
