/**
 * profile → TokenProvider. Imports nothing heavy: MSAL is loaded by microsoft.ts only when a
 * sign-in or a refresh actually needs it (a cached token is read without it).
 */
import type { Profile } from '../config/schema.js';
import type { ConfigStore, LockFn } from '../config/store.js';
import { ConfigError } from '../errors/index.js';
import type { SecretStore } from '../secrets/types.js';
import type { AuthDeps, AuthIo, TokenProvider } from './types.js';

/** What the functions below need from a command's context; the CLI's Context (src/cli/context.ts) is one. */
export interface AuthContext {
  readonly io: AuthIo;
  readonly env: NodeJS.ProcessEnv;
  readonly lock: LockFn;
  readonly config: Pick<ConfigStore, 'load'>;
  secretsFor(profile: Pick<Profile, 'storage'>): Promise<SecretStore>;
}

export type {
  TokenProvider,
  TokenResult,
  LoginOptions,
  GetTokenOptions,
  TokenStatus,
  TokenFile,
} from './types.js';

export async function providerFor(name: string, profile: Profile, deps: AuthDeps): Promise<TokenProvider> {
  switch (profile.provider) {
    case 'microsoft': {
      const { MicrosoftProvider } = await import('./microsoft.js');
      return new MicrosoftProvider(name, profile, deps);
    }
    case 'google': {
      const { GoogleProvider } = await import('./google.js');
      return new GoogleProvider(name, profile, deps);
    }
    case 'custom': {
      const { GenericProvider } = await import('./generic.js');
      return new GenericProvider(name, profile, deps);
    }
    default:
      throw new ConfigError(`sign-in for ${profile.provider} profiles is not available yet`, {
        code: 'provider_not_supported',
        hint: 'use a Microsoft profile for now (oauthmail profile add NAME --provider microsoft ...)',
      });
  }
}

/** The TokenProvider of a profile, with the context's I/O, lock and secret store. */
export async function tokenProviderFor(
  ctx: AuthContext,
  name: string,
  profile: Profile,
): Promise<TokenProvider> {
  const store = await ctx.secretsFor(profile);
  return providerFor(name, profile, { io: ctx.io, env: ctx.env, lock: ctx.lock, store });
}

/** Resolve the profile a command names (argument, -p, OAUTHMAIL_PROFILE, default) and its provider. */
export async function resolveProvider(
  ctx: AuthContext,
  explicit: string | undefined,
): Promise<{ name: string; profile: Profile; provider: TokenProvider }> {
  const { resolveProfileName } = await import('../config/store.js');
  const config = await ctx.config.load();
  const { name, profile } = resolveProfileName(config, explicit, ctx.env);
  return { name, profile, provider: await tokenProviderFor(ctx, name, profile) };
}
