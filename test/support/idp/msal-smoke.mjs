// Drive the REAL @azure/msal-node against the fake IdP and print non-secret results as JSON.
// Run with the test CA trusted:  NODE_EXTRA_CA_CERTS=PKI/ca.pem node msal-smoke.mjs https://localhost:PORT
// Used by test/integration/idp.test.ts; also a quick manual check of the IdP.
import { readFileSync } from 'node:fs';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { PublicClientApplication, ConfidentialClientApplication } from '@azure/msal-node';
import { DEFAULT_FIXTURES } from './index.mjs';

const base = process.argv[2];
if (!base) {
  process.stderr.write('usage: node msal-smoke.mjs https://localhost:PORT\n');
  process.exit(2);
}
const fx = JSON.parse(readFileSync(process.argv[3] || DEFAULT_FIXTURES, 'utf8')).microsoft;
const host = new URL(base).host;
const authority = `${base}/${fx.tenantId}/`;
const publicClient = fx.clients.find((c) => c.type === 'public');
const daemon = fx.clients.find((c) => c.appRoles);
const SCOPES = ['https://outlook.office.com/IMAP.AccessAsUser.All', 'https://outlook.office.com/SMTP.Send'];

async function admin(path, body) {
  const r = await fetch(`${base}${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!r.ok) throw new Error(`admin ${path}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
const summary = (r) => {
  const c = claimsOf(r.accessToken);
  return {
    username: r.account?.username ?? null,
    homeAccountId: r.account?.homeAccountId ?? null,
    tenantId: r.tenantId || null,
    scopes: r.scopes,
    fromCache: r.fromCache,
    hasIdToken: Boolean(r.idToken),
    tokenType: r.tokenType,
    aud: c.aud,
    scp: c.scp ?? null,
    roles: c.roles ?? null,
    email: c.email ?? null,
    appidacr: c.appidacr,
    uti: c.uti,
  };
};

const out = {};

// 1. Public client with knownAuthorities: device code, then a forced refresh, then a cache hit.
const pca = new PublicClientApplication({
  auth: { clientId: publicClient.clientId, authority, knownAuthorities: [host] },
});
let userCodeSeen = null;
const dc = await pca.acquireTokenByDeviceCode({
  scopes: SCOPES,
  deviceCodeCallback: (resp) => {
    userCodeSeen = resp.userCode;
    out.deviceCodeMessage = resp.message;
    // approve like a person would, while MSAL polls
    admin('/_admin/device', { user_code: resp.userCode, action: 'approve', user: fx.users[0].upn }).catch(
      (e) => {
        process.stderr.write(`approve failed: ${e}\n`);
      },
    );
  },
});
out.deviceCode = { ...summary(dc), userCodeSeen: Boolean(userCodeSeen) };
const accounts = await pca.getTokenCache().getAllAccounts();
out.accounts = accounts.map((a) => a.username);
const refreshed = await pca.acquireTokenSilent({ account: accounts[0], scopes: SCOPES, forceRefresh: true });
out.refresh = summary(refreshed);
const cached = await pca.acquireTokenSilent({ account: accounts[0], scopes: SCOPES });
out.silentCached = summary(cached);

// 2. Confidential client, client secret, knownAuthorities.
const cca = new ConfidentialClientApplication({
  auth: { clientId: daemon.clientId, clientSecret: daemon.secret, authority, knownAuthorities: [host] },
});
out.clientCredential = summary(
  await cca.acquireTokenByClientCredential({ scopes: ['https://outlook.office365.com/.default'] }),
);

// 3. Confidential client with a certificate (private_key_jwt, PS256 + x5t#S256), registered via the admin API.
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' });
const thumbprintSha256 = createHash('sha256')
  .update(publicKey.export({ type: 'spki', format: 'der' }))
  .digest('hex');
await admin(`/_admin/clients/${daemon.clientId}/certificate`, {
  publicKeyPem,
  thumbprintSha256,
  replace: true,
});
const ccaCert = new ConfidentialClientApplication({
  auth: {
    clientId: daemon.clientId,
    authority,
    knownAuthorities: [host],
    clientCertificate: { thumbprintSha256, privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) },
  },
});
out.certificate = summary(
  await ccaCert.acquireTokenByClientCredential({ scopes: ['https://outlook.office365.com/.default'] }),
);

// 4. No knownAuthorities: authorityMetadata + cloudDiscoveryMetadata fetched from the IdP itself.
const authorityMetadata = JSON.stringify(
  await (await fetch(`${base}/${fx.tenantId}/v2.0/.well-known/openid-configuration`)).json(),
);
const cloudDiscoveryMetadata = JSON.stringify(
  await (await fetch(`${base}/common/discovery/instance`)).json(),
);
const ccaMeta = new ConfidentialClientApplication({
  auth: {
    clientId: daemon.clientId,
    clientSecret: daemon.secret,
    authority,
    authorityMetadata,
    cloudDiscoveryMetadata,
  },
});
out.metadataMode = summary(
  await ccaMeta.acquireTokenByClientCredential({ scopes: ['https://outlook.office.com/.default'] }),
);

process.stdout.write(JSON.stringify(out) + '\n');
