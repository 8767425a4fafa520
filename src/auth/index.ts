/**
 * profile → TokenProvider: the token service (token-service.ts) with the provider's adapter.
 * Imports nothing heavy: MSAL, google-auth-library and openid-client are loaded by the adapters
 * only when a grant needs them (a cached token is read without them).
 */
import type { Profile } from '../config/schema.js';
import type { ConfigStore, LockFn } from '../config/store.js';
import { ConfigError } from '../errors/index.js';
import type { SecretStore } from '../secrets/types.js';
import type { GrantAdapter, SignInUi } from './grant.js';
import { TokenService } from './token-service.js';
import type { AuthDeps, AuthIo } from './types.js';

/** What the functions below need from a command's context; the CLI's Context (src/cli/context.ts) is one. */
export interface AuthContext {
  readonly io: AuthIo;
  readonly env: NodeJS.ProcessEnv;
  readonly lock: LockFn;
  readonly config: Pick<ConfigStore, 'load'>;
  secretsFor(profile: Pick<Profile, 'storage'>): Promise<SecretStore>;
  /** What a sign-in shows a person (src/cli/signin/); `login` needs it. */
  readonly signIn?: SignInUi;
}

export type {
  TokenProvider,
  TokenResult,
  LoginOptions,
  GetTokenOptions,
  TokenStatus,
  TokenFile,
} from './types.js';
export type { SignInUi, DeviceCodeInfo } from './grant.js';
export type { TokenService } from './token-service.js';

async function adapterFor(name: string, profile: Profile, deps: AuthDeps): Promise<GrantAdapter> {
  switch (profile.provider) {
    case 'microsoft': {
      const { MicrosoftAdapter } = await import('./microsoft/adapter.js');
      return new MicrosoftAdapter(name, profile, deps);
    }
    case 'google': {
      const { GoogleAdapter } = await import('./google/adapter.js');
      return new GoogleAdapter(name, profile, deps);
    }
    case 'custom': {
      const { CustomAdapter } = await import('./custom/adapter.js');
      return new CustomAdapter(name, profile, deps);
    }
    default:
      throw new ConfigError(`sign-in for ${profile.provider as string} profiles is not available yet`, {
        code: 'provider_not_supported',
        hint: 'use a Microsoft profile for now (oauthmail profile add NAME --provider microsoft ...)',
      });
  }
}

export async function providerFor(name: string, profile: Profile, deps: AuthDeps): Promise<TokenService> {
  return new TokenService(name, profile, deps, await adapterFor(name, profile, deps));
}

/** The TokenProvider of a profile, with the context's I/O, lock and secret store. */
export async function tokenProviderFor(
  ctx: AuthContext,
  name: string,
  profile: Profile,
): Promise<TokenService> {
  const store = await ctx.secretsFor(profile);
  return providerFor(name, profile, {
    io: ctx.io,
    env: ctx.env,
    lock: ctx.lock,
    store,
    ...(ctx.signIn ? { ui: ctx.signIn } : {}),
  });
}

/** Resolve the profile a command names (argument, -p, OAUTHMAIL_PROFILE, default) and its provider. */
export async function resolveProvider(
  ctx: AuthContext,
  explicit: string | undefined,
): Promise<{ name: string; profile: Profile; provider: TokenService }> {
  const { resolveProfileName } = await import('../config/store.js');
  const config = await ctx.config.load();
  const { name, profile } = resolveProfileName(config, explicit, ctx.env);
  return { name, profile, provider: await tokenProviderFor(ctx, name, profile) };
}
