/** `oauthmail status` for a Microsoft profile: read from the stored MSAL cache, without MSAL. */
import type { Profile } from '../../config/schema.js';
import type { AuthDeps, TokenStatus } from '../types.js';
import { latestAccessToken, parseCache, pickAccount, refreshTokenOf } from './cache.js';

export async function microsoftStatus(
  profileName: string,
  profile: Profile,
  deps: Pick<AuthDeps, 'store' | 'env'>,
  text: string | undefined,
  appOnly: boolean,
): Promise<TokenStatus> {
  const { store } = deps;
  const n = profileName;
  const cache = parseCache(text);
  const problems: TokenStatus['problems'] = [];
  const account = appOnly ? undefined : pickAccount(cache, profile.loginHint);
  const at = latestAccessToken(cache, profile.clientId, account?.homeAccountId ?? '');
  const hasRt = !!account && !!refreshTokenOf(cache, profile.clientId, account.homeAccountId);
  let signedIn: boolean;
  if (appOnly) {
    const kind = profile.clientType === 'certificate' ? 'certificate' : 'client-secret';
    signedIn =
      (await store.get(n, kind)) !== undefined ||
      (kind === 'client-secret' && !!deps.env.OAUTHMAIL_CLIENT_SECRET);
    if (!signedIn) {
      problems.push({
        problem: `no ${kind.replace('-', ' ')} is stored for this app-only profile`,
        fix:
          kind === 'certificate'
            ? `oauthmail profile secret ${n} --certificate FILE.pem`
            : `oauthmail profile secret ${n} --stdin`,
      });
    }
  } else {
    signedIn = hasRt;
    if (!signedIn) problems.push({ problem: 'not signed in', fix: `oauthmail login ${n}` });
    else if (profile.clientType === 'secret' && !(await store.get(n, 'client-secret'))) {
      problems.push({ problem: 'no client secret is stored', fix: `oauthmail profile secret ${n} --stdin` });
    }
  }
  if (profile.clientSecretExpires && profile.clientType === 'secret') {
    const days = Math.floor(
      (Date.parse(profile.clientSecretExpires + 'T00:00:00Z') - Date.now()) / 86_400_000,
    );
    const fix = `create a new secret, then: oauthmail profile secret ${n} --stdin --expires YYYY-MM-DD`;
    if (days < 0) {
      problems.push({ problem: `the client secret expired on ${profile.clientSecretExpires}`, fix });
    } else if (days <= 30) {
      problems.push({
        problem: `the client secret expires in ${days} day${days === 1 ? '' : 's'} (${profile.clientSecretExpires})`,
        fix,
      });
    }
  }
  return {
    signedIn,
    account: account?.username ?? null,
    location: store.location,
    storeKind: store.kind,
    accessTokenExpiresOn: at?.expiresOn ?? null,
    scopes: at?.scopes ?? [],
    hasRefreshToken: hasRt,
    problems,
  };
}
