/**
 * openid-client 6 (panva) for "custom" profiles: its Configuration from the profile's endpoints,
 * completed by discovery from the issuer (RFC 8414 §3 first, then OpenID Connect Discovery 1.0
 * §4; both check that the metadata names the same issuer, RFC 8414 §3.3), and its errors → ours.
 */
import type { Configuration, ClientAuth, ServerMetadata } from 'openid-client';
import type { Profile } from '../../config/schema.js';
import { ConfigError, InternalError, OauthmailError } from '../../errors/index.js';
import { oauthError, type OAuthErrorContext } from '../errors/google-errors.js';
import { errorBody, isNetworkError, networkError } from '../oauth-http.js';

export type OpenIdClient = typeof import('openid-client');

/** openid-client's limit for one call including our retries (each try is limited in http-retry.ts). */
const WHOLE_CALL_TIMEOUT_S = 3600;

export async function openIdConfiguration(
  profileName: string,
  p: Profile,
  secret: string | undefined,
  http: typeof fetch,
  debug: (line: string) => void,
): Promise<Configuration> {
  const oc = await import('openid-client');
  // RFC 6749 §2.3.1; a public client only sends client_id (RFC 6749 §3.2.1).
  const auth = !secret
    ? oc.None()
    : p.tokenEndpointAuth === 'client_secret_post'
      ? oc.ClientSecretPost(secret)
      : oc.ClientSecretBasic(secret);
  let server: ServerMetadata = {
    issuer: p.issuer ?? new URL(p.tokenEndpoint ?? p.authorizationEndpoint ?? 'https://invalid.').origin,
  };
  if (p.issuer && !(p.tokenEndpoint && (p.authorizationEndpoint || p.deviceEndpoint))) {
    server = await discover(oc, profileName, p, auth, http, debug);
  }
  const override: Record<string, string | undefined> = {
    authorization_endpoint: p.authorizationEndpoint,
    token_endpoint: p.tokenEndpoint,
    device_authorization_endpoint: p.deviceEndpoint,
    revocation_endpoint: p.revocationEndpoint,
  };
  for (const [k, v] of Object.entries(override)) if (v) (server as Record<string, unknown>)[k] = v;
  if (!server.token_endpoint) {
    throw new ConfigError(`no token endpoint is known for profile ${profileName}`, {
      code: 'no_token_endpoint',
      hint: `set it: oauthmail profile edit ${profileName} --set tokenEndpoint=https://...`,
    });
  }
  const cfg = new oc.Configuration(server, p.clientId, undefined, auth);
  cfg[oc.customFetch] = http;
  // each try has its own limit in http; openid-client's own (one signal for the whole call)
  // would end a retry loop that waits out Retry-After
  cfg.timeout = WHOLE_CALL_TIMEOUT_S;
  return cfg;
}

async function discover(
  oc: OpenIdClient,
  profileName: string,
  p: Profile,
  auth: ClientAuth,
  http: typeof fetch,
  debug: (line: string) => void,
): Promise<ServerMetadata> {
  const issuer = p.issuer!;
  let first: unknown;
  for (const algorithm of ['oauth2', 'oidc'] as const) {
    try {
      const c = await oc.discovery(new URL(issuer), p.clientId, undefined, auth, {
        algorithm,
        [oc.customFetch]: http,
        timeout: WHOLE_CALL_TIMEOUT_S,
      });
      debug(
        `discovered the endpoints of ${issuer} (${algorithm === 'oauth2' ? 'RFC 8414' : 'OpenID Connect'})`,
      );
      return c.serverMetadata();
    } catch (e) {
      first ??= e;
    }
  }
  if (isNetworkError(first)) throw networkError(issuer, first);
  const message = (first as Error)?.message ?? '';
  const mismatch = /issuer/i.test(message) && /match|mismatch|unexpected/i.test(message);
  throw new ConfigError(
    mismatch
      ? `the discovery document of ${issuer} names another issuer`
      : `no discovery document found for issuer ${issuer}`,
    {
      code: mismatch ? 'issuer_mismatch' : 'discovery_failed',
      hint: mismatch
        ? `set the exact issuer URL the provider publishes: oauthmail profile edit ${profileName} --set issuer=URL`
        : `give the endpoints instead: oauthmail profile edit ${profileName} --set authorizationEndpoint=... --set tokenEndpoint=...`,
      cause: first,
    },
  );
}

/** openid-client / oauth4webapi errors → ours (RFC 6749 §5.2 bodies through the catalogue). */
export async function mapOpenIdError(
  e: unknown,
  p: Profile,
  ctx: OAuthErrorContext,
): Promise<OauthmailError> {
  if (e instanceof OauthmailError) return e;
  // oauth4webapi reads error bodies of 4xx answers only; a 5xx comes as "not a conform
  // response" with the Response as its cause, body unread: read it here for the provider's words
  const res = (e as { cause?: unknown })?.cause;
  if (res instanceof Response && !res.bodyUsed) return oauthError(await errorBody(res), ctx, e);
  const r = e as { error?: unknown; error_description?: unknown; status?: unknown; name?: string };
  if (typeof r?.error === 'string') {
    return oauthError(
      {
        error: r.error,
        error_description: typeof r.error_description === 'string' ? r.error_description : undefined,
        status: typeof r.status === 'number' ? r.status : undefined,
      },
      ctx,
      e,
    );
  }
  // OAUTH_TIMEOUT: openid-client 6's name for a request that hit its own timeout (a provider
  // that accepted the connection and did not answer): a network fault, safe to retry
  if (isNetworkError(e) || (e as { code?: unknown })?.code === 'OAUTH_TIMEOUT')
    return networkError(p.tokenEndpoint ?? p.issuer ?? 'https://invalid.', e);
  return new InternalError(`the sign-in failed: ${(e as Error)?.message ?? String(e)}`, {
    code: 'auth_failed',
    hint: "run again with --verbose; check the profile's endpoints",
    cause: e,
  });
}
