/**
 * The catalogue of Microsoft Entra ID errors: an AADSTS code (or an OAuth `error` string when
 * Entra sends no code) becomes one sentence saying what happened, the fix, and an exit code.
 *
 * Exit codes follow the conventions: sign-in or consent problems are 4 (the user or an admin
 * can fix them by signing in or consenting), a wrong app registration or profile is 3, and a
 * throttled or failing service is 6 (safe to retry).
 *
 * Codes: https://learn.microsoft.com/entra/identity-platform/reference-error-codes
 */
import { createHash, randomBytes } from 'node:crypto';
import { AuthError, ConfigError, OauthmailError, TransientError, ExitCode } from '../../errors/index.js';
import { providerCode, type ErrorCode } from '../../errors/index.js';

/** What the catalogue needs to write a fix that can be pasted. */
export interface EntraErrorContext {
  /** Profile name, for `oauthmail login NAME`. */
  profile: string;
  clientId?: string;
  /** e.g. https://login.microsoftonline.com/contoso.com/ (with trailing slash) */
  authority?: string;
  /** The redirect URI that was sent (for 50011). */
  redirectUri?: string;
  /** The scopes that were asked for (consent URLs). */
  scopes?: string[];
}

export interface EntraErrorInput {
  /** OAuth `error`, e.g. invalid_grant */
  error?: string;
  /** `error_description` (starts with "AADSTSnnnn: ..." for Entra) */
  description?: string;
  /** `error_codes[0]` or a parsed AADSTS number */
  code?: number | string;
  suberror?: string;
  /** HTTP status, when known */
  status?: number;
}

export interface CatalogueEntry {
  /** One sentence: what went wrong. */
  message: (c: EntraErrorContext) => string;
  /** One sentence: how to fix it. */
  hint: (c: EntraErrorContext) => string;
  exit: typeof ExitCode.AUTH | typeof ExitCode.CONFIG | typeof ExitCode.TRANSIENT;
}

const login = (c: EntraErrorContext, extra = '') => `run: oauthmail login ${c.profile}${extra}`;
const app = (c: EntraErrorContext) => (c.clientId ? `app ${c.clientId}` : 'the app');

/** Split an authority into its host base (https://login.microsoftonline.com) and tenant segment. */
export function splitAuthority(authority: string | undefined): { base: string; tenant: string } {
  const a = authority ?? 'https://login.microsoftonline.com/organizations/';
  try {
    const u = new URL(a);
    const parts = u.pathname.split('/').filter(Boolean);
    const tenant = parts.pop() ?? 'organizations';
    return { base: `${u.origin}${parts.length ? '/' + parts.join('/') : ''}`, tenant };
  } catch {
    return { base: 'https://login.microsoftonline.com', tenant: 'organizations' };
  }
}

/**
 * Entra's own landing page for public (native) clients, `<cloud>/common/oauth2/nativeclient`: one of
 * the redirect URIs the portal offers with a tick box. A consent link that redirects there ends on
 * a page of Microsoft's that always loads (with `admin_consent=True` or the outcome in its address),
 * where the loopback redirect `http://localhost` (port 80, nobody listening) ends on a refused
 * connection.
 */
export function nativeClientRedirect(authority: string | undefined): string {
  return `${splitAuthority(authority).base}/common/oauth2/nativeclient`;
}

/** A PKCE S256 challenge whose verifier is thrown away (RFC 7636): a code a link returns is useless. */
function throwawayChallenge(): string {
  return createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
}

/**
 * The URL a user opens to consent to the app's delegated permissions (prompt=consent). It carries
 * PKCE (Entra may require it of public clients) with a verifier nobody keeps, and redirects to the
 * profile's own redirect URI when it has one, else to Entra's native-client page.
 */
export function consentUrl(c: EntraErrorContext): string {
  const { base, tenant } = splitAuthority(c.authority);
  const q = new URLSearchParams({
    client_id: c.clientId ?? 'CLIENT_ID',
    response_type: 'code',
    redirect_uri: c.redirectUri ?? nativeClientRedirect(c.authority),
    response_mode: 'query',
    scope: (c.scopes?.length ? c.scopes : ['https://outlook.office.com/.default']).join(' '),
    prompt: 'consent',
    code_challenge: throwawayChallenge(),
    code_challenge_method: 'S256',
  });
  return `${base}/${tenant}/oauth2/v2.0/authorize?${q.toString()}`;
}

/** The v2.0 admin-consent URL (an administrator grants the permissions for the whole tenant). */
export function adminConsentUrl(c: EntraErrorContext): string {
  const { base, tenant } = splitAuthority(c.authority);
  // admin consent needs a real tenant: "common" and "consumers" cannot be consented for
  const t = tenant === 'common' || tenant === 'consumers' ? 'organizations' : tenant;
  const resourceScopes = (c.scopes ?? []).filter((s) => s.includes('/'));
  const resource = resourceScopes[0] ? new URL(resourceScopes[0]).origin : 'https://outlook.office.com';
  const q = new URLSearchParams({
    client_id: c.clientId ?? 'CLIENT_ID',
    scope: `${resource}/.default`,
    redirect_uri: c.redirectUri ?? nativeClientRedirect(c.authority),
  });
  return `${base}/${t}/v2.0/adminconsent?${q.toString()}`;
}

const ADMIN_ROLES =
  'a Global Administrator, Privileged Role Administrator, or (for delegated permissions) a Cloud Application Administrator or Application Administrator';

const signInAgain: CatalogueEntry = {
  message: () => 'the stored sign-in has expired or was revoked',
  hint: (c) => login(c),
  exit: ExitCode.AUTH,
};

const transient: CatalogueEntry = {
  message: () => 'Microsoft Entra ID is temporarily unavailable or throttling requests',
  hint: () => 'retry in a minute; exit code 6 is safe to retry',
  exit: ExitCode.TRANSIENT,
};

/** AADSTS number → entry. */
export const AADSTS: Readonly<Record<string, CatalogueEntry>> = {
  '50011': {
    message: (c) => `the redirect URI ${c.redirectUri ?? '(unknown)'} is not registered for ${app(c)}`,
    hint: (c) =>
      `register exactly ${c.redirectUri ?? 'the redirect URI'} in the app registration (Authentication → "Mobile and desktop applications" for public apps, "Web" for apps with a secret), or set the profile's redirectUri to one that is registered: oauthmail profile edit ${c.profile} --set redirectUri=URI`,
    exit: ExitCode.CONFIG,
  },
  '65001': {
    message: (c) => `${app(c)} has no consent for the requested permissions`,
    hint: (c) =>
      `consent by signing in again: oauthmail login ${c.profile} --prompt consent (or open ${consentUrl(c)})`,
    exit: ExitCode.AUTH,
  },
  '65004': {
    message: () => 'consent was declined on the consent page',
    hint: (c) => `${login(c)} and accept the permissions (an administrator may have to consent instead)`,
    exit: ExitCode.AUTH,
  },
  '90094': {
    message: (c) => `${app(c)} needs an administrator's consent in this tenant`,
    hint: (c) => `ask ${ADMIN_ROLES} to open ${adminConsentUrl(c)} and accept; then ${login(c)}`,
    exit: ExitCode.AUTH,
  },
  '90099': {
    message: (c) => `${app(c)} has not been authorized (consented) in this tenant`,
    hint: (c) => `ask ${ADMIN_ROLES} to open ${adminConsentUrl(c)} and accept; then ${login(c)}`,
    exit: ExitCode.AUTH,
  },
  '700016': {
    message: (c) => `${app(c)} was not found in the tenant`,
    hint: (c) =>
      `check the profile's clientId and tenant (oauthmail profile show ${c.profile}); a single-tenant app only works with its own tenant ID or domain, not "common"`,
    exit: ExitCode.CONFIG,
  },
  '7000215': {
    message: () => 'the client secret is invalid (use the secret value, not the secret ID)',
    hint: (c) => `store the right secret value: oauthmail profile secret ${c.profile} --stdin`,
    exit: ExitCode.CONFIG,
  },
  '7000222': {
    message: () => 'the client secret has expired',
    hint: (c) =>
      `create a new secret under Certificates & secrets in the app registration, then: oauthmail profile secret ${c.profile} --stdin --expires YYYY-MM-DD`,
    exit: ExitCode.CONFIG,
  },
  '7000218': {
    message: () => 'the app is treated as confidential: the request needs a client secret or certificate',
    hint: (c) =>
      `turn on "Allow public client flows" in the app registration (Authentication), or store a secret: oauthmail profile secret ${c.profile} --stdin`,
    exit: ExitCode.CONFIG,
  },
  '700027': {
    message: () =>
      "the certificate's signed assertion was refused (unknown certificate, wrong thumbprint or expired)",
    hint: (c) =>
      `upload the certificate to the app registration and check the profile's certificateThumbprint; replace the key with: oauthmail profile secret ${c.profile} --certificate FILE.pem`,
    exit: ExitCode.CONFIG,
  },
  '50076': {
    message: () => 'multi-factor authentication is required',
    hint: (c) => `sign in interactively to complete MFA: ${login(c).replace('run: ', '')}`,
    exit: ExitCode.AUTH,
  },
  '50079': {
    message: () => 'the account must register for multi-factor authentication',
    hint: (c) => `sign in interactively and complete the MFA registration: oauthmail login ${c.profile}`,
    exit: ExitCode.AUTH,
  },
  '53003': {
    message: () => 'access was blocked by a Conditional Access policy',
    hint: () =>
      'sign in from a device and network the policy allows, or ask your administrator which policy applies (Entra sign-in logs show it)',
    exit: ExitCode.AUTH,
  },
  '70008': signInAgain,
  // Microsoft ends a sign-in whose refresh token was not redeemed for 90 days (inactivity)
  '700082': {
    message: () =>
      'the sign-in expired because it was not used for 90 days (Microsoft ends idle refresh tokens)',
    hint: (c) =>
      `${login(c)}; then keep it alive with a scheduled oauthmail refresh --all (cron or a systemd timer)`,
    exit: ExitCode.AUTH,
  },
  '700025': {
    message: () =>
      'the app is registered as a public client, so it must not send a client secret or certificate',
    hint: (c) =>
      `make the profile public: oauthmail profile edit ${c.profile} --set clientType=public (or add a secret to the app registration and turn off "Allow public client flows")`,
    exit: ExitCode.CONFIG,
  },
  '7000012': {
    message: () =>
      'the sign-in was started in one tenant and redeemed in another (the authorize and token URLs name different tenants)',
    hint: (c) =>
      `use one tenant for both: check the profile's tenant or authority (oauthmail profile show ${c.profile}), then ${login(c)}`,
    exit: ExitCode.CONFIG,
  },
  '50173': {
    message: () => 'the stored sign-in was revoked (password change or administrator action)',
    hint: (c) => login(c),
    exit: ExitCode.AUTH,
  },
  '54005': {
    message: () => 'the authorization code was already used',
    hint: (c) => login(c),
    exit: ExitCode.AUTH,
  },
  '50126': {
    message: () => 'the user name or password is wrong',
    hint: (c) => `${login(c)} and check the account and password`,
    exit: ExitCode.AUTH,
  },
  '50034': {
    message: () => 'the account does not exist in this tenant',
    hint: (c) => `${login(c)} with an account of the tenant, or check the profile's tenant`,
    exit: ExitCode.AUTH,
  },
  '50020': {
    message: () => "the account is from another tenant and is not a guest in the profile's tenant",
    hint: (c) =>
      `set the profile's tenant to the account's tenant (oauthmail profile edit ${c.profile} --set tenant=...)`,
    exit: ExitCode.CONFIG,
  },
  '50053': {
    message: () => 'the account is locked (too many failed sign-ins) or the sign-in was blocked',
    hint: (c) => `wait and try again: oauthmail login ${c.profile}`,
    exit: ExitCode.AUTH,
  },
  '50055': {
    message: () => 'the password has expired',
    hint: (c) => `change it at https://myaccount.microsoft.com, then: oauthmail login ${c.profile}`,
    exit: ExitCode.AUTH,
  },
  '50057': {
    message: () => 'the account is disabled',
    hint: () => 'ask your administrator to enable the account',
    exit: ExitCode.AUTH,
  },
  '500011': {
    message: () =>
      'the resource the scopes name (e.g. Office 365 Exchange Online) is not available in the tenant',
    hint: (c) =>
      `check the scopes (oauthmail profile show ${c.profile}): SMTP/IMAP need https://outlook.office.com/... scopes, and the tenant needs Exchange Online`,
    exit: ExitCode.CONFIG,
  },
  '90002': {
    message: (c) =>
      `the tenant ${splitAuthority(c.authority).tenant} was not found at ${splitAuthority(c.authority).base}`,
    hint: (c) => {
      const { base } = splitAuthority(c.authority);
      // a profile's authority wins over its tenant (config/presets.ts): name the key that is used
      return base === 'https://login.microsoftonline.com'
        ? `set the profile's tenant to the Directory (tenant) ID or a verified domain: oauthmail profile edit ${c.profile} --set tenant=contoso.onmicrosoft.com (oauthmail profile show ${c.profile} shows the current one)`
        : `set the tenant in the profile's authority to the Directory (tenant) ID or a verified domain: oauthmail profile edit ${c.profile} --set authority=${base}/contoso.onmicrosoft.com/ (oauthmail profile show ${c.profile} shows the current one)`;
    },
    exit: ExitCode.CONFIG,
  },
  '50196': transient,
  '90033': transient,
};

/** OAuth `error` strings without a usable AADSTS code. */
export const OAUTH_ERRORS: Readonly<Record<string, CatalogueEntry>> = {
  invalid_grant: signInAgain,
  interaction_required: {
    message: () => 'an interactive sign-in is needed',
    hint: (c) => login(c),
    exit: ExitCode.AUTH,
  },
  consent_required: AADSTS['65001']!,
  login_required: { message: () => 'a sign-in is needed', hint: (c) => login(c), exit: ExitCode.AUTH },
  access_denied: {
    message: () => 'the sign-in was cancelled or access was denied',
    hint: (c) => `${login(c)} and accept the permissions on the consent page`,
    exit: ExitCode.AUTH,
  },
  authorization_declined: {
    message: () => 'the device-code sign-in was declined',
    hint: (c) => `${login(c)} --device and approve it`,
    exit: ExitCode.AUTH,
  },
  expired_token: {
    message: () => 'the device code expired before the sign-in was completed',
    hint: (c) => `${login(c)} --device and enter the code sooner (it is valid for about 15 minutes)`,
    exit: ExitCode.AUTH,
  },
  bad_verification_code: {
    message: () => 'the device code was not recognized',
    hint: (c) => `${login(c)} --device`,
    exit: ExitCode.AUTH,
  },
  invalid_client: {
    message: () => 'the app credentials were refused',
    hint: (c) => `check the client ID, and the secret or certificate: oauthmail profile secret ${c.profile}`,
    exit: ExitCode.CONFIG,
  },
  unauthorized_client: {
    message: (c) => `${app(c)} is not allowed to use this sign-in flow`,
    hint: () =>
      'turn on "Allow public client flows" for device code, or check the app registration platform settings',
    exit: ExitCode.CONFIG,
  },
  invalid_scope: {
    message: () => 'a requested scope is invalid for this app',
    hint: (c) => `check the profile's scopes: oauthmail profile show ${c.profile}`,
    exit: ExitCode.CONFIG,
  },
  temporarily_unavailable: transient,
  server_error: transient,
};

/** The AADSTS number in an error, from error_codes or the description. */
export function aadstsCode(input: EntraErrorInput): string | undefined {
  if (input.code !== undefined && /^\d+$/.test(String(input.code))) return String(input.code);
  const m = /AADSTS(\d+)/.exec(input.description ?? '');
  return m?.[1];
}

/** Look up an error: AADSTS code first, then the sub-error, then the OAuth error string. */
export function lookup(input: EntraErrorInput): { code?: string; entry?: CatalogueEntry } {
  const code = aadstsCode(input);
  const entry =
    (code ? AADSTS[code] : undefined) ??
    (input.suberror ? OAUTH_ERRORS[input.suberror] : undefined) ??
    (input.error ? OAUTH_ERRORS[input.error] : undefined);
  return { code, entry };
}

/** The first line of an Entra description without trace/correlation lines, for unknown codes. */
function firstLine(description: string | undefined): string | undefined {
  const l = description?.split(/\r?\n/)[0]?.trim();
  return l ? l.replace(/\.$/, '') : undefined;
}

/**
 * Turn an Entra error into one of our errors: a sentence, the fix, the right exit code.
 * The raw response is kept (non-enumerable) on the error, never printed.
 */
export function entraError(input: EntraErrorInput, c: EntraErrorContext, cause?: unknown): OauthmailError {
  const { code, entry } = lookup(input);
  const other = providerCode(input.suberror ?? input.error ?? 'entra_error');
  const stable: ErrorCode = code ? (`AADSTS${code}` as `AADSTS${number}`) : other;
  const tag = code ? ` (AADSTS${code})` : '';
  if (entry) {
    const msg = `${entry.message(c)}${tag}`;
    const opts = { code: stable, hint: entry.hint(c), cause, response: input };
    if (entry.exit === ExitCode.AUTH) return new AuthError(msg, opts);
    if (entry.exit === ExitCode.CONFIG) return new ConfigError(msg, opts);
    // throttling and outages: the provider's own words say how long or why (retries, if any,
    // have already run out in src/auth/network.ts)
    const said = firstLine(input.description)?.replace(/^AADSTS\d+:\s*/, '');
    return new TransientError(said ? `${msg}: ${said}` : msg, opts);
  }
  if (input.status === 429 || (input.status !== undefined && input.status >= 500)) {
    return new TransientError(`Microsoft Entra ID answered HTTP ${input.status}${tag}`, {
      code: stable,
      hint: 'retry later; exit code 6 is safe to retry',
      cause,
      response: input,
    });
  }
  const what = firstLine(input.description)?.replace(/^AADSTS\d+:\s*/, '') ?? input.error ?? 'unknown error';
  return new AuthError(`Microsoft Entra ID refused the request: ${what}${tag}`, {
    code: stable,
    hint: `${login(c)}; if it keeps failing, look up ${code ? `AADSTS${code}` : 'the error'} at https://login.microsoftonline.com/error${code ? `?code=${code}` : ''}`,
    cause,
    response: input,
  });
}
