/**
 * MSAL's and the network's errors → ours (a sentence, a fix, an exit code), through the AADSTS
 * catalogue (src/auth/errors/aadsts.ts). The two shapes Entra sends an error in are read here
 * once each: an authorization response (loopback, pasted URL) and a JSON error body (device-code
 * request, endpoint discovery).
 */
import {
  AuthError,
  ConfigError,
  InternalError,
  OauthmailError,
  TransientError,
  providerCode,
} from '../../errors/index.js';
import { NETWORK_ERROR_CODES } from '../../net/errors.js';
import { entraError, lookup, type EntraErrorContext } from '../errors/aadsts.js';
import type { AuthorizationResponse } from '../loopback.js';

/** An authorization response's error (error_codes is a comma-separated list there). */
export function entraFromResponse(r: AuthorizationResponse, ctx: EntraErrorContext): OauthmailError {
  return entraError(
    {
      error: r.error,
      description: r.error_description,
      code: r.error_codes?.split(',')[0],
      suberror: r.suberror,
    },
    ctx,
  );
}

/** A JSON error body (error_codes is an array of numbers there). */
export function entraFromBody(
  b: Record<string, unknown>,
  ctx: EntraErrorContext,
  status?: number,
  cause?: unknown,
): OauthmailError {
  const codes = Array.isArray(b.error_codes) ? (b.error_codes as unknown[]) : [];
  return entraError(
    {
      ...(typeof b.error === 'string' ? { error: b.error } : {}),
      ...(typeof b.error_description === 'string' ? { description: b.error_description } : {}),
      ...(codes.length ? { code: String(codes[0]) } : {}),
      ...(typeof b.suberror === 'string' ? { suberror: b.suberror } : {}),
      ...(status !== undefined ? { status } : {}),
    },
    ctx,
    cause,
  );
}

const SIGN_IN_NEEDED = new Set([
  'no_tokens_found',
  'no_account_found',
  'no_account_in_silent_request',
  'refresh_token_expired',
  'token_refresh_required',
  'interaction_required',
  'login_required',
  'consent_required',
  'bad_token',
  'native_account_unavailable',
]);

const UNREACHABLE = new Set([
  'network_error',
  'no_network_connectivity',
  'endpoints_resolution_error',
  'openid_config_error',
  'network_request_failed',
]);

const BAD_AUTHORITY = new Set([
  'untrusted_authority',
  'invalid_authority',
  'url_parse_error',
  'authority_uri_insecure',
]);

/**
 * `discoveryError`: an error answer to endpoint discovery that MSAL dropped (app.ts).
 */
export function mapMsalError(
  e: unknown,
  ctx: EntraErrorContext,
  discoveryError?: { status: number; body: Record<string, unknown> },
): OauthmailError {
  if (e instanceof OauthmailError) return e;
  const host = new URL(ctx.authority ?? 'https://invalid.').host;
  const m = e as {
    errorCode?: string;
    errorMessage?: string;
    subError?: string;
    errorNo?: string;
    status?: number;
    code?: string;
    name?: string;
    message?: string;
  };
  if (m && typeof m.errorCode === 'string') {
    const code = m.errorCode;
    // MSAL wraps some OAuth errors (device-code polling) as post_request_failed + the error string
    if (code === 'post_request_failed' && /^[a-z_]+$/.test((m.errorMessage ?? '').trim())) {
      return entraError({ error: m.errorMessage!.trim(), status: m.status }, ctx, e);
    }
    if (
      m.name === 'ServerError' ||
      m.name === 'InteractionRequiredAuthError' ||
      m.errorNo ||
      /AADSTS\d+/.test(m.errorMessage ?? '')
    ) {
      return entraError(
        { error: code, description: m.errorMessage, code: m.errorNo, suberror: m.subError, status: m.status },
        ctx,
        e,
      );
    }
    if (SIGN_IN_NEEDED.has(code)) {
      const { entry } = lookup({ error: code });
      return new AuthError(entry ? entry.message(ctx) : `profile ${ctx.profile} needs a new sign-in`, {
        code: providerCode(code),
        hint: entry ? entry.hint(ctx) : `run: oauthmail login ${ctx.profile}`,
        cause: e,
      });
    }
    const refused = discoveryError;
    if (
      refused &&
      refused.status < 500 &&
      refused.status !== 429 &&
      (code === 'endpoints_resolution_error' || code === 'openid_config_error')
    ) {
      // the identity provider answered, and said no: a wrong tenant (AADSTS90002) is a
      // configuration error, not a network one (and retrying cannot help)
      return entraFromBody(refused.body, ctx, refused.status, e);
    }
    if (UNREACHABLE.has(code)) {
      return new TransientError(`cannot reach the identity provider at ${host}`, {
        code: providerCode(code),
        hint: 'check the network (and a proxy or firewall); exit code 6 is safe to retry',
        cause: e,
      });
    }
    if (BAD_AUTHORITY.has(code)) {
      return new ConfigError(`the authority ${ctx.authority} was refused by MSAL (${code})`, {
        code: providerCode(code),
        hint: `check the profile's tenant or authority (oauthmail profile show ${ctx.profile}); it must be an https:// URL`,
        cause: e,
      });
    }
    if (code === 'state_mismatch' || code === 'nonce_mismatch' || code === 'invalid_state') {
      return new AuthError(`the sign-in response did not match this sign-in (${code})`, {
        code,
        hint: `run: oauthmail login ${ctx.profile}`,
        cause: e,
      });
    }
    return new InternalError(`MSAL failed: ${code}`, {
      code: `msal_${code}`,
      hint: 'run again with --verbose for details',
      cause: e,
    });
  }
  if (m && typeof m.code === 'string' && NETWORK_ERROR_CODES.has(m.code)) {
    return new TransientError(`cannot reach the identity provider at ${host} (${m.code})`, {
      code: 'network_error',
      hint: 'check the network; exit code 6 is safe to retry',
      cause: e,
    });
  }
  return new InternalError(`sign-in failed: ${m?.message ?? String(e)}`, { code: 'auth_failed', cause: e });
}
