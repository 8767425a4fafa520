// Drive the REAL google-auth-library (OAuth2Client with `endpoints`) against the fake IdP; prints JSON.
//   NODE_EXTRA_CA_CERTS=PKI/ca.pem node google-smoke.mjs https://localhost:PORT
// The browser part (sign-in + consent pages) is done with plain fetch, as a person would click through.
import { readFileSync } from 'node:fs';
import { OAuth2Client } from 'google-auth-library';
import { DEFAULT_FIXTURES } from './index.mjs';

const base = process.argv[2];
if (!base) {
  process.stderr.write('usage: node google-smoke.mjs https://localhost:PORT\n');
  process.exit(2);
}
const g = JSON.parse(readFileSync(DEFAULT_FIXTURES, 'utf8')).google;
const client = g.clients[0];
const user = g.users[0];
const c = new OAuth2Client({
  clientId: client.clientId,
  clientSecret: client.secret,
  redirectUri: 'http://127.0.0.1:47000',
  endpoints: {
    oauth2AuthBaseUrl: `${base}/o/oauth2/v2/auth`,
    oauth2TokenUrl: `${base}/token`,
    oauth2RevokeUrl: `${base}/revoke`,
    tokenInfoUrl: `${base}/tokeninfo`,
  },
});
const { codeVerifier, codeChallenge } = await c.generateCodeVerifierAsync();
const authUrl = c.generateAuthUrl({
  access_type: 'offline',
  prompt: 'consent',
  scope: ['https://mail.google.com/'],
  code_challenge: codeChallenge,
  code_challenge_method: 'S256',
  state: 'gstate',
});
const txnOf = (html) => /name="txn" value="([^"]+)"/.exec(html)[1];
const go = (u, opt) => fetch(u, { redirect: 'manual', ...opt });
let r = await go(authUrl);
r = await go(`${base}/_flow/login`, {
  method: 'POST',
  body: new URLSearchParams({ txn: txnOf(await r.text()), username: user.email, password: user.password }),
});
r = await go(`${base}/_flow/consent`, {
  method: 'POST',
  body: new URLSearchParams({ txn: txnOf(await r.text()), action: 'accept' }),
});
const code = new URL(r.headers.get('location')).searchParams.get('code');
const out = {};
const { tokens } = await c.getToken({ code, codeVerifier });
out.exchange = { keys: Object.keys(tokens).sort(), scope: tokens.scope };
c.setCredentials({ refresh_token: tokens.refresh_token });
const at = await c.getAccessToken();
out.refreshed = Boolean(at.token) && at.token !== tokens.access_token;
const info = await c.getTokenInfo(at.token);
out.tokenInfo = { email: info.email, scopes: info.scopes, aud: info.aud };
await c.revokeToken(tokens.refresh_token);
try {
  const c2 = new OAuth2Client({
    clientId: client.clientId,
    clientSecret: client.secret,
    endpoints: { oauth2TokenUrl: `${base}/token` },
  });
  c2.setCredentials({ refresh_token: tokens.refresh_token });
  await c2.getAccessToken();
  out.afterRevoke = 'no error';
} catch (e) {
  out.afterRevoke = e.response?.data ?? String(e);
}
process.stdout.write(JSON.stringify(out) + '\n');
