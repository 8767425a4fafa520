/** A profile's client secret: the secret store first, then OAUTHMAIL_CLIENT_SECRET (every provider). */
import { ConfigError } from '../errors/index.js';
import { registerSecret } from '../util/redact.js';
import type { AuthDeps } from './types.js';

export async function loadClientSecret(
  deps: Pick<AuthDeps, 'store' | 'env'>,
  profileName: string,
  required: true,
): Promise<string>;
export async function loadClientSecret(
  deps: Pick<AuthDeps, 'store' | 'env'>,
  profileName: string,
  required: boolean,
): Promise<string | undefined>;
export async function loadClientSecret(
  deps: Pick<AuthDeps, 'store' | 'env'>,
  profileName: string,
  required: boolean,
): Promise<string | undefined> {
  const s = (await deps.store.get(profileName, 'client-secret')) ?? deps.env.OAUTHMAIL_CLIENT_SECRET;
  if (!s && required) {
    throw new ConfigError(`profile ${profileName} needs a client secret and none is stored`, {
      code: 'missing_client_secret',
      hint: `store it: printf %s "$SECRET" | oauthmail profile secret ${profileName} --stdin`,
    });
  }
  registerSecret(s);
  return s || undefined;
}
