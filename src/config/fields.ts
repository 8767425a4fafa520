/**
 * THE profile field table. Each key of a profile is one entry: its value (codec), whether it is
 * required, its help, the providers it applies to, its `profile add`/`edit` flag and how
 * `profile show` prints it. The Profile type is inferred from it; derive.ts turns it into the
 * validation of a profile, the keys `--set`/`--unset` take (and `profile keys` lists), the
 * flags of `profile add`/`edit` and the rows of `profile show`. Entries are checked, listed and
 * shown in this order. A rule that ties keys together (a Microsoft clientId is a GUID) is in
 * RULES below the table.
 */
import {
  type Codec,
  type Field,
  group,
  httpsUrl,
  int,
  intList,
  Invalid,
  list,
  listOf,
  num,
  oneOf,
  opt,
  req,
  server,
  type Shape,
  stringMap,
  text,
} from './codecs.js';
import {
  CAPABILITIES,
  CLIENT_TYPES,
  FLOWS,
  GUID_RE,
  HAS_CRLF,
  IMAP_SECURITY,
  isEmail,
  isIsoDate,
  isMailbox,
  isTenant,
  PROMPTS,
  PROVIDERS,
  type Provider,
  QUEUE_MODES,
  RESERVED_AUTH_PARAMS,
  RETRY_MODES,
  SASL,
  SMTP_SECURITY,
  STORAGE,
  TOKEN_ENDPOINT_AUTH,
} from './values.js';

const MS = ['microsoft'] as const;
const CUSTOM = ['custom'] as const;
const OAUTH = ['google', 'custom'] as const;

/** An https:// endpoint of the identity provider. */
const url = (providers: readonly Provider[], help: string, spec: Omit<Field<string>, 'type' | 'required'>) =>
  opt(httpsUrl(), { help, providers, ...spec });

const mailbox = (path: string, s: string) =>
  isMailbox(s) ? undefined : `${path} must be an address like name@example.com or "Name <name@example.com>"`;

const redirectUri: Codec<string> = text((s) => {
  try {
    const u = new URL(s);
    if (u.protocol === 'http:' || u.protocol === 'https:') return undefined;
  } catch {
    // fall through
  }
  return 'redirectUri must be a URL like http://localhost:53682/';
});

const authParams = stringMap((k, v, path) => {
  if (!/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(k)) {
    throw new Invalid(
      path,
      `authorization parameter name ${JSON.stringify(k.slice(0, 70))} is invalid: use letters, digits, _ . - (up to 64)`,
    );
  }
  if (RESERVED_AUTH_PARAMS.has(k)) {
    throw new Invalid(
      `${path}.${k}`,
      `authorization parameter ${k} is set by oauthmail itself (${k === 'scope' ? 'use the profile key scopes' : 'it carries the sign-in protection or the app identity'})`,
    );
  }
  if (typeof v !== 'string' || HAS_CRLF.test(v)) {
    throw new Invalid(`${path}.${k}`, `${path}.${k} must be a one-line string`);
  }
});

const retry = group(
  {
    mode: req(oneOf(RETRY_MODES)),
    statusCodes: opt(intList(100, 599, 'status codes'), { help: 'status codes to retry with mode status' }),
    maxAttempts: req(int(1, 20), { help: 'attempts in all, 1-20' }),
    initialDelayMs: req(int(0, 600_000), { help: 'first wait in milliseconds' }),
    multiplier: req(num(1, 10), { help: 'factor applied to the wait after each try' }),
    maxDelayMs: req(int(0, 3_600_000), { help: 'longest wait in milliseconds' }),
  },
  (path) => `${path} must be an object (mode, maxAttempts, initialDelayMs, multiplier, maxDelayMs)`,
);

export const PROFILE_FIELDS = {
  provider: req(oneOf(PROVIDERS), {
    flag: 'microsoft, google or custom (default: microsoft)',
  }),
  tenant: opt(
    text((s) =>
      isTenant(s)
        ? undefined
        : 'tenant must be a tenant ID (GUID), a domain like contoso.com, common, organizations or consumers',
    ),
    {
      help: 'Microsoft tenant: ID, domain, common, organizations, consumers',
      providers: MS,
      flag: 'Microsoft tenant: ID, domain, common, organizations (default), consumers',
    },
  ),
  authority: url(MS, 'Microsoft authority URL (sovereign clouds, test providers)', {
    flag: 'authority URL (sovereign clouds, test identity providers)',
  }),
  issuer: url(CUSTOM, 'custom provider issuer URL (discovery)', {
    flag: 'custom provider: issuer URL with discovery',
  }),
  authorizationEndpoint: url(OAUTH, 'authorization endpoint URL', {
    flag: 'custom provider: authorization endpoint URL',
  }),
  tokenEndpoint: url(OAUTH, 'token endpoint URL', { flag: 'custom provider: token endpoint URL' }),
  deviceEndpoint: url(CUSTOM, 'device authorization endpoint URL (RFC 8628)', {
    flag: 'custom provider: device authorization endpoint URL',
  }),
  revocationEndpoint: url(OAUTH, 'token revocation endpoint URL (RFC 7009)', { show: false }),
  clientId: req(
    text((s) => (s.trim() ? undefined : 'clientId must not be empty')),
    {
      help: 'application (client) ID',
      flag: 'application (client) ID of the app registration',
    },
  ),
  clientType: req(oneOf(CLIENT_TYPES), {
    flag: 'public (default), secret or certificate',
  }),
  certificateThumbprint: opt(
    text((s) =>
      /^[0-9A-Fa-f]{40}$|^[0-9A-Fa-f]{64}$/.test(s)
        ? undefined
        : "certificateThumbprint must be the certificate's SHA-1 (40 hex digits) or SHA-256 (64) thumbprint",
    ),
    {
      help: 'thumbprint of the app certificate (hex)',
      providers: MS,
      flag: { name: 'thumbprint', help: 'certificate thumbprint (clientType certificate)' },
    },
  ),
  tokenEndpointAuth: opt(oneOf(TOKEN_ENDPOINT_AUTH), {
    help: 'client_secret_basic or client_secret_post (custom)',
    providers: CUSTOM,
    show: false,
  }),
  flow: req(oneOf(FLOWS), {
    flag: 'browser (default), device, client-credentials or service-account',
  }),
  redirectUri: opt(redirectUri, {
    help: 'fixed redirect URI registered for the app',
    flag: true,
  }),
  redirectPort: opt(int(1, 65535), {
    help: 'fixed loopback port for the redirect',
    flag: true,
  }),
  timeout: opt(int(1, 3600), {
    help: 'seconds an SMTP attempt waits on a silent server (default 30); send --timeout overrides',
    show: false,
  }),
  capabilities: req(listOf(CAPABILITIES), {
    help: 'send, read (picks the scopes)',
    flag: 'send,read (default both): picks the scopes',
  }),
  scopes: req(
    list((s) => (/^\S+$/.test(s) ? undefined : `scope ${JSON.stringify(s)} must not contain spaces`)),
    {
      help: 'scopes, separated by commas or spaces',
      flag: 'explicit scopes, separated by commas or spaces',
    },
  ),
  prompt: opt(oneOf(PROMPTS), { flag: true }),
  loginHint: opt(text(), {
    help: 'account to pre-fill at sign-in',
    flag: true,
  }),
  domainHint: opt(text(), { help: 'domain hint for the sign-in page', providers: MS, show: false }),
  authParams: opt(authParams, {
    help: 'extra authorization parameters, authParams.NAME=VALUE',
    show: false,
    flag: {
      name: 'auth-param',
      help: 'extra authorization-request parameter, e.g. access_type=offline (repeatable; custom providers)',
      repeat: { example: 'access_type=offline' },
    },
  }),
  user: opt(
    text((s) => (isEmail(s) ? undefined : 'user must be an email address like name@example.com')),
    {
      help: 'mailbox user (SASL user); may differ from the signed-in user',
      flag: 'mailbox address (SASL user); may be a shared mailbox',
    },
  ),
  from: opt(
    text((s, path) => mailbox(path, s)),
    { help: 'default From address', flag: 'default From: address' },
  ),
  replyTo: opt(
    text((s, path) => mailbox(path, s)),
    { help: 'default Reply-To address', flag: 'default Reply-To: address' },
  ),
  signature: opt(
    text((s) => (s.length <= 10_000 ? undefined : 'signature must be at most 10,000 characters'), true),
    {
      help: 'text appended to plain-text bodies',
      format: (s) => (s ? `${s.split('\n')[0]}${s.includes('\n') ? ' …' : ''}` : undefined),
    },
  ),
  smtp: opt(
    server('SMTP', SMTP_SECURITY, 'smtp.example.com:587', (port) => (port === 465 ? 'tls' : 'starttls')),
    {
      help: 'SMTP server as host:port',
      flag: 'SMTP server host:port (default from the provider)',
    },
  ),
  imap: opt(
    server('IMAP', IMAP_SECURITY, 'imap.example.com:993', (port) => (port === 143 ? 'starttls' : 'tls')),
    {
      help: 'IMAP server as host:port',
      flag: 'IMAP server host:port (default from the provider)',
    },
  ),
  sasl: req(oneOf(SASL), {
    help: 'auto (IMAP: OAUTHBEARER when offered, else XOAUTH2; SMTP: XOAUTH2), xoauth2 or oauthbearer',
    flag: 'auto (default; IMAP prefers OAUTHBEARER when offered, SMTP uses XOAUTH2), xoauth2 or oauthbearer',
  }),
  retry: req(retry, {
    format: (r) =>
      r.mode === 'none'
        ? 'none'
        : `${r.mode}, ${r.maxAttempts} attempts, ${r.initialDelayMs} ms ×${r.multiplier} (max ${r.maxDelayMs} ms)`,
  }),
  storage: req(oneOf(STORAGE), {
    flag: 'where secrets live: auto (default), keychain or file',
  }),
  clientSecretExpires: opt(
    text((s) => (isIsoDate(s) ? undefined : 'clientSecretExpires must be a real date like 2027-06-30')),
    {
      help: 'client secret expiry date, YYYY-MM-DD',
      flag: 'client secret expiry date, YYYY-MM-DD (warned 30 days ahead)',
    },
  ),
  transport: opt(oneOf(['smtp', 'graph', 'auto'] as const), {
    help: 'how send and sendmail hand over mail: smtp (default) or graph (Microsoft Graph sendMail)',
    providers: MS,
    flag: 'smtp (default) or graph (Microsoft Graph, for tenants without SMTP AUTH); picks the scopes',
  }),
  graphUrl: opt(httpsUrl(), {
    help: 'Microsoft Graph API base URL (default https://graph.microsoft.com/v1.0; national clouds, tests)',
    providers: MS,
    flag: 'Microsoft Graph API base URL (default https://graph.microsoft.com/v1.0)',
  }),
  queue: opt(oneOf(QUEUE_MODES), {
    help: 'on (default) or off: sendmail keeps a message it cannot send now in the local queue',
    show: false,
  }),
} as const;

/** A profile as stored in config.json, inferred from the table. */
export type Profile = Shape<typeof PROFILE_FIELDS>;
export type RetryPolicy = Profile['retry'];

export const DEFAULT_RETRY: RetryPolicy = {
  mode: 'any',
  maxAttempts: 4,
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 30_000,
};

/** Rules between keys, checked in order once every key is valid on its own. */
export const RULES: ReadonlyArray<(p: Profile) => Invalid | undefined> = [
  (p) =>
    p.provider === 'microsoft' && !GUID_RE.test(p.clientId)
      ? new Invalid(
          'clientId',
          'clientId must be the Application (client) ID GUID from the app registration, like 00000000-0000-0000-0000-000000000000',
        )
      : undefined,
  (p) =>
    p.provider === 'custom' && !p.tokenEndpoint && !p.issuer
      ? new Invalid(
          'tokenEndpoint',
          'a custom provider needs tokenEndpoint (and authorizationEndpoint) or an issuer with discovery',
        )
      : undefined,
  (p) =>
    p.flow === 'service-account' && p.provider !== 'google'
      ? new Invalid('flow', 'flow service-account is for Google profiles only')
      : undefined,
  (p) =>
    p.flow === 'client-credentials' && p.clientType === 'public'
      ? new Invalid(
          'clientType',
          'flow client-credentials needs a confidential app: set clientType to secret or certificate',
        )
      : undefined,
  (p) =>
    p.transport && p.transport !== 'smtp' && p.provider !== 'microsoft'
      ? new Invalid('transport', `transport ${p.transport} (Microsoft Graph) is for Microsoft profiles only`)
      : undefined,
  (p) =>
    p.transport === 'auto'
      ? new Invalid(
          'transport',
          'transport auto (SMTP, then Graph after a 5.7.139 refusal) is not available yet: set transport to smtp or graph',
        )
      : undefined,
  (p) =>
    p.clientType === 'certificate' && p.provider === 'microsoft' && !p.certificateThumbprint
      ? new Invalid('certificateThumbprint', 'clientType certificate needs certificateThumbprint')
      : undefined,
];
