/**
 * Google Workspace service accounts (domain-wide delegation): a JWT bearer assertion (RFC 7523
 * §2.1) signed RS256 with the key from the secret store, `sub` = the mailbox user, posted to the
 * profile's token endpoint. google-auth-library's JWT client (gtoken) posts to
 * oauth2.googleapis.com whatever the profile says, which a test provider or a proxy setup cannot
 * use, and the assertion is a few lines of node:crypto.
 */
import type { Profile } from '../../config/schema.js';
import { ConfigError } from '../../errors/index.js';
import { registerSecret } from '../../util/redact.js';
import type { OAuthErrorContext } from '../errors/google-errors.js';
import { postForm } from '../oauth-http.js';
import type { TokenResponse } from '../stored-tokens.js';
import type { AuthDeps } from '../types.js';

interface ServiceAccountKey {
  type: string;
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

export async function serviceAccountToken(a: {
  profileName: string;
  profile: Profile;
  deps: Pick<AuthDeps, 'store' | 'io'>;
  scopes: string[];
  tokenUrl: string;
  http: typeof fetch;
  errCtx: OAuthErrorContext;
}): Promise<TokenResponse> {
  const n = a.profileName;
  const text = await a.deps.store.get(n, 'service-account');
  const fix = `oauthmail profile secret ${n} --service-account-key FILE.json`;
  if (!text) {
    throw new ConfigError(`profile ${n} needs a service-account key and none is stored`, {
      code: 'missing_service_account',
      hint: `store it: ${fix}`,
    });
  }
  registerSecret(text);
  const unusable = (what: string, cause?: unknown) =>
    new ConfigError(`the stored service-account key of ${n} ${what}`, {
      code: 'bad_service_account',
      hint: `store it again: ${fix}`,
      ...(cause ? { cause } : {}),
    });
  let key: ServiceAccountKey;
  try {
    key = JSON.parse(text) as ServiceAccountKey;
    if (key.type !== 'service_account' || !key.private_key || !key.client_email) throw new Error('shape');
  } catch {
    throw unusable('is not a Google JSON key');
  }
  registerSecret(key.private_key);
  if (!a.profile.user) {
    throw new ConfigError(`profile ${n} needs the mailbox user to impersonate`, {
      code: 'missing_user',
      hint: `set it: oauthmail profile edit ${n} --set user=name@your-domain`,
    });
  }
  const { createPrivateKey, sign } = await import('node:crypto');
  const now = Math.floor(Date.now() / 1000);
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const header = b64({
    alg: 'RS256',
    typ: 'JWT',
    ...(key.private_key_id ? { kid: key.private_key_id } : {}),
  });
  const claims = b64({
    iss: key.client_email,
    sub: a.profile.user,
    scope: a.scopes.join(' '),
    aud: a.tokenUrl,
    iat: now,
    exp: now + 3600,
  });
  let signature: string;
  try {
    signature = sign(
      'RSA-SHA256',
      Buffer.from(`${header}.${claims}`),
      createPrivateKey(key.private_key),
    ).toString('base64url');
  } catch (e) {
    throw unusable('holds no usable private key', e);
  }
  const assertion = `${header}.${claims}.${signature}`;
  registerSecret(assertion);
  a.deps.io.debug(`requesting a service-account token for ${a.profile.user}`);
  const r = (await postForm(
    a.tokenUrl,
    { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion },
    a.errCtx,
    a.http,
  )) as TokenResponse;
  return { ...r, scope: r.scope ?? a.scopes.join(' ') };
}
