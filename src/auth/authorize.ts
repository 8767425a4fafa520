/**
 * The authorization-code sign-in (RFC 6749 §4.1 with PKCE S256, RFC 7636), the same for every
 * provider; the adapter (grant.ts AuthorizationCodeGrant) builds the URL, names errors and redeems
 * the code, and the SignInUi shows what the person does.
 *
 * - Loopback (RFC 8252 §7.3): start the listener, show/open the URL, wait for the response, then
 *   redeem the code and store the tokens while the browser waits, so that its page says "Signed
 *   in" only once the tokens are stored, or shows the error that stopped it.
 * - `--paste` (a machine reached over SSH): the browser ends on an unreachable loopback page; the
 *   person pastes that address (or the bare code) on stdin. The state of a pasted URL must match.
 */
import type { Profile } from '../config/schema.js';
import { AuthError, UsageError } from '../errors/index.js';
import { registerSecret } from '../util/redact.js';
import type { AuthorizationCodeGrant, Issued, SignInUi } from './grant.js';
import type { AuthorizationResponse } from './loopback.js';
import { parsePasted } from './pasted.js';
import { newPkce, type Pkce } from './pkce.js';
import type { LoginOptions, TokenResult } from './types.js';

export interface AuthorizeContext {
  profileName: string;
  profile: Profile;
  env: NodeJS.ProcessEnv;
  /** Write the sign-in's tokens (under the lock) and record it. */
  store: (issued: Issued) => Promise<TokenResult>;
}

export async function authorizeWithCode(
  grant: AuthorizationCodeGrant,
  o: LoginOptions,
  ui: SignInUi,
  ctx: AuthorizeContext,
): Promise<TokenResult> {
  await grant.prepare?.(ui);
  const flow: Flow = { grant, o, ui, ctx, pkce: newPkce() };
  return o.paste ? pasted(flow) : loopback(flow);
}

/** Redeem a code the provider sent back, and store the result. */
async function redeem(
  grant: AuthorizationCodeGrant,
  ctx: AuthorizeContext,
  a: {
    code: string;
    response: AuthorizationResponse;
    redirectUri: string;
    pkce: Pkce;
    options: LoginOptions;
  },
): Promise<TokenResult> {
  registerSecret(a.code);
  return ctx.store(await grant.redeemCode(a));
}

/** One sign-in under way. */
interface Flow {
  grant: AuthorizationCodeGrant;
  o: LoginOptions;
  ui: SignInUi;
  ctx: AuthorizeContext;
  pkce: Pkce;
}

async function pasted({ grant, o, ui, ctx, pkce }: Flow): Promise<TokenResult> {
  const n = ctx.profileName;
  const redirectUri = grant.pasteRedirectUri;
  const url = await grant.authorizationUrl({ redirectUri, responseMode: 'query', pkce, options: o });
  const line = await ui.readPastedRedirect(url, { redirectUri, timeoutMs: o.timeoutMs });
  if (line === undefined) {
    throw new AuthError(`no redirect URL was pasted within ${Math.round(o.timeoutMs / 1000)} seconds`, {
      code: 'login_timeout',
      hint: `run: oauthmail login ${n} --paste`,
    });
  }
  const r = parsePasted(line);
  if (!r) {
    throw new UsageError('the pasted text is neither the redirect URL nor an authorization code', {
      code: 'bad_input',
      hint: `run: oauthmail login ${n} --paste, and paste the whole address the browser ended on`,
    });
  }
  if (r.error) throw grant.authorizationError(r, redirectUri);
  if (r.state !== undefined && r.state !== pkce.state) {
    throw new AuthError(
      'the pasted URL belongs to another sign-in (its state does not match); nothing was stored',
      {
        code: 'state_mismatch',
        hint: `run: oauthmail login ${n} --paste, and paste the address from that sign-in`,
      },
    );
  }
  return redeem(grant, ctx, { code: r.code!, response: r, redirectUri, pkce, options: o });
}

async function loopback({ grant, o, ui, ctx, pkce }: Flow): Promise<TokenResult> {
  const { LoopbackServer, successPage, errorPage } = await import('./loopback.js');
  const { profile, profileName } = ctx;
  // An https://localhost redirect (for registrations that allow only https): our own
  // per-install certificate, which the browser does not know and warns about once.
  let tls: import('./self-signed.js').LoopbackTls | undefined;
  if (grant.loopbackTls && profile.redirectUri?.toLowerCase().startsWith('https:')) {
    const { loopbackTls } = await import('./self-signed.js');
    tls = await loopbackTls(ctx.env);
  }
  const server = await LoopbackServer.start({
    redirectUri: profile.redirectUri,
    port: profile.redirectPort,
    ...(tls ? { tls: { key: tls.key, cert: tls.cert } } : {}),
    profileName,
    ...(grant.loopbackHost ? { defaultHost: grant.loopbackHost } : {}),
  });
  if (tls) {
    ui.selfSignedCertificate({
      redirectUri: server.redirectUri,
      fingerprint: tls.fingerprint,
      dir: tls.dir,
      created: tls.created,
    });
  }
  try {
    const redirectUri = server.redirectUri;
    const url = await grant.authorizationUrl({ redirectUri, responseMode: 'form_post', pkce, options: o });
    const waiting = server.waitForResponse(pkce.state, {
      timeoutMs: o.timeoutMs,
      retryCommand: `oauthmail login ${profileName}`,
      errorPage: (r) => {
        const err = grant.authorizationError(r, redirectUri);
        return errorPage({
          code: /^AADSTS(\d+)$/.exec(err.code)?.[1],
          error: r.error,
          message: err.message.replace(/ \(AADSTS\d+\)$/, ''),
          hint: err.hint,
        });
      },
    });
    await ui.showSignInUrl(url, { openBrowser: o.openBrowser, timeoutMs: o.timeoutMs });
    const r = await waiting;
    if (r.error || !r.code) {
      throw grant.authorizationError({ ...r, error: r.error ?? 'invalid_request' }, redirectUri);
    }
    const code = r.code;
    return await server.settle(
      () => redeem(grant, ctx, { code, response: r, redirectUri, pkce, options: o }),
      (t) => successPage(profileName, t.account),
    );
  } finally {
    await server.close();
  }
}
