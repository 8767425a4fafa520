/**
 * The profile schema: what a profile holds, how each field is validated, and how a
 * `key=value` string (from `profile add` flags, `profile edit --set`, or the wizard) becomes a
 * typed value. Messages name the field and say what would be accepted, so that the CLI can
 * print them as one line.
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
const HOST_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[?[0-9a-fA-F:.]+\]?$/;
// RFC 5321/5322 addr-spec, deliberately strict: no quoted local parts, no comments, no spaces.
const EMAIL_RE =
  /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const HAS_CRLF = /[\r\n\0]/;

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

export interface RetryPolicy {
  mode: (typeof RETRY_MODES)[number];
  statusCodes?: number[];
  maxAttempts: number;
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  mode: 'any',
  maxAttempts: 4,
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 30_000,
};

export interface ServerSettings<S extends string> {
  host: string;
  port: number;
  security: S;
}

export interface Profile {
  provider: Provider;
  tenant?: string;
  authority?: string;
  issuer?: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  deviceEndpoint?: string;
  revocationEndpoint?: string;
  clientId: string;
  clientType: (typeof CLIENT_TYPES)[number];
  certificateThumbprint?: string;
  tokenEndpointAuth?: (typeof TOKEN_ENDPOINT_AUTH)[number];
  flow: Flow;
  redirectUri?: string;
  redirectPort?: number;
  /** Seconds an SMTP attempt may wait on a silent server (connect, greeting, each reply); default 30. */
  timeout?: number;
  scopes: string[];
  capabilities: Capability[];
  prompt?: (typeof PROMPTS)[number];
  loginHint?: string;
  domainHint?: string;
  authParams?: Record<string, string>;
  user?: string;
  from?: string;
  replyTo?: string;
  signature?: string;
  smtp?: ServerSettings<(typeof SMTP_SECURITY)[number]>;
  imap?: ServerSettings<(typeof IMAP_SECURITY)[number]>;
  sasl: (typeof SASL)[number];
  retry: RetryPolicy;
  storage: (typeof STORAGE)[number];
  clientSecretExpires?: string;
  /** sendmail and send --queue: keep a message that cannot be sent now in the local queue (default on). */
  queue?: (typeof QUEUE_MODES)[number];
}

/** A validation failure: the dotted field path and a message that names it. */
export class Invalid extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(
  o: Obj,
  key: string,
  path: string,
  required: boolean,
  check?: (s: string) => string | undefined,
): void {
  const v = o[key];
  if (v === undefined) {
    if (required) throw new Invalid(path, `${path} is required`);
    return;
  }
  if (typeof v !== 'string') throw new Invalid(path, `${path} must be a string`);
  if (HAS_CRLF.test(v) && key !== 'signature')
    throw new Invalid(path, `${path} must not contain line breaks`);
  const bad = check?.(v);
  if (bad) throw new Invalid(path, bad);
}

const oneOf =
  (path: string, values: readonly string[]) =>
  (s: string): string | undefined =>
    values.includes(s)
      ? undefined
      : `${path} must be one of: ${values.join(', ')} (got ${JSON.stringify(s)})`;

const httpsUrl =
  (path: string) =>
  (s: string): string | undefined => {
    try {
      if (new URL(s).protocol === 'https:') return undefined;
    } catch {
      // fall through
    }
    return `${path} must be an https:// URL`;
  };

function int(
  o: Obj,
  key: string,
  path: string,
  min: number,
  max: number,
  required: boolean,
  what?: string,
): void {
  const v = o[key];
  if (v === undefined) {
    if (required) throw new Invalid(path, `${path} is required`);
    return;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new Invalid(path, `${path} must be ${what ?? `a whole number from ${min} to ${max}`}`);
  }
}

function onlyKeys(o: Obj, keys: readonly string[], prefix: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new Invalid(prefix + k, `unknown field ${JSON.stringify(prefix + k)}`);
  }
}

const PROFILE_KEYS = [
  'provider',
  'tenant',
  'authority',
  'issuer',
  'authorizationEndpoint',
  'tokenEndpoint',
  'deviceEndpoint',
  'revocationEndpoint',
  'clientId',
  'clientType',
  'certificateThumbprint',
  'tokenEndpointAuth',
  'flow',
  'redirectUri',
  'redirectPort',
  'timeout',
  'scopes',
  'capabilities',
  'prompt',
  'loginHint',
  'domainHint',
  'authParams',
  'user',
  'from',
  'replyTo',
  'signature',
  'smtp',
  'imap',
  'sasl',
  'retry',
  'storage',
  'clientSecretExpires',
  'queue',
] as const;

function server(o: Obj, which: 'smtp' | 'imap'): void {
  const v = o[which];
  if (v === undefined) return;
  if (!isObj(v)) throw new Invalid(which, `${which} must be an object with host, port and security`);
  onlyKeys(v, ['host', 'port', 'security'], which + '.');
  str(v, 'host', `${which}.host`, true, (s) =>
    HOST_RE.test(s) ? undefined : `${which}.host must be a host name or IP address`,
  );
  int(v, 'port', `${which}.port`, 1, 65535, true);
  str(
    v,
    'security',
    `${which}.security`,
    true,
    oneOf(`${which}.security`, which === 'smtp' ? SMTP_SECURITY : IMAP_SECURITY),
  );
}

function retry(o: Obj): void {
  const v = o.retry;
  if (!isObj(v))
    throw new Invalid(
      'retry',
      'retry must be an object (mode, maxAttempts, initialDelayMs, multiplier, maxDelayMs)',
    );
  onlyKeys(v, ['mode', 'statusCodes', 'maxAttempts', 'initialDelayMs', 'multiplier', 'maxDelayMs'], 'retry.');
  str(v, 'mode', 'retry.mode', true, oneOf('retry.mode', RETRY_MODES));
  int(v, 'maxAttempts', 'retry.maxAttempts', 1, 20, true);
  int(v, 'initialDelayMs', 'retry.initialDelayMs', 0, 600_000, true);
  int(v, 'maxDelayMs', 'retry.maxDelayMs', 0, 3_600_000, true);
  if (typeof v.multiplier !== 'number' || !(v.multiplier >= 1 && v.multiplier <= 10)) {
    throw new Invalid('retry.multiplier', 'retry.multiplier must be a number from 1 to 10');
  }
  if (v.statusCodes !== undefined) {
    if (
      !Array.isArray(v.statusCodes) ||
      !v.statusCodes.every((c) => Number.isInteger(c) && c >= 100 && c <= 599)
    ) {
      throw new Invalid(
        'retry.statusCodes',
        'retry.statusCodes must be a list of status codes from 100 to 599',
      );
    }
  }
}

function stringList(o: Obj, key: string, check: (s: string) => string | undefined): void {
  const v = o[key];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new Invalid(key, `${key} must be a list of strings`);
  for (const s of v as string[]) {
    const bad = check(s);
    if (bad) throw new Invalid(key, bad);
  }
}

/** Check a profile; throws Invalid naming the first bad field. Returns it typed. */
export function validateProfile(raw: unknown): Profile {
  if (!isObj(raw)) throw new Invalid('', 'a profile must be a JSON object');
  const o = raw;
  onlyKeys(o, PROFILE_KEYS, '');
  str(o, 'provider', 'provider', true, oneOf('provider', PROVIDERS));
  str(o, 'tenant', 'tenant', false, (s) =>
    isTenant(s)
      ? undefined
      : 'tenant must be a tenant ID (GUID), a domain like contoso.com, common, organizations or consumers',
  );
  for (const k of [
    'authority',
    'issuer',
    'authorizationEndpoint',
    'tokenEndpoint',
    'deviceEndpoint',
    'revocationEndpoint',
  ]) {
    str(o, k, k, false, httpsUrl(k));
  }
  str(o, 'clientId', 'clientId', true, (s) => (s.trim() ? undefined : 'clientId must not be empty'));
  str(o, 'clientType', 'clientType', true, oneOf('clientType', CLIENT_TYPES));
  str(o, 'certificateThumbprint', 'certificateThumbprint', false, (s) =>
    /^[0-9A-Fa-f]{40}$|^[0-9A-Fa-f]{64}$/.test(s)
      ? undefined
      : "certificateThumbprint must be the certificate's SHA-1 (40 hex digits) or SHA-256 (64) thumbprint",
  );
  str(o, 'tokenEndpointAuth', 'tokenEndpointAuth', false, oneOf('tokenEndpointAuth', TOKEN_ENDPOINT_AUTH));
  str(o, 'flow', 'flow', true, oneOf('flow', FLOWS));
  str(o, 'redirectUri', 'redirectUri', false, (s) => {
    try {
      const u = new URL(s);
      if (u.protocol === 'http:' || u.protocol === 'https:') return undefined;
    } catch {
      // fall through
    }
    return 'redirectUri must be a URL like http://localhost:53682/';
  });
  int(o, 'redirectPort', 'redirectPort', 1, 65535, false);
  int(o, 'timeout', 'timeout', 1, 3600, false);
  stringList(o, 'scopes', (s) =>
    /^\S+$/.test(s) ? undefined : `scope ${JSON.stringify(s)} must not contain spaces`,
  );
  stringList(o, 'capabilities', oneOf('capabilities', CAPABILITIES));
  str(o, 'prompt', 'prompt', false, oneOf('prompt', PROMPTS));
  str(o, 'loginHint', 'loginHint', false);
  str(o, 'domainHint', 'domainHint', false);
  if (o.authParams !== undefined) {
    if (!isObj(o.authParams)) throw new Invalid('authParams', 'authParams must be an object of NAME: VALUE');
    for (const [k, v] of Object.entries(o.authParams)) {
      if (!/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(k)) {
        throw new Invalid(
          'authParams',
          `authorization parameter name ${JSON.stringify(k.slice(0, 70))} is invalid: use letters, digits, _ . - (up to 64)`,
        );
      }
      if (RESERVED_AUTH_PARAMS.has(k)) {
        throw new Invalid(
          `authParams.${k}`,
          `authorization parameter ${k} is set by oauthmail itself (${k === 'scope' ? 'use the profile key scopes' : 'it carries the sign-in protection or the app identity'})`,
        );
      }
      if (typeof v !== 'string' || HAS_CRLF.test(v)) {
        throw new Invalid(`authParams.${k}`, `authParams.${k} must be a one-line string`);
      }
    }
  }
  str(o, 'user', 'user', false, (s) =>
    isEmail(s) ? undefined : 'user must be an email address like name@example.com',
  );
  for (const k of ['from', 'replyTo']) {
    str(o, k, k, false, (s) =>
      isMailbox(s) ? undefined : `${k} must be an address like name@example.com or "Name <name@example.com>"`,
    );
  }
  str(o, 'signature', 'signature', false, (s) =>
    s.length <= 10_000 ? undefined : 'signature must be at most 10,000 characters',
  );
  server(o, 'smtp');
  server(o, 'imap');
  str(o, 'sasl', 'sasl', true, oneOf('sasl', SASL));
  retry(o);
  str(o, 'storage', 'storage', true, oneOf('storage', STORAGE));
  str(o, 'queue', 'queue', false, oneOf('queue', QUEUE_MODES));
  str(o, 'clientSecretExpires', 'clientSecretExpires', false, (s) =>
    /^\d{4}-\d{2}-\d{2}$/.test(s) &&
    !Number.isNaN(Date.parse(s + 'T00:00:00Z')) &&
    new Date(s + 'T00:00:00Z').toISOString().startsWith(s)
      ? undefined
      : 'clientSecretExpires must be a real date like 2027-06-30',
  );

  const p = o as unknown as Profile;
  if (p.provider === 'microsoft' && !GUID_RE.test(p.clientId)) {
    throw new Invalid(
      'clientId',
      'clientId must be the Application (client) ID GUID from the app registration, like 00000000-0000-0000-0000-000000000000',
    );
  }
  if (p.provider === 'custom' && !p.tokenEndpoint && !p.issuer) {
    throw new Invalid(
      'tokenEndpoint',
      'a custom provider needs tokenEndpoint (and authorizationEndpoint) or an issuer with discovery',
    );
  }
  if (p.flow === 'service-account' && p.provider !== 'google') {
    throw new Invalid('flow', 'flow service-account is for Google profiles only');
  }
  if (p.flow === 'client-credentials' && p.clientType === 'public') {
    throw new Invalid(
      'clientType',
      'flow client-credentials needs a confidential app: set clientType to secret or certificate',
    );
  }
  if (p.clientType === 'certificate' && p.provider === 'microsoft' && !p.certificateThumbprint) {
    throw new Invalid('certificateThumbprint', 'clientType certificate needs certificateThumbprint');
  }
  return p;
}

export const CONFIG_VERSION = 1;

export interface Config {
  version: typeof CONFIG_VERSION;
  /**
   * This config's own random ID (CONFIG_ID_RE), set on first use: it keys the config's keychain
   * items, so that two config folders with a profile of the same name keep separate sign-ins.
   */
  id?: string;
  defaultProfile?: string;
  profiles: Record<string, Profile>;
  /**
   * Profiles in the file that do not validate (a hand edit gone wrong), kept as they are: written
   * back unchanged, refused (exit 3, with the fix) by commands that use them, and mended by
   * `profile edit`. One broken profile does not stop the others.
   */
  broken?: Record<string, BrokenProfile>;
}

export interface BrokenProfile {
  /** The profile's JSON as found in the file. */
  raw: unknown;
  /** "invalid config FILE: profile "work": smtp.port: ..." */
  message: string;
}

/** Authorization-request parameters oauthmail sets itself (RFC 6749 §4.1.1, RFC 7636, OIDC nonce). */
const RESERVED_AUTH_PARAMS = new Set([
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
]);

export function emptyConfig(): Config {
  return { version: CONFIG_VERSION, profiles: Object.create(null) as Record<string, Profile> };
}

/** Check the config's top level; profiles are checked one by one with validateProfile. */
export const CONFIG_ID_RE = /^[0-9a-f]{16,64}$/;

export function validateConfigTop(raw: Obj): { id?: string; defaultProfile?: string; profiles: Obj } {
  onlyKeys(raw, ['version', 'id', 'defaultProfile', 'profiles'], '');
  if (raw.id !== undefined && (typeof raw.id !== 'string' || !CONFIG_ID_RE.test(raw.id))) {
    throw new Invalid('id', 'id must be 16 to 64 lowercase hex digits (remove it and one is made anew)');
  }
  if (raw.version !== CONFIG_VERSION) {
    throw new Invalid(
      'version',
      `version must be ${CONFIG_VERSION} (got ${JSON.stringify(raw.version ?? null)})`,
    );
  }
  if (
    raw.defaultProfile !== undefined &&
    (typeof raw.defaultProfile !== 'string' || !PROFILE_NAME_RE.test(raw.defaultProfile))
  ) {
    throw new Invalid('defaultProfile', 'defaultProfile must be a profile name');
  }
  const profiles = raw.profiles ?? {};
  if (!isObj(profiles)) throw new Invalid('profiles', 'profiles must be an object of NAME: profile');
  for (const name of Object.keys(profiles)) {
    if (!PROFILE_NAME_RE.test(name)) {
      throw new Invalid(
        `profiles.${name}`,
        `profile name ${JSON.stringify(name)} is invalid: use letters, digits, . _ - (up to 64)`,
      );
    }
  }
  const out: { id?: string; defaultProfile?: string; profiles: Obj } = { profiles };
  if (typeof raw.id === 'string') out.id = raw.id;
  if (typeof raw.defaultProfile === 'string') out.defaultProfile = raw.defaultProfile;
  return out;
}

export function validateProfileName(name: string): string | undefined {
  if (!PROFILE_NAME_RE.test(name)) {
    return `invalid profile name ${JSON.stringify(name)}: use 1-64 letters, digits, dot, underscore or dash, starting with a letter or digit`;
  }
  return undefined;
}
