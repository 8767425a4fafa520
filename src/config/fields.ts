/**
 * Settable profile keys: `profile add --set key=value`, `profile edit NAME --set key=value`,
 * `--unset key`, and the flags that are sugar for them. A key is matched case-insensitively
 * with dashes and underscores ignored, so `client-id`, `client_id` and `clientId` are one key.
 * Values are coerced here (numbers, lists, host:port); the whole profile is validated by the
 * schema afterwards, so a value is checked both on its own and in context.
 */
import { UsageError } from '../errors/index.js';
import type { Profile } from './schema.js';

type Draft = Record<string, unknown>;

type Kind = 'string' | 'int' | 'number' | 'list' | 'intlist' | 'hostport' | 'map';

interface FieldSpec {
  key: string;
  kind: Kind;
  help: string;
}

export const FIELDS: readonly FieldSpec[] = [
  { key: 'provider', kind: 'string', help: 'microsoft, google or custom' },
  { key: 'tenant', kind: 'string', help: 'Microsoft tenant: ID, domain, common, organizations, consumers' },
  { key: 'authority', kind: 'string', help: 'Microsoft authority URL (sovereign clouds, test providers)' },
  { key: 'issuer', kind: 'string', help: 'custom provider issuer URL (discovery)' },
  { key: 'authorizationEndpoint', kind: 'string', help: 'authorization endpoint URL' },
  { key: 'tokenEndpoint', kind: 'string', help: 'token endpoint URL' },
  { key: 'deviceEndpoint', kind: 'string', help: 'device authorization endpoint URL (RFC 8628)' },
  { key: 'revocationEndpoint', kind: 'string', help: 'token revocation endpoint URL (RFC 7009)' },
  { key: 'clientId', kind: 'string', help: 'application (client) ID' },
  { key: 'clientType', kind: 'string', help: 'public, secret or certificate' },
  { key: 'certificateThumbprint', kind: 'string', help: 'thumbprint of the app certificate (hex)' },
  { key: 'tokenEndpointAuth', kind: 'string', help: 'client_secret_basic or client_secret_post (custom)' },
  { key: 'flow', kind: 'string', help: 'browser, device, client-credentials or service-account' },
  { key: 'redirectUri', kind: 'string', help: 'fixed redirect URI registered for the app' },
  { key: 'redirectPort', kind: 'int', help: 'fixed loopback port for the redirect' },
  {
    key: 'timeout',
    kind: 'int',
    help: 'seconds an SMTP attempt waits on a silent server (default 30); send --timeout overrides',
  },
  { key: 'scopes', kind: 'list', help: 'scopes, separated by commas or spaces' },
  { key: 'capabilities', kind: 'list', help: 'send, read (picks the scopes)' },
  { key: 'prompt', kind: 'string', help: 'select_account, login, consent or none' },
  { key: 'loginHint', kind: 'string', help: 'account to pre-fill at sign-in' },
  { key: 'domainHint', kind: 'string', help: 'domain hint for the sign-in page' },
  { key: 'authParams', kind: 'map', help: 'extra authorization parameters, authParams.NAME=VALUE' },
  { key: 'user', kind: 'string', help: 'mailbox user (SASL user); may differ from the signed-in user' },
  { key: 'from', kind: 'string', help: 'default From address' },
  { key: 'replyTo', kind: 'string', help: 'default Reply-To address' },
  { key: 'signature', kind: 'string', help: 'text appended to plain-text bodies' },
  { key: 'smtp', kind: 'hostport', help: 'SMTP server as host:port' },
  { key: 'smtp.host', kind: 'string', help: 'SMTP host' },
  { key: 'smtp.port', kind: 'int', help: 'SMTP port' },
  { key: 'smtp.security', kind: 'string', help: 'starttls, tls or none' },
  { key: 'imap', kind: 'hostport', help: 'IMAP server as host:port' },
  { key: 'imap.host', kind: 'string', help: 'IMAP host' },
  { key: 'imap.port', kind: 'int', help: 'IMAP port' },
  { key: 'imap.security', kind: 'string', help: 'tls, starttls or none' },
  {
    key: 'sasl',
    kind: 'string',
    help: 'auto (IMAP: OAUTHBEARER when offered, else XOAUTH2; SMTP: XOAUTH2), xoauth2 or oauthbearer',
  },
  { key: 'retry.mode', kind: 'string', help: 'none, any or status' },
  { key: 'retry.statusCodes', kind: 'intlist', help: 'status codes to retry with mode status' },
  { key: 'retry.maxAttempts', kind: 'int', help: 'attempts in all, 1-20' },
  { key: 'retry.initialDelayMs', kind: 'int', help: 'first wait in milliseconds' },
  { key: 'retry.multiplier', kind: 'number', help: 'factor applied to the wait after each try' },
  { key: 'retry.maxDelayMs', kind: 'int', help: 'longest wait in milliseconds' },
  { key: 'storage', kind: 'string', help: 'auto, keychain or file' },
  { key: 'clientSecretExpires', kind: 'string', help: 'client secret expiry date, YYYY-MM-DD' },
  {
    key: 'queue',
    kind: 'string',
    help: 'on (default) or off: sendmail keeps a message it cannot send now in the local queue',
  },
];

const norm = (k: string) => k.toLowerCase().replace(/[-_.]/g, '');

export function findField(key: string): FieldSpec | undefined {
  const n = norm(key);
  return FIELDS.find((f) => norm(f.key) === n);
}

function parseInt10(key: string, raw: string): number {
  if (!/^\d{1,10}$/.test(raw.trim())) {
    throw new UsageError(`${key} must be a whole number (got ${JSON.stringify(raw)})`, { code: 'bad_value' });
  }
  return Number(raw.trim());
}

function splitList(raw: string): string[] {
  return raw
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function setPath(draft: Draft, path: string, value: unknown): void {
  const parts = path.split('.');
  let obj: Draft = draft;
  for (const p of parts.slice(0, -1)) {
    const next = obj[p];
    if (typeof next !== 'object' || next === null) obj[p] = {};
    obj = obj[p] as Draft;
  }
  const last = parts[parts.length - 1]!;
  if (value === undefined) delete obj[last];
  else obj[last] = value;
}

/** A copy of the authParams map without a prototype: `__proto__` or `constructor` are names like any other. */
function paramMap(v: unknown): Record<string, string> {
  return Object.assign(Object.create(null) as Record<string, string>, v ?? {});
}

/** Apply one `key=value` (value undefined: unset) to a draft profile. */
export function applySetting(draft: Draft, key: string, value: string | undefined): void {
  let field = findField(key);
  let mapKey: string | undefined;
  if (!field) {
    const m = /^authparams?\.(.+)$/i.exec(key);
    if (m) {
      field = FIELDS.find((f) => f.key === 'authParams');
      mapKey = m[1];
    }
  }
  if (!field) {
    throw new UsageError(`unknown profile key ${JSON.stringify(key)}`, {
      code: 'unknown_key',
      hint: 'run `oauthmail profile keys` to list the keys you can set',
    });
  }
  if (value === undefined) {
    if (field.kind === 'map' && mapKey) {
      const map = paramMap(draft.authParams);
      delete map[mapKey];
      draft.authParams = map;
    } else if (field.kind === 'hostport') {
      setPath(draft, field.key, undefined);
    } else {
      setPath(draft, field.key, undefined);
    }
    return;
  }
  switch (field.kind) {
    case 'string':
      setPath(draft, field.key, value);
      return;
    case 'int':
      setPath(draft, field.key, parseInt10(field.key, value));
      return;
    case 'number': {
      const n = Number(value);
      if (!Number.isFinite(n)) {
        throw new UsageError(`${field.key} must be a number (got ${JSON.stringify(value)})`, {
          code: 'bad_value',
        });
      }
      setPath(draft, field.key, n);
      return;
    }
    case 'list':
      setPath(draft, field.key, splitList(value));
      return;
    case 'intlist':
      setPath(
        draft,
        field.key,
        splitList(value).map((v) => parseInt10(field.key, v)),
      );
      return;
    case 'map': {
      if (!mapKey) {
        // authParams=k=v,k2=v2
        const map = paramMap(undefined);
        for (const pair of splitList(value)) {
          const i = pair.indexOf('=');
          if (i <= 0) {
            throw new UsageError(`authParams must be NAME=VALUE pairs (got ${JSON.stringify(pair)})`, {
              code: 'bad_value',
            });
          }
          map[pair.slice(0, i)] = pair.slice(i + 1);
        }
        draft.authParams = map;
      } else {
        const map = paramMap(draft.authParams);
        map[mapKey] = value;
        draft.authParams = map;
      }
      return;
    }
    case 'hostport': {
      const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(value.trim());
      if (!m) {
        throw new UsageError(
          `${field.key} must be host:port, like smtp.example.com:587 (got ${JSON.stringify(value)})`,
          {
            code: 'bad_value',
          },
        );
      }
      const existing = (draft[field.key] as Record<string, unknown> | undefined) ?? {};
      const port = Number(m[2]);
      const security =
        existing.security ??
        (field.key === 'smtp' ? (port === 465 ? 'tls' : 'starttls') : port === 143 ? 'starttls' : 'tls');
      draft[field.key] = { ...existing, host: m[1]!.replace(/^\[|\]$/g, ''), port, security };
      return;
    }
  }
}

/** Parse "key=value" from argv. */
export function parseAssignment(s: string): [string, string] {
  const i = s.indexOf('=');
  if (i <= 0) {
    throw new UsageError(`--set takes key=value (got ${JSON.stringify(s)})`, {
      code: 'bad_usage',
      hint: 'example: oauthmail profile edit work --set smtp.port=587',
    });
  }
  return [s.slice(0, i).trim(), s.slice(i + 1)];
}

export type { Profile };
