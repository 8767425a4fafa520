/**
 * The token service: the one place that runs, for every provider,
 *
 *   cache check (no lock) → lock `token-<profile>` → re-read under the lock → valid now? use it
 *   → refresh (the provider's grant, through its adapter) → write the store → health.
 *
 * Why the lock covers the whole refresh: providers rotate refresh tokens on every redemption and
 * the old one stops working. Two processes that refresh from the same stored cache and write back
 * in turn lose one rotation, and possibly the sign-in. So the store is re-read under the lock
 * before anything else: if another process refreshed while we waited, its fresh access token is
 * used and nothing is redeemed.
 *
 * From the refresh request on, the rotated refresh token exists only in this process until it is
 * written: the store is made ready first (key derived, keychain module loaded), and SIGINT/SIGTERM
 * wait for the write (critical), so that neither loses the sign-in. Interactive sign-ins do not
 * hold the lock while a person signs in; they take it only to write the result.
 *
 * Adapters (microsoft/, google/, custom/) implement GrantAdapter (grant.ts): they read their
 * own cache format and redeem grants, and never write the store themselves.
 */
import { AuthError, InternalError, UsageError } from '../errors/index.js';
import { armStoreRescue, critical, debugStoredAfterAnswer } from '../util/critical.js';
import { registerSecret } from '../util/redact.js';
import type { Profile } from '../config/schema.js';
import { authorizeWithCode } from './authorize.js';
import { notSignedIn, type GrantAdapter, type Issued, type SignInUi } from './grant.js';
import type { HealthEvent } from './health.js';
import {
  DEFAULT_MIN_VALIDITY,
  type AuthDeps,
  type GetTokenOptions,
  type LoginOptions,
  type TokenFile,
  type TokenProvider,
  type TokenResult,
  type TokenStatus,
} from './types.js';

export class TokenService implements TokenProvider {
  /** RFC 7009 at the provider, for `logout`; absent when the provider has no revocation (Microsoft). */
  readonly revokeAtProvider?: () => Promise<'revoked' | 'nothing'>;

  constructor(
    readonly profileName: string,
    private readonly profile: Profile,
    private readonly deps: AuthDeps,
    private readonly adapter: GrantAdapter,
  ) {
    if (adapter.revoke) this.revokeAtProvider = () => this.revoke();
  }

  private get lockName(): string {
    return `token-${this.profileName}`;
  }

  // ---- the store ------------------------------------------------------------------------------

  private read(): Promise<string | undefined> {
    return this.deps.store.get(this.profileName, 'token-cache');
  }

  private async write(text: string | undefined): Promise<void> {
    if (text === undefined) return;
    await this.deps.store.set(this.profileName, 'token-cache', text);
    debugStoredAfterAnswer((l) => this.deps.io.debug(l));
  }

  /** Token health (src/auth/health.ts): best effort, never fails the caller. */
  private async health(ev: HealthEvent): Promise<void> {
    const { recordHealth } = await import('./health.js');
    await recordHealth(
      { env: this.deps.env, lock: this.deps.lock, debug: (m) => this.deps.io.debug(m) },
      this.profileName,
      this.adapter.kind,
      ev,
    );
  }

  // ---- the single refresh path -----------------------------------------------------------------

  /** The cached access token if it is valid long enough; no lock, no network, no library (fast path). */
  async peekCachedToken(minValiditySeconds = DEFAULT_MIN_VALIDITY): Promise<TokenResult | undefined> {
    return this.adapter.cachedToken(await this.read(), minValiditySeconds);
  }

  async getToken(o: GetTokenOptions = {}): Promise<TokenResult> {
    const min = o.minValiditySeconds ?? DEFAULT_MIN_VALIDITY;
    if (!o.forceRefresh) {
      const hit = await this.peekCachedToken(min);
      if (hit) {
        this.deps.io.debug(
          `using the cached access token of ${this.profileName} (valid until ${hit.expiresOn?.toISOString() ?? 'unknown'})`,
        );
        return hit;
      }
    }
    return this.deps.lock(this.lockName, async () => {
      // Re-read under the lock: another process may have refreshed (and rotated) meanwhile.
      const text = await this.read();
      if (!o.forceRefresh) {
        const hit = this.adapter.cachedToken(text, min);
        if (hit) return hit;
      }
      if (this.adapter.appOnly) {
        this.deps.io.debug(`requesting an app-only token for ${this.profileName}`);
        const issued = await this.adapter.clientCredentials(text);
        await this.write(issued.text);
        return issued.result;
      }
      const oldRt = this.adapter.refreshTokenOf(text);
      if (!oldRt) throw notSignedIn(this.profileName);
      return this.refresh(text, oldRt);
    });
  }

  /** Called under the lock: redeem `refreshToken`, store the answer, record health. */
  private async refresh(text: string | undefined, refreshToken: string): Promise<TokenResult> {
    this.deps.io.debug(`refreshing the access token of ${this.profileName}`);
    await this.deps.store.prepare?.(this.profileName, 'token-cache');
    // SIGKILL cannot be held off: the rotated token also goes to the rescue file the moment the
    // answer arrives (src/secrets/rescue.ts; http-retry.ts and network.ts hand it the answer), and
    // the store's next read puts it in place, its next write removes it
    const disarm = armStoreRescue(this.deps.store, this.profileName, refreshToken);
    let issued: Issued;
    try {
      issued = await critical(async () => {
        const i = await this.adapter.refresh(text, refreshToken);
        await this.write(i.text);
        return i;
      }).finally(disarm);
    } catch (e) {
      if (e instanceof AuthError && e.code !== 'not_signed_in')
        await this.health({ kind: 'refresh-refused', code: e.code });
      throw e;
    }
    const newRt = this.adapter.refreshTokenOf(issued.text ?? text);
    await this.health({ kind: 'refresh', rotated: !!newRt && newRt !== refreshToken });
    return issued.result;
  }

  // ---- sign-ins ---------------------------------------------------------------------------------

  private ui(): SignInUi {
    if (!this.deps.ui) {
      throw new InternalError('no sign-in interface was given to the token service', {
        code: 'no_sign_in_ui',
      });
    }
    return this.deps.ui;
  }

  /** Store what an interactive sign-in (or an import) produced: it replaces what was stored. */
  private async storeSignIn(issued: Issued): Promise<TokenResult> {
    await this.deps.lock(this.lockName, () => this.write(issued.text));
    if (issued.failAfterWrite) throw issued.failAfterWrite;
    await this.health({ kind: 'sign-in' });
    return issued.result;
  }

  async login(o: LoginOptions): Promise<TokenResult> {
    const a = this.adapter;
    if (o.method === 'client-credentials' || a.appOnly || a.appOnlyLogin) {
      const issued = await a.clientCredentials(undefined);
      await this.deps.lock(this.lockName, () => this.write(issued.text));
      return issued.result;
    }
    const ui = this.ui();
    if (o.method === 'device') return this.storeSignIn(await a.deviceCode(o, ui));
    return authorizeWithCode(a.authorizationCode, o, ui, {
      profileName: this.profileName,
      profile: this.profile,
      env: this.deps.env,
      store: (issued) => this.storeSignIn(issued),
    });
  }

  async importRefreshToken(file: TokenFile): Promise<TokenResult> {
    this.adapter.assertImportable?.();
    const rt = file.refresh_token;
    if (!rt) {
      throw new UsageError('the token file has no refresh_token', {
        code: 'bad_input',
        hint: 'give a JSON file like {"access_token": "...", "refresh_token": "...", "expires_in": 3599}',
      });
    }
    registerSecret(rt);
    registerSecret(file.access_token);
    return this.deps.lock(this.lockName, async () => {
      // the imported token is redeemed (and may be burned) by this request: see refresh
      await this.deps.store.prepare?.(this.profileName, 'token-cache');
      const issued = await critical(async () => {
        const i = await this.adapter.importRefreshToken(rt);
        await this.write(i.text);
        return i;
      });
      if (issued.failAfterWrite) throw issued.failAfterWrite;
      await this.health({ kind: 'sign-in' });
      return issued.result;
    });
  }

  // ---- the rest of TokenProvider ------------------------------------------------------------------

  async logout(): Promise<boolean> {
    return this.deps.lock(this.lockName, () => this.deps.store.delete(this.profileName, 'token-cache'));
  }

  async status(): Promise<TokenStatus> {
    return this.adapter.status(await this.read());
  }

  private async revoke(): Promise<'revoked' | 'nothing'> {
    const rt = this.adapter.refreshTokenOf(await this.read());
    if (!rt) return 'nothing';
    this.deps.io.debug(`revoking the refresh token of ${this.profileName} at the provider`);
    return (await this.adapter.revoke!(rt)) ? 'revoked' : 'nothing';
  }

  async exportTokens(): Promise<TokenFile> {
    const t = await this.getToken({ minValiditySeconds: 60 });
    const rt = this.adapter.refreshTokenOf(await this.read());
    const out: TokenFile = {
      access_token: t.accessToken,
      expires_in: t.expiresOn
        ? Math.max(0, Math.floor((t.expiresOn.getTime() - Date.now()) / 1000))
        : undefined,
      token_type: 'Bearer',
      scope: t.scopes.join(' '),
    };
    if (rt) out.refresh_token = rt;
    return out;
  }

  revokeHints(): string[] {
    return this.adapter.revokeHints();
  }
}
