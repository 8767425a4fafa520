// Custom (standards-based) OAuth 2.0 provider end to end: the real CLI against the fake identity
// provider's /custom authorization server (RFC 8414 discovery, auth code + PKCE, RFC 8628 device
// code, rotating refresh tokens, client_secret_basic and client_secret_post), headless Chromium,
// and Postfix + Dovecot accepting the tokens (Dovecot lists the custom issuer, scope "mail").
import { describe, it, expect, beforeEach } from 'vitest';
import { type CliHome } from '../support/cli.js';
import { addCustomProfile as addCustom, CAROL, CUSTOM_CLIENT as CLIENT } from '../support/signin.js';
import { cliSession } from '../support/cli-session.js';
import { claims, providerChecks, signInOnPage, withBrowser } from '../support/provider-checks.js';

const session = cliSession();
const { url: idpUrl, adminGet, admin, home, cli, background } = session;
const secrets = new Set<string>([CLIENT.secret, CAROL.password]);
const { token, refreshTokenOf, imapAccepts, smtpSends, expectNoSecretsPrinted } = providerChecks(
  session,
  secrets,
);

/** profile add through the session's recorded runner (its transcript feeds the leak check) */
async function addCustomProfile(h: CliHome, name: string, extra: string[]) {
  const r = await addCustom({ run: (args, o) => cli(h, args, o?.input) }, name, undefined, extra);
  expect(r.code, r.stderr).toBe(0);
}

beforeEach(async () => {
  await admin('reset', {});
  await admin('config', { deviceCodeInterval: 1 });
});

describe('custom provider', () => {
  it('discovers the endpoints from the issuer, signs in by browser, refreshes (rotating), and Postfix + Dovecot accept the token', async () => {
    // Access tokens live 50 s: less than the validity `export` (60 s) and `token` (300 s, the default
    // --min-validity) ask of a cached token, so each of them finds it expiring and refreshes, as
    // after expiry, without waiting for one (a 3 s token and 3.5 s waits failed under load).
    await admin('config', { accessTokenLifetime: 50 });
    const h = home();
    await addCustomProfile(h, 'corp', [
      '--issuer',
      `${idpUrl()}/custom`,
      '--auth-param',
      'access_type=offline',
    ]);
    const bg = background(
      h,
      ['login', 'corp', '--no-browser', '--timeout', '60'],
      /(https:\/\/\S+\/custom\/authorize\?\S+)/,
    );
    const url = new URL((await bg.matched)[1]!);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('access_type')).toBe('offline');
    expect(url.searchParams.get('scope')).toBe('mail');
    await withBrowser(async (page) => {
      await signInOnPage(page, url.toString(), CAROL);
      await page.click('#accept');
      await page.waitForSelector('#oauthmail-success', { timeout: 20_000 });
    });
    const login = await bg.done;
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toBe('');
    expect(login.stderr).toMatch(/Signed in to corp/);

    const rt1 = await refreshTokenOf(h, 'corp');
    const refreshes = async () => ((await adminGet('stats'))['custom.token']?.refresh_token ?? 0) as number;
    const before = await refreshes();
    const t1 = await token(h, 'corp');
    expect(await refreshes()).toBe(before + 1); // the expiring cached token was not handed out
    const rt2 = await refreshTokenOf(h, 'corp');
    expect(rt2).not.toBe(rt1); // the rotated refresh token was stored
    const t2 = await token(h, 'corp');
    expect(t2).not.toBe(t1);
    expect(claims(t2).iss).toBe('https://custom-idp.oauthmail.test');
    const stats = await adminGet('stats');
    expect(stats['custom.token'].refresh_token).toBeGreaterThanOrEqual(3);
    expect(stats['custom.auth'].basic).toBeGreaterThanOrEqual(4);
    expect(stats['custom.auth'].post ?? 0).toBe(0);

    await imapAccepts(CAROL.email, t2);
    await smtpSends(CAROL.email, t2);
  }, 120_000);

  it('signs in with a device code (explicit endpoints, client_secret_post), refreshes, and the token is accepted', async () => {
    const h = home();
    await addCustomProfile(h, 'corpdev', [
      '--authorization-endpoint',
      `${idpUrl()}/custom/authorize`,
      '--token-endpoint',
      `${idpUrl()}/custom/token`,
      '--device-endpoint',
      `${idpUrl()}/custom/device_authorization`,
      '--set',
      'tokenEndpointAuth=client_secret_post',
    ]);
    const bg = background(h, ['login', 'corpdev', '--device', '--timeout', '60'], /enter the code: (\S+)/);
    const code = (await bg.matched)[1]!;
    await admin('device', { user_code: code, action: 'approve', user: CAROL.email });
    const login = await bg.done;
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toMatch(/Signed in to corpdev/);
    const t1 = await token(h, 'corpdev');
    const t2 = await token(h, 'corpdev', ['--force-refresh']);
    expect(t2).not.toBe(t1);
    const stats = await adminGet('stats');
    expect(stats['custom.auth'].post).toBeGreaterThanOrEqual(3);
    expect(stats['custom.auth'].basic ?? 0).toBe(0);
    await imapAccepts(CAROL.email, t2);
    await smtpSends(CAROL.email, t2);
  }, 120_000);

  it('a refresh token the provider no longer accepts gives exit 4 and the login command', async () => {
    const h = home();
    await addCustomProfile(h, 'corpdev', ['--issuer', `${idpUrl()}/custom`]);
    const bg = background(h, ['login', 'corpdev', '--device', '--timeout', '60'], /enter the code: (\S+)/);
    await admin('device', { user_code: (await bg.matched)[1]!, action: 'approve', user: CAROL.email });
    expect((await bg.done).code).toBe(0);
    // someone else redeems the stored refresh token: rotation burns the copy oauthmail holds
    const rt = await refreshTokenOf(h, 'corpdev');
    const burn = await fetch(`${idpUrl()}/custom/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: rt,
        client_id: CLIENT.clientId,
        client_secret: CLIENT.secret,
      }),
    });
    expect(burn.status).toBe(200);
    secrets.add(((await burn.json()) as { access_token: string }).access_token);
    const r = await cli(h, ['token', 'corpdev', '--force-refresh']);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/refresh token has expired or been revoked/);
    expect(r.stderr).toMatch(/oauthmail login corpdev/);
  }, 60_000);
});

describe('no secrets in output', () => {
  it('no token or secret appears in anything printed, except the stdout of token and export', () => {
    expectNoSecretsPrinted();
  });
});
