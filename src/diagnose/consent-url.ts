/**
 * Consent URLs a user can open (or pass to an administrator) so that the app's permissions are
 * granted before anyone runs `oauthmail login`:
 * - Microsoft user consent: the v2.0 authorize endpoint with prompt=consent and the profile's scopes;
 * - Microsoft admin consent: the v2.0 /adminconsent endpoint of the tenant (an administrator grants
 *   the permissions for everyone in it; the only way for app roles of a client-credentials app);
 * - Google: the authorize endpoint with access_type=offline and prompt=consent (the only way to get
 *   a refresh token back, and the consent screen shows the scopes).
 */
import type { Profile } from '../config/schema.js';
import { GOOGLE_AUTH_ENDPOINT, microsoftAuthority, scopesFor } from '../config/presets.js';
import { UsageError } from '../errors/index.js';
import { adminConsentUrl, consentUrl } from './aadsts.js';

export interface ConsentUrl {
  kind: 'user' | 'admin';
  url: string;
  /** Who should open it, in one sentence. */
  who: string;
}

/** The redirect URI the app registration must list for this profile's sign-in (and consent). */
export function redirectUriFor(profile: Pick<Profile, 'redirectUri' | 'redirectPort' | 'flow'>): string {
  if (profile.redirectUri) return profile.redirectUri;
  if (profile.redirectPort) return `http://localhost:${profile.redirectPort}/`;
  return 'http://localhost';
}

function profileScopes(profile: Profile): string[] {
  return profile.scopes.length
    ? profile.scopes
    : scopesFor(profile.provider, profile.capabilities, profile.flow);
}

export function buildConsentUrl(name: string, profile: Profile, admin: boolean): ConsentUrl {
  if (profile.provider === 'microsoft') {
    const c = {
      profile: name,
      clientId: profile.clientId,
      authority: microsoftAuthority(profile),
      redirectUri: redirectUriFor(profile),
      scopes: profileScopes(profile),
    };
    if (admin || profile.flow === 'client-credentials') {
      return {
        kind: 'admin',
        url: adminConsentUrl(c),
        who: 'a Global Administrator or Privileged Role Administrator of the tenant (for delegated permissions only, also a Cloud Application Administrator or Application Administrator) opens it and accepts for the whole organization',
      };
    }
    return {
      kind: 'user',
      url: consentUrl(c),
      who: `the user of the mailbox${profile.user ? ` (${profile.user})` : ''} opens it, signs in and accepts`,
    };
  }
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
    url: `${profile.authorizationEndpoint ?? GOOGLE_AUTH_ENDPOINT}?${q}`,
    who: `the Google account${profile.user ? ` ${profile.user}` : ''} opens it and allows access`,
  };
}
