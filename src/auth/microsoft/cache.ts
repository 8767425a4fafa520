/**
 * Read MSAL's serialized token cache (the JSON `TokenCache.serialize()` writes) without loading
 * MSAL. `oauthmail token` on a valid cached token then costs a secret-store read and a JSON
 * parse, not MSAL's module graph (DESIGN: keep `token` close to bare `node` start-up).
 *
 * Only reads. Every write goes through MSAL (the ICachePlugin in microsoft/app.ts), so the format
 * stays MSAL's. The schema is MSAL's "unified cache" shared by all MSAL libraries:
 * AccessToken entries carry `secret`, `target` (space-separated scopes), `expires_on`
 * (epoch seconds as a string), `client_id`, `home_account_id` ("" for app-only tokens).
 */
import { registerSecret } from '../../util/redact.js';

interface Entry {
  home_account_id?: string;
  environment?: string;
  credential_type?: string;
  client_id?: string;
  secret?: string;
  realm?: string;
  target?: string;
  expires_on?: string | number;
  token_type?: string;
  username?: string;
  name?: string;
}

export interface MsalCacheJson {
  Account?: Record<string, Entry>;
  AccessToken?: Record<string, Entry>;
  RefreshToken?: Record<string, Entry>;
  IdToken?: Record<string, Entry>;
  AppMetadata?: Record<string, unknown>;
}

/** Scopes MSAL adds to every request and never stores in an access token's target. */
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

export function parseCache(text: string | undefined): MsalCacheJson | undefined {
  if (!text) return undefined;
  try {
    const j: unknown = JSON.parse(text);
    if (typeof j !== 'object' || j === null) return undefined;
    const cache = j as MsalCacheJson;
    registerCacheSecrets(cache);
    return cache;
  } catch {
    return undefined;
  }
}

/** Every token in the cache is a secret: make sure redact() masks it wherever it shows up. */
export function registerCacheSecrets(cache: MsalCacheJson): void {
  for (const section of [cache.AccessToken, cache.RefreshToken, cache.IdToken]) {
    for (const e of Object.values(section ?? {})) registerSecret(e.secret);
  }
}

export interface CachedAccount {
  homeAccountId: string;
  username: string;
  name?: string;
  tenantId?: string;
}

export function accountsIn(cache: MsalCacheJson | undefined): CachedAccount[] {
  return Object.values(cache?.Account ?? {})
    .filter((a) => a.home_account_id)
    .map((a) => ({
      homeAccountId: a.home_account_id!,
      username: a.username ?? '',
      name: a.name,
      tenantId: a.realm,
    }));
}

/** The account a profile uses: the one matching the hint, else the only (or first) one. */
export function pickAccount(cache: MsalCacheJson | undefined, hint?: string): CachedAccount | undefined {
  const all = accountsIn(cache);
  if (hint) {
    const h = hint.toLowerCase();
    const m = all.find((a) => a.username.toLowerCase() === h);
    if (m) return m;
  }
  return all[0];
}

export interface CachedAccessToken {
  secret: string;
  expiresOn: Date;
  scopes: string[];
  homeAccountId: string;
}

const wanted = (scopes: readonly string[]) =>
  scopes.filter((s) => !OIDC_SCOPES.has(s.toLowerCase())).map((s) => s.toLowerCase());

/**
 * A cached Bearer access token for these scopes that stays valid for at least
 * `minValiditySeconds`. `homeAccountId` "" selects app-only (client-credentials) tokens.
 */
export function findAccessToken(
  cache: MsalCacheJson | undefined,
  q: {
    clientId: string;
    scopes: readonly string[];
    homeAccountId: string;
    minValiditySeconds: number;
    now?: number;
  },
): CachedAccessToken | undefined {
  const now = q.now ?? Date.now();
  const need = wanted(q.scopes);
  let best: CachedAccessToken | undefined;
  for (const e of Object.values(cache?.AccessToken ?? {})) {
    if (!e.secret || e.client_id?.toLowerCase() !== q.clientId.toLowerCase()) continue;
    if ((e.home_account_id ?? '') !== q.homeAccountId) continue;
    // PoP / SSH tokens are not Bearer tokens and cannot go into XOAUTH2
    if (e.token_type && e.token_type.toLowerCase() !== 'bearer') continue;
    const target = (e.target ?? '').split(/\s+/).filter(Boolean);
    const have = new Set(target.map((s) => s.toLowerCase()));
    if (!need.every((s) => have.has(s))) continue;
    const exp = Number(e.expires_on) * 1000;
    if (!Number.isFinite(exp) || exp - now < q.minValiditySeconds * 1000) continue;
    if (!best || exp > best.expiresOn.getTime()) {
      best = {
        secret: e.secret,
        expiresOn: new Date(exp),
        scopes: target,
        homeAccountId: e.home_account_id ?? '',
      };
    }
  }
  return best;
}

/** The newest-looking access token of an account, valid or not (for `status`). */
export function latestAccessToken(
  cache: MsalCacheJson | undefined,
  clientId: string,
  homeAccountId: string,
): { expiresOn: Date; scopes: string[] } | undefined {
  let best: { expiresOn: Date; scopes: string[] } | undefined;
  for (const e of Object.values(cache?.AccessToken ?? {})) {
    if (e.client_id?.toLowerCase() !== clientId.toLowerCase() || (e.home_account_id ?? '') !== homeAccountId)
      continue;
    const exp = new Date(Number(e.expires_on) * 1000);
    if (!best || exp > best.expiresOn)
      best = { expiresOn: exp, scopes: (e.target ?? '').split(/\s+/).filter(Boolean) };
  }
  return best;
}

export function refreshTokenOf(
  cache: MsalCacheJson | undefined,
  clientId: string,
  homeAccountId: string,
): string | undefined {
  for (const e of Object.values(cache?.RefreshToken ?? {})) {
    if ((e.home_account_id ?? '') !== homeAccountId || !e.secret) continue;
    // family refresh tokens (FOCI) carry a family_id and may have another client_id
    if (e.client_id && e.client_id.toLowerCase() !== clientId.toLowerCase() && !('family_id' in e)) continue;
    return e.secret;
  }
  return undefined;
}
