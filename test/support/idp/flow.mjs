// Interactive sign-in transactions shared by Entra's authorize endpoint, Google's auth endpoint and
// the device-code page: sign-in form -> consent page -> completion (redirect or "done" page).
import { randomToken } from './jwt.mjs';
import { readForm, sendHtml, parseCookies } from './http.mjs';
import { signInPage, consentPage, errorPage } from './pages.mjs';
import { findUser, findGoogleUser, hasConsent, grantConsent } from './state.mjs';

const COOKIE = { microsoft: 'idp_ms_session', google: 'idp_g_session' };

/**
 * @typedef {object} Txn
 * @property {string} id
 * @property {'microsoft'|'google'} provider
 * @property {string} clientId
 * @property {string} clientName
 * @property {string[]} displayScopes  scopes shown on the consent page
 * @property {string[]} consentKeys    scopes that must be consented (recorded on accept)
 * @property {boolean} forceLogin
 * @property {boolean} forceConsent
 * @property {string} [loginHint]
 * @property {{upn?: string, email?: string} | undefined} user
 * @property {number} [authTime]
 * @property {(res: any, txn: Txn) => void} complete
 * @property {(res: any, txn: Txn) => void} deny
 */

/** The signed-in user of this browser for a provider, if any. */
export function sessionUser(state, req, provider) {
  const sid = parseCookies(req)[COOKIE[provider]];
  const s = sid && state.sessions.get(sid);
  if (!s || s.provider !== provider) return undefined;
  const user = provider === 'google' ? findGoogleUser(state, s.user) : findUser(state, s.user);
  return user ? { user, authTime: s.authTime, sid } : undefined;
}

export function userKey(provider, user) {
  return provider === 'google' ? user.email : user.upn;
}

/** Create a transaction and move it forward as far as possible. */
export function startTxn(ctx, req, res, txn) {
  txn.id = randomToken(18);
  ctx.state.txns.set(txn.id, txn);
  const s = sessionUser(ctx.state, req, txn.provider);
  if (s && !txn.forceLogin) {
    const hint = txn.loginHint?.toLowerCase();
    if (!hint || hint === userKey(txn.provider, s.user).toLowerCase()) {
      txn.user = s.user;
      txn.authTime = s.authTime;
    }
  }
  proceed(ctx, res, txn);
}

export function needsConsent(ctx, txn) {
  if (txn.forceConsent) return true;
  if (ctx.state.config.autoConsent) return false;
  return !hasConsent(ctx.state, txn.provider, userKey(txn.provider, txn.user), txn.clientId, txn.consentKeys);
}

function proceed(ctx, res, txn, error) {
  if (!txn.user || txn.forceLogin) {
    sendHtml(
      res,
      200,
      signInPage({
        provider: txn.provider,
        txn: txn.id,
        username: txn.loginHint,
        clientName: txn.clientName,
        ...error,
      }),
    );
    return;
  }
  if (needsConsent(ctx, txn)) {
    sendHtml(
      res,
      200,
      consentPage({
        provider: txn.provider,
        txn: txn.id,
        user: userKey(txn.provider, txn.user),
        clientName: txn.clientName,
        scopes: txn.displayScopes,
      }),
    );
    return;
  }
  if (ctx.state.config.autoConsent) {
    grantConsent(ctx.state, txn.provider, userKey(txn.provider, txn.user), txn.clientId, txn.consentKeys);
  }
  ctx.state.txns.delete(txn.id);
  txn.complete(res, txn);
}

function expired(res, provider) {
  sendHtml(
    res,
    400,
    errorPage({
      provider,
      error: 'invalid_request',
      errorCode: provider === 'google' ? '' : '90014',
      message:
        provider === 'google'
          ? 'This sign-in session has expired. Start again from the application.'
          : 'AADSTS90014: The sign-in session has expired or is unknown. Start again from the application.',
    }),
  );
}

/** POST /_flow/login */
export async function handleLogin(ctx, req, res) {
  const form = await readForm(req);
  const txn = ctx.state.txns.get(form.txn);
  if (!txn) return expired(res, 'microsoft');
  const username = String(form.username || '').trim();
  const password = String(form.password || '');
  const user =
    txn.provider === 'google' ? findGoogleUser(ctx.state, username) : findUser(ctx.state, username);
  if (!user) {
    const msg =
      txn.provider === 'google'
        ? "Couldn't find your Google Account."
        : `AADSTS50034: The user account ${username} does not exist in the ${ctx.state.registry.tenantDomain} directory. To sign into this application, the account must be added to the directory.`;
    return proceed(
      ctx,
      res,
      { ...txn, user: undefined, loginHint: username },
      { error: msg, errorCode: txn.provider === 'google' ? '' : '50034' },
    );
  }
  if (user.password !== password) {
    const msg =
      txn.provider === 'google'
        ? 'Wrong password. Try again or click Forgot password to reset it.'
        : 'AADSTS50126: Error validating credentials due to invalid username or password.';
    return proceed(
      ctx,
      res,
      { ...txn, user: undefined, loginHint: username },
      { error: msg, errorCode: txn.provider === 'google' ? '' : '50126' },
    );
  }
  const sid = randomToken(24);
  const authTime = Math.floor(Date.now() / 1000);
  ctx.state.sessions.set(sid, { provider: txn.provider, user: userKey(txn.provider, user), authTime });
  txn.user = user;
  txn.authTime = authTime;
  txn.forceLogin = false;
  res.setHeader('Set-Cookie', `${COOKIE[txn.provider]}=${sid}; Path=/; HttpOnly; Secure; SameSite=Lax`);
  proceed(ctx, res, txn);
}

/** POST /_flow/consent */
export async function handleConsent(ctx, req, res) {
  const form = await readForm(req);
  const txn = ctx.state.txns.get(form.txn);
  if (!txn || !txn.user) return expired(res, 'microsoft');
  ctx.state.txns.delete(txn.id);
  if (form.action === 'accept') {
    grantConsent(ctx.state, txn.provider, userKey(txn.provider, txn.user), txn.clientId, txn.consentKeys);
    txn.complete(res, txn);
  } else {
    txn.deny(res, txn);
  }
}
