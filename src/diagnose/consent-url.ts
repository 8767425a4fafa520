/**
 * Consent URLs a user can open (or pass to an administrator) so that the app's permissions are
 * granted before anyone runs `oauthmail login`:
 * - Microsoft user consent: the v2.0 authorize endpoint with prompt=consent, the profile's scopes
 *   and PKCE (a throw-away verifier: the code the link returns is of no use to anyone);
 * - Microsoft admin consent: the v2.0 /adminconsent endpoint of the tenant (an administrator grants
 *   the permissions for everyone in it; the only way for app roles of a client-credentials app);
 *   both redirect to the profile's own redirect URI when it has one (a Web app's page), else to
 *   Entra's native-client page, which always loads: never to http://localhost, where nobody
 *   listens once `oauthmail login` has ended;
 * - Google: the authorize endpoint with access_type=offline and prompt=consent (the only way to get
 *   a refresh token back, and the consent screen shows the scopes);
 * - a custom (standards-based) provider: its authorization endpoint with prompt=consent and PKCE.
 *   OAuth 2.0 has no admin consent: pre-authorizing a client is each provider's own admin feature.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Profile } from '../config/schema.js';
import { GOOGLE_AUTH_ENDPOINT, microsoftAuthority, scopesFor } from '../config/presets.js';
import { UsageError } from '../errors/index.js';
import { adminConsentUrl, consentUrl, nativeClientRedirect } from '../auth/errors/aadsts.js';

export interface ConsentUrl {
  kind: 'user' | 'admin';
  url: string;
  /** Who should open it, in one sentence. */
  who: string;
  /** Where the browser ends after accepting, in one sentence. */
  landing: string;
}

/** The redirect URI the app registration must list for this profile's sign-in. */
/**
 * The redirect `login` uses for a profile (src/auth/loopback.ts): custom providers get the
 * loopback IP literal (RFC 8252 §8.3), Microsoft and Google `localhost`.
 */
export function redirectUriFor(
  profile: Pick<Profile, 'redirectUri' | 'redirectPort' | 'flow'> & { provider?: Profile['provider'] },
): string {
  if (profile.redirectUri) return profile.redirectUri;
  const host = profile.provider === 'custom' ? '127.0.0.1' : 'localhost';
  if (profile.redirectPort) return `http://${host}:${profile.redirectPort}/`;
  return `http://${host}${host === 'localhost' ? '' : '/'}`;
}

function profileScopes(profile: Profile): string[] {
  return profile.scopes.length
    ? profile.scopes
    : scopesFor(profile.provider, profile.capabilities, profile.flow, profile.transport);
}

/** Where a custom provider's authorization endpoint comes from: the profile, else discovery. */
export interface DiscoveredEndpoints {
  authorizationEndpoint?: string;
}

export function buildConsentUrl(
  name: string,
  profile: Profile,
  admin: boolean,
  discovered: DiscoveredEndpoints = {},
): ConsentUrl {
  if (profile.provider === 'microsoft') return microsoftConsent(name, profile, admin);
  if (profile.provider === 'custom') return customConsent(name, profile, admin, discovered);
  if (admin) {
    throw new UsageError('Google has no admin-consent URL', {
      code: 'no_admin_consent',
      hint: `a Google Workspace admin trusts the app instead: Admin console → Security → Access and data control → API controls → Manage third-party app access → Configure new app → OAuth App Name or Client ID: ${profile.clientId} → Trusted`,
    });
  }
  const q = new URLSearchParams({
    client_id: profile.clientId,
    redirect_uri: redirectUriFor(profile),
    response_type: 'code',
    scope: profileScopes(profile).join(' '),
    access_type: 'offline',
    prompt: 'consent',
    ...(profile.user ? { login_hint: profile.user } : {}),
  });
  return {
    kind: 'user',
    url: `${profile.authorizationEndpoint ?? GOOGLE_AUTH_ENDPOINT}?${q.toString()}`,
    who: `the Google account${profile.user ? ` ${profile.user}` : ''} opens it and allows access`,
    landing: `Google then sends the browser to ${redirectUriFor(profile)}, where only a running \`oauthmail login ${name}\` listens: to consent and sign in at once, run oauthmail login ${name} --prompt consent`,
  };
}

function microsoftConsent(name: string, profile: Profile, admin: boolean): ConsentUrl {
  const authority = microsoftAuthority(profile);
  // a Web app (with a secret) has its own registered page; a public client gets Entra's own
  const redirectUri = profile.redirectUri ?? nativeClientRedirect(authority);
  const c = {
    profile: name,
    clientId: profile.clientId,
    authority,
    redirectUri,
    scopes: profileScopes(profile),
  };
  const page = profile.redirectUri
    ? `the app's redirect page ${redirectUri}`
    : `Microsoft's page ${redirectUri} (register it: Authentication → "Mobile and desktop applications" → tick it)`;
  if (admin || profile.flow === 'client-credentials') {
    return {
      kind: 'admin',
      url: adminConsentUrl(c),
      who: 'a Global Administrator or Privileged Role Administrator of the tenant (for delegated permissions only, also a Cloud Application Administrator or Application Administrator) opens it and accepts for the whole organization',
      landing: `after accepting, the browser ends on ${page} with admin_consent=True in its address (error=… if it was declined)`,
    };
  }
  return {
    kind: 'user',
    url: consentUrl(c),
    who: `the user of the mailbox${profile.user ? ` (${profile.user})` : ''} opens it, signs in and accepts`,
    landing: `after accepting, the browser ends on ${page}; the code in its address is of no use to anyone (PKCE) and can be ignored`,
  };
}

function customConsent(
  name: string,
  profile: Profile,
  admin: boolean,
  discovered: DiscoveredEndpoints,
): ConsentUrl {
  if (admin) {
    throw new UsageError('a standards-based OAuth 2.0 provider has no admin-consent URL', {
      code: 'no_admin_consent',
      hint: `an administrator of the provider${profile.issuer ? ` (${profile.issuer})` : ''} pre-authorizes client ${profile.clientId} in its admin console (often "trusted" or "skip consent"); otherwise each user consents when signing in: oauthmail login ${name} --prompt consent`,
    });
  }
  const endpoint = profile.authorizationEndpoint ?? discovered.authorizationEndpoint;
  if (!endpoint) {
    throw new UsageError(`no authorization endpoint is known for profile ${name}`, {
      code: 'no_authorization_endpoint',
      hint: `set it: oauthmail profile edit ${name} --set authorizationEndpoint=https://...`,
    });
  }
  const redirect = redirectUriFor(profile);
  const url = new URL(endpoint);
  const q = new URLSearchParams({
    ...(profile.authParams ?? {}),
    client_id: profile.clientId,
    redirect_uri: new URL(redirect).href,
    response_type: 'code',
    scope: profileScopes(profile).join(' '),
    prompt: 'consent',
    state: randomBytes(12).toString('base64url'),
    // RFC 7636 with a verifier nobody keeps: providers that require PKCE accept the link, and the
    // code it returns cannot be redeemed
    code_challenge: createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url'),
    code_challenge_method: 'S256',
    ...(profile.user ? { login_hint: profile.user } : {}),
  });
  for (const [k, v] of q) url.searchParams.set(k, v);
  return {
    kind: 'user',
    url: url.toString(),
    who: `the user${profile.user ? ` ${profile.user}` : ''} opens it, signs in at ${url.host} and accepts`,
    landing: `the provider then sends the browser to ${new URL(redirect).href}, where only a running \`oauthmail login ${name}\` listens: to consent and sign in at once, run oauthmail login ${name} --prompt consent`,
  };
}

/**
 * A custom profile's authorization endpoint by discovery (RFC 8414, then OpenID Connect
 * Discovery), when the profile names only the issuer.
 */
export async function discoverAuthorizationEndpoint(issuer: string): Promise<string | undefined> {
  const u = new URL(issuer);
  const path = u.pathname.replace(/\/$/, '');
  const candidates = [
    `${u.origin}/.well-known/oauth-authorization-server${path}`,
    `${u.origin}${path}/.well-known/openid-configuration`,
  ];
  for (const c of candidates) {
    try {
      const r = await fetch(c, { signal: AbortSignal.timeout(15_000) });
      if (!r.ok) continue;
      const m = (await r.json()) as { authorization_endpoint?: unknown };
      if (typeof m.authorization_endpoint === 'string') return m.authorization_endpoint;
    } catch {
      // the next candidate, then the caller's error
    }
  }
  return undefined;
}
