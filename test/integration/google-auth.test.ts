// Google sign-in end to end: the real CLI with the real google-auth-library against the fake
// identity provider's Google endpoints (over HTTPS, from test/support/with-stack.sh), headless
// Chromium for the consent screen, the keychain (gnome-keyring under with-stack) and the file
// store, and Postfix + Dovecot accepting the tokens. Everything the CLI prints is collected and
// checked for tokens and secrets at the end.
import { describe, it, expect, beforeEach } from 'vitest';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CliHome, type CliResult } from '../support/cli.js';
import { fixtures } from '../support/stack-env.js';
import { cliSession } from '../support/cli-session.js';
import { claims, providerChecks, signInOnPage, withBrowser } from '../support/provider-checks.js';

const session = cliSession();
const { url: idpUrl, adminGet, admin, home, cli, background } = session;
const CLIENT = fixtures.google.clients[0]!;
const CAROL = fixtures.google.users[0]! as { email: string; password: string };
const secrets = new Set<string>([CLIENT.secret, CAROL.password]);
const { token, refreshTokenOf, imapAccepts, smtpSends, expectNoSecretsPrinted } = providerChecks(
  session,
  secrets,
);

async function addGoogleProfile(h: CliHome, name: string, storage: 'file' | 'keychain') {
  const r = await cli(
    h,
    [
      'profile',
      'add',
      name,
      '--provider',
      'google',
      '--client-id',
      CLIENT.clientId,
      '--client-type',
      'secret',
      '--client-secret-stdin',
      '--authorization-endpoint',
      `${idpUrl()}/o/oauth2/v2/auth`,
      '--token-endpoint',
      `${idpUrl()}/token`,
      '--set',
      `revocationEndpoint=${idpUrl()}/revoke`,
      '--user',
      CAROL.email,
      '--storage',
      storage,
    ],
    CLIENT.secret,
  );
  expect(r.code, r.stderr).toBe(0);
}

/** The profile `cron`: a Google service account (key in `keyFile`) acting for Carol. */
function addServiceAccountProfile(h: CliHome, clientId: string, keyFile: string): Promise<CliResult> {
  return cli(h, [
    'profile',
    'add',
    'cron',
    '--provider',
    'google',
    '--flow',
    'service-account',
    '--client-id',
    clientId,
    '--token-endpoint',
    `${idpUrl()}/token`,
    '--user',
    CAROL.email,
    '--service-account-key',
    keyFile,
    '--storage',
    'file',
  ]);
}

/** `oauthmail login NAME --no-browser`, with Chromium signing in as Carol and granting consent. */
async function browserLogin(h: CliHome, name: string): Promise<{ result: CliResult; url: URL }> {
  const bg = background(
    h,
    ['login', name, '--no-browser', '--timeout', '60'],
    /(https:\/\/\S+\/o\/oauth2\/v2\/auth\?\S+)/,
  );
  const url = new URL((await bg.matched)[1]!);
  await withBrowser(async (page) => {
    await signInOnPage(page, url.toString(), CAROL);
    await page.click('#accept');
    await page.waitForSelector('#oauthmail-success', { timeout: 20_000 });
    expect(await page.textContent('h1')).toMatch(/Signed in/);
  });
  return { result: await bg.done, url };
}

beforeEach(async () => {
  await admin('reset', {});
});

describe('Google browser sign-in', () => {
  it('signs in with Chromium, keeps the refresh token in the keychain, refreshes after expiry and persists a rotated refresh token', async () => {
    // Access tokens live 50 s: less than the validity `export` (60 s) and `token` (300 s, the default
    // --min-validity) ask of a cached token, so each of them finds it expiring and refreshes, as
    // after expiry, without waiting for one (a 3 s token and 3.5 s waits failed under load).
    await admin('config', { accessTokenLifetime: 50, rotateGoogleRefreshTokens: true });
    const h = home();
    await addGoogleProfile(h, 'gmail', 'keychain');
    const { result, url } = await browserLogin(h, 'gmail');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/Signed in to gmail as carol@fabrikam\.test/);
    // what Google needs for a refresh token, and PKCE
    expect(url.searchParams.get('access_type')).toBe('offline');
    expect(url.searchParams.get('prompt')).toBe('consent');
    expect(url.searchParams.get('scope')).toBe('https://mail.google.com/');
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');

    const st = await cli(h, ['status', 'gmail', '--json']);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/"hasRefreshToken":\s*true/);
    expect(st.stdout.toLowerCase()).toMatch(/keychain|secret service/);

    const rt1 = await refreshTokenOf(h, 'gmail'); // export refreshes (the token lives 50 s)
    const refreshes = async () => ((await adminGet('stats'))['google.token']?.refresh_token ?? 0) as number;
    const before = await refreshes();
    const t1 = await token(h, 'gmail');
    expect(await refreshes()).toBe(before + 1); // the expiring cached token was not handed out
    expect(claims(t1).email).toBe(CAROL.email);
    expect(Number(claims(t1).exp) * 1000).toBeGreaterThan(Date.now());
    // rotation: the refresh token emitted by google-auth-library was stored
    const rt2 = await refreshTokenOf(h, 'gmail');
    expect(rt2).not.toBe(rt1);
    const t2 = await token(h, 'gmail', ['--verbose']);
    expect(t2).not.toBe(t1);
    const stats = await adminGet('stats');
    expect(stats['google.token'].refresh_token).toBeGreaterThanOrEqual(3);
  }, 120_000);

  it('import takes a refresh token from another tool and redeems it', async () => {
    const a = home();
    await addGoogleProfile(a, 'gmail', 'file');
    expect((await browserLogin(a, 'gmail')).result.code).toBe(0);
    const rt = await refreshTokenOf(a, 'gmail');
    const b = home();
    await addGoogleProfile(b, 'gmail', 'file');
    const file = join(b.dir, 'tokens.json');
    writeFileSync(file, JSON.stringify({ refresh_token: rt }), { mode: 0o600 });
    const imp = await cli(b, ['import', 'gmail', '--file', file]);
    expect(imp.code, imp.stderr).toBe(0);
    expect(claims(await token(b, 'gmail')).email).toBe(CAROL.email);
  }, 120_000);

  it('its token is accepted by Dovecot (IMAP) and Postfix (SMTP)', async () => {
    const h = home();
    await addGoogleProfile(h, 'gmail', 'file');
    const { result } = await browserLogin(h, 'gmail');
    expect(result.code, result.stderr).toBe(0);
    const t = await token(h, 'gmail');
    await imapAccepts(CAROL.email, t);
    await smtpSends(CAROL.email, t);
  }, 120_000);

  it('a revoked or expired refresh token (invalid_grant) exits 4 with the re-consent and 7-day Testing sentence', async () => {
    const h = home();
    await addGoogleProfile(h, 'gmail', 'file');
    const { result } = await browserLogin(h, 'gmail');
    expect(result.code, result.stderr).toBe(0);
    await admin('revoke-refresh-tokens', { user: CAROL.email });
    const r = await cli(h, ['token', 'gmail', '--force-refresh']);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/expired or been revoked/);
    expect(r.stderr).toMatch(/Testing/);
    expect(r.stderr).toMatch(/7 days/);
    expect(r.stderr).toMatch(/oauthmail login gmail/);
  }, 120_000);

  it('--device on a Google profile exits 2 with the reason, without contacting the provider', async () => {
    const h = home();
    await addGoogleProfile(h, 'gmail', 'file');
    const before = await adminGet('stats');
    const r = await cli(h, ['login', 'gmail', '--device']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/device flow does not allow the https:\/\/mail\.google\.com\/ scope/);
    const after = await adminGet('stats');
    expect(after).toEqual(before);
  });

  it('the consent screen cancelled shows our error page and exits 4', async () => {
    const h = home();
    await addGoogleProfile(h, 'gmail', 'file');
    const bg = background(
      h,
      ['login', 'gmail', '--no-browser', '--timeout', '60'],
      /(https:\/\/\S+\/o\/oauth2\/v2\/auth\?\S+)/,
    );
    const url = (await bg.matched)[1]!;
    await withBrowser(async (page) => {
      await signInOnPage(page, url, CAROL);
      await page.click('#cancel');
      await page.waitForSelector('#oauthmail-error', { timeout: 20_000 });
      expect(await page.textContent('body')).toMatch(/What to do/);
    });
    const r = await bg.done;
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/cancelled or consent was refused/);
  }, 120_000);
});

describe('Google Workspace service account', () => {
  it('gets a token for the impersonated user with a signed assertion, accepted by Postfix and Dovecot', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const clientEmail = `mailer-${randomUUID().slice(0, 8)}@oauthmail-test.iam.gserviceaccount.com`;
    await admin('google/service-accounts', {
      client_email: clientEmail,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }),
      domainWideDelegation: true,
      allowedSubjects: [CAROL.email],
    });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    secrets.add(pem.split('\n')[1]!);
    const h = home();
    const keyFile = join(h.dir, 'sa.json');
    writeFileSync(
      keyFile,
      JSON.stringify({
        type: 'service_account',
        client_email: clientEmail,
        private_key: pem,
        private_key_id: 'k1',
        client_id: '1000001',
      }),
      { mode: 0o600 },
    );
    const add = await addServiceAccountProfile(h, '1000001', keyFile);
    expect(add.code, add.stderr).toBe(0);
    // no person needed: login works without a terminal (stdin is not a TTY here)
    const login = await cli(h, ['login', 'cron']);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toMatch(/app-only token for cron/);
    const t = await token(h, 'cron');
    const c = claims(t);
    expect(c.email).toBe(CAROL.email);
    expect(c.scope).toBe('https://mail.google.com/');
    // cached: a second call does not go back to the provider
    const n = (await adminGet('stats'))['google.token']['urn:ietf:params:oauth:grant-type:jwt-bearer'];
    expect(await token(h, 'cron')).toBe(t);
    expect((await adminGet('stats'))['google.token']['urn:ietf:params:oauth:grant-type:jwt-bearer']).toBe(n);
    await imapAccepts(CAROL.email, t);
    await smtpSends(CAROL.email, t);
    const st = await cli(h, ['status', 'cron', '--json']);
    expect(st.code, st.stderr).toBe(0);
    const rows = JSON.parse(st.stdout) as unknown;
    expect(Array.isArray(rows) ? rows : [rows]).toEqual([
      expect.objectContaining({ name: 'cron', signedIn: true, account: CAROL.email }),
    ]);
  }, 60_000);

  it('a service account without domain-wide delegation gets the admin-console sentence (exit 4)', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const clientEmail = `nodwd-${randomUUID().slice(0, 8)}@oauthmail-test.iam.gserviceaccount.com`;
    await admin('google/service-accounts', {
      client_email: clientEmail,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }),
      domainWideDelegation: false,
    });
    const h = home();
    const keyFile = join(h.dir, 'sa.json');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    secrets.add(pem.split('\n')[1]!);
    writeFileSync(
      keyFile,
      JSON.stringify({ type: 'service_account', client_email: clientEmail, private_key: pem }),
    );
    const add = await addServiceAccountProfile(h, '1000002', keyFile);
    expect(add.code, add.stderr).toBe(0);
    const r = await cli(h, ['token', 'cron']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/Domain-wide delegation/);
  });
});

describe('no secrets in output', () => {
  it('no token or secret appears in anything printed, except the stdout of token and export', () => {
    expect(secrets.size).toBeGreaterThan(5);
    expectNoSecretsPrinted();
  });
});
