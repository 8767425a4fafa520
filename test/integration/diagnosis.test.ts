/**
 * Failures named right (issue 14, "Wrong diagnosis"), through the real CLI against a private fake
 * identity provider and the stack's Postfix + Dovecot: a wrong tenant is a configuration error,
 * a Microsoft profile is never given Gmail's advice, hints name the real profile, a custom
 * provider's device-code timeout is exit 4, a dropped offline_access points at --prompt consent,
 * custom profiles get their own consent URL and guide, and the Microsoft consent URLs end on a page.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { backgroundCli, cliHome, type CliHome, type CliResult } from '../support/cli.js';
import { signInOnPage, withBrowser } from '../support/provider-checks.js';
import { stackEnv, fixtures as stackFixtures } from '../support/stack-env.js';
import {
  ALICE,
  TID,
  addMicrosoftProfile,
  signInDevice,
  startTestIdp,
  type TestIdp,
} from '../support/signin.js';

const s = stackEnv();
let idp: TestIdp;
const CONFIDENTIAL = stackFixtures.microsoft.clients[1]! as { clientId: string; secret: string };
const GCLIENT = stackFixtures.google.clients[0]!;
const CAROL = stackFixtures.google.users[0]! as { email: string; password: string };
const BOB = 'bob@contoso.test';
const BOB_PASSWORD = (stackFixtures.microsoft.users.find((u) => u.upn === BOB) as { password: string })
  .password;

const home = (): CliHome =>
  cliHome({ NODE_EXTRA_CA_CERTS: s.caFile, DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
const run = (h: CliHome, args: string[], input?: string): Promise<CliResult> =>
  h.run(args, { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
const ok = (r: CliResult) => expect(r.code, r.stderr).toBe(0);

beforeAll(async () => {
  idp = await startTestIdp();
});
afterAll(async () => {
  await idp?.close();
});
beforeEach(async () => {
  await idp.admin('reset', {});
  await idp.admin('config', { deviceCodeInterval: 1 });
});

describe('a tenant that does not exist (400 AADSTS90002 at endpoint discovery)', () => {
  it('login, token and test say it is a configuration error naming the tenant (exit 3), not a network one', async () => {
    const h = home();
    ok(await addMicrosoftProfile(h, 'typo', idp.url, ['--authority', `${idp.url}/contoso-typo.test/`]));
    ok(
      await run(
        h,
        [
          'profile',
          'add',
          'daemon',
          '--client-id',
          CONFIDENTIAL.clientId,
          '--authority',
          `${idp.url}/contoso-typo.test/`,
          '--flow',
          'client-credentials',
          '--client-type',
          'secret',
          '--client-secret-stdin',
          '--user',
          ALICE.upn,
          '--storage',
          'file',
        ],
        CONFIDENTIAL.secret,
      ),
    );
    const login = await run(h, ['login', 'typo', '--device', '--timeout', '20']);
    const token = await run(h, ['token', 'daemon']);
    const test = await run(h, ['test', 'daemon']);
    for (const r of [login, token]) {
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/the tenant contoso-typo\.test was not found/);
      expect(r.stderr).toMatch(/AADSTS90002/);
      expect(r.stderr).not.toMatch(/cannot reach|safe to retry/);
      expect(r.stderr).toMatch(
        /hint: .*oauthmail profile edit (typo|daemon) --set authority=https:\/\/localhost:\d+\/contoso\.onmicrosoft\.com\//,
      );
    }
    expect(test.code, test.stdout + test.stderr).toBe(3);
    expect(test.stdout).toMatch(/FAIL {2}token .*the tenant contoso-typo\.test was not found/);
    expect(test.stdout + test.stderr).not.toMatch(/cannot reach|safe to retry/);
  }, 90_000);
});

describe('advice follows the profile, and names it', () => {
  it('a Microsoft profile whose token user is not the mailbox: no Gmail advice from send; send, fetch and mailboxes hints name the profile', async () => {
    const h = home();
    ok(
      await addMicrosoftProfile(h, 'wrong', idp.url, [
        '--user',
        BOB,
        '--smtp',
        `localhost:${s.smtp.port}`,
        '--smtp-security',
        'starttls',
        '--imap',
        `localhost:${s.imap.imapsPort}`,
        '--imap-security',
        'tls',
      ]),
    );
    ok(await signInDevice(h, 'wrong', idp, ALICE.upn)); // the token is Alice's, the mailbox Bob's
    const send = await run(h, ['send', '-p', 'wrong', '--to', BOB, '-s', 'x', '--body', 'y']);
    expect(send.code, send.stderr).toBe(5);
    expect(send.stderr).toMatch(/535 5\.7\.8/);
    expect(send.stderr).not.toMatch(/Gmail/);
    expect(send.stderr).toMatch(/hint: .*oauthmail login wrong\b/);
    expect(send.stderr).not.toMatch(/PROFILE|\bNAME\b/);

    const fetch = await run(h, ['fetch', '-p', 'wrong', '--out', `${h.dir}/mail`]);
    expect(fetch.code, fetch.stderr).toBe(5);
    expect(fetch.stderr).toMatch(/hint: .*oauthmail login wrong\b/);
    expect(fetch.stderr).not.toMatch(/PROFILE|\bNAME\b/);

    const mb = await run(h, ['mailboxes', '-p', 'wrong', '--ca', s.caFile]);
    expect(mb.code, mb.stderr).toBe(5);
    expect(mb.stderr).toMatch(/hint: .*oauthmail login wrong\b/);
    expect(mb.stderr).not.toMatch(/PROFILE|\bNAME\b/);
  }, 90_000);

  it('a profile without an SMTP server: the hint edits that profile', async () => {
    const h = home();
    ok(
      await run(
        h,
        [
          'profile',
          'add',
          'corp',
          '--provider',
          'custom',
          '--issuer',
          `${idp.url}/custom`,
          '--client-id',
          GCLIENT.clientId,
          '--client-type',
          'secret',
          '--client-secret-stdin',
          '--scopes',
          'mail',
          '--user',
          CAROL.email,
          '--storage',
          'file',
        ],
        GCLIENT.secret,
      ),
    );
    const send = await run(h, ['send', '-p', 'corp', '--to', BOB, '-s', 'x', '--body', 'y']);
    expect(send.code, send.stderr).toBe(3);
    expect(send.stderr).toMatch(/hint: set it: oauthmail profile edit corp --smtp /);
  }, 60_000);
});

/** A custom-provider profile at the private IdP's /custom authorization server. */
async function addCustom(h: CliHome, name: string, extra: string[]) {
  ok(
    await run(
      h,
      [
        'profile',
        'add',
        name,
        '--provider',
        'custom',
        '--issuer',
        `${idp.url}/custom`,
        '--client-id',
        GCLIENT.clientId,
        '--client-type',
        'secret',
        '--client-secret-stdin',
        '--user',
        CAROL.email,
        '--storage',
        'file',
        ...extra,
      ],
      GCLIENT.secret,
    ),
  );
}

/** `oauthmail login ARGS` in the background; resolves with the authorize URL it prints. */
function loginInBackground(h: CliHome, args: string[]) {
  const { matched, done } = backgroundCli(h, ['login', ...args], /(https:\/\/\S+\/custom\/authorize\?\S+)/, {
    killAfterMs: 90_000,
  });
  const early = done.then((r) => Promise.reject(new Error(`exited early (${r.code}): ${r.stderr}`)));
  return { url: Promise.race([matched, early]).then((m) => m[1]!), done };
}

describe('custom provider', () => {
  it('login --device that nobody approves: exit 4 "did not finish in time", like the browser timeout', async () => {
    const h = home();
    await addCustom(h, 'corp', ['--scopes', 'mail']);
    const r = await run(h, ['login', 'corp', '--device', '--timeout', '1']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/oauthmail: the device-code sign-in did not finish in time/);
    expect(r.stderr).toMatch(/hint: run: oauthmail login corp --device/);
    expect(r.stderr).not.toMatch(/operation timed out|sign-in failed/);
  }, 60_000);

  it('offline_access dropped without prompt=consent (OpenID Connect Core 11): the hint says --prompt consent, and that works', async () => {
    const h = home();
    await addCustom(h, 'corp', ['--scopes', 'mail offline_access']);
    const first = loginInBackground(h, ['corp', '--no-browser', '--timeout', '60']);
    await withBrowser(async (page) => {
      await signInOnPage(page, await first.url, CAROL);
      await page.click('#accept');
      await page.waitForSelector('#oauthmail-success, #oauthmail-error', { timeout: 20_000 });
    });
    const r1 = await first.done;
    expect(r1.code, r1.stderr).toBe(4);
    expect(r1.stderr).toMatch(/returned no refresh token/);
    expect(r1.stderr).toMatch(/hint: .*oauthmail login corp --prompt consent/);
    expect(r1.stderr).not.toMatch(/--set scopes=/); // the profile already asks for offline_access

    const second = loginInBackground(h, ['corp', '--no-browser', '--timeout', '60', '--prompt', 'consent']);
    const url = new URL(await second.url);
    expect(url.searchParams.get('prompt')).toBe('consent');
    await withBrowser(async (page) => {
      await signInOnPage(page, url.toString(), CAROL);
      await page.click('#accept');
      await page.waitForSelector('#oauthmail-success', { timeout: 20_000 });
    });
    const r2 = await second.done;
    expect(r2.code, r2.stderr).toBe(0);
    const t = await run(h, ['token', 'corp', '--force-refresh']);
    expect(t.code, t.stderr).toBe(0); // a refresh token was kept
  }, 120_000);
});

describe('where SMTP.Send is registered (guide and scopes agree)', () => {
  it('both say either registration works (Graph → Delegated or Office 365 Exchange Online) and that the audience is what matters', async () => {
    const h = home();
    ok(await addMicrosoftProfile(h, 'work', idp.url));
    const scopes = await run(h, ['scopes', '--provider', 'microsoft']);
    const guide = await run(h, ['guide', 'work']);
    ok(scopes);
    ok(guide);
    const lines = scopes.stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith('  https://outlook.office.com/SMTP.Send '));
    expect(at).toBeGreaterThan(-1);
    const smtpBlock = lines.slice(at, at + 7).join('\n');
    for (const text of [smtpBlock, guide.stdout]) {
      const flat = text.replace(/\s+/g, ' ');
      expect(flat).toMatch(/Microsoft Graph → Delegated/);
      expect(flat).toMatch(/"APIs my organization uses" → Office 365 Exchange Online → Delegated/);
      expect(flat).toMatch(/[Ee]ither registration works/);
    }
    for (const text of [scopes.stdout, guide.stdout]) {
      const flat = text.replace(/\s+/g, ' ');
      expect(flat).toMatch(/What matters is the token's audience/);
      expect(flat).toMatch(
        /a token requested for Microsoft Graph \(https:\/\/graph\.microsoft\.com\/SMTP\.Send\) is refused \(535 5\.7\.3\)/,
      );
    }
  }, 60_000);
});

describe('consent URLs', () => {
  it('custom profile: its own consent URL (the provider accepts it), its own guide, and --admin says why there is none', async () => {
    const h = home();
    await addCustom(h, 'corp', ['--scopes', 'mail offline_access']);
    const c = await run(h, ['consent-url', 'corp']);
    expect(c.code, c.stderr).toBe(0);
    const url = new URL(c.stdout.trim());
    expect(url.origin + url.pathname).toBe(`${idp.url}/custom/authorize`);
    expect(url.searchParams.get('client_id')).toBe(GCLIENT.clientId);
    expect(url.searchParams.get('prompt')).toBe('consent');
    expect(url.searchParams.get('scope')).toBe('mail offline_access');
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    // the same redirect as `login corp` (RFC 8252 §8.3: the loopback IP literal for custom providers)
    expect(url.searchParams.get('redirect_uri')).toBe('http://127.0.0.1/');
    expect(c.stderr).toMatch(/oauthmail login corp --prompt consent/);
    expect(c.stdout + c.stderr).not.toMatch(/Google|accounts\.google\.com/);
    // the provider takes the link: its sign-in page, then the consent page with the scopes
    await withBrowser(async (page) => {
      await signInOnPage(page, url.toString(), CAROL);
      await page.waitForSelector('#accept', { timeout: 20_000 });
      expect(await page.locator('#scopes li[data-scope]').count()).toBe(2);
    });

    const admin = await run(h, ['consent-url', 'corp', '--admin']);
    expect(admin.code).toBe(2);
    expect(admin.stderr).toMatch(/a standards-based OAuth 2\.0 provider has no admin-consent URL/);
    expect(admin.stderr).not.toMatch(/Google/);

    const g = await run(h, ['guide', 'corp']);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout).toMatch(/^Register the OAuth 2\.0 client for profile "corp"/);
    expect(g.stdout).toContain(`custom (${idp.url}/custom)`);
    expect(g.stdout).toMatch(/refresh_token/);
    expect(g.stdout).toMatch(/oauthmail login corp --prompt consent/);
    expect(g.stdout).toContain('http://127.0.0.1/');
    expect(g.stdout).not.toMatch(/Google|Entra|Azure/);
  }, 90_000);

  it('Microsoft: the admin and user consent URLs end on a page that loads (never http://localhost), and the admin consent holds for every user', async () => {
    const h = home();
    ok(await addMicrosoftProfile(h, 'work', idp.url));
    const adm = await run(h, ['consent-url', 'work', '--admin']);
    expect(adm.code, adm.stderr).toBe(0);
    const au = new URL(adm.stdout.trim());
    expect(au.pathname).toBe(`/${TID}/v2.0/adminconsent`);
    const landing = `${idp.url}/common/oauth2/nativeclient`;
    expect(au.searchParams.get('redirect_uri')).toBe(landing);
    expect(adm.stderr).toMatch(/admin_consent=True/);

    const usr = await run(h, ['consent-url', 'work']);
    expect(usr.code, usr.stderr).toBe(0);
    const uu = new URL(usr.stdout.trim());
    expect(uu.searchParams.get('redirect_uri')).toBe(landing);
    expect(uu.searchParams.get('code_challenge_method')).toBe('S256');

    // the administrator (Alice here) opens the admin link, signs in, accepts for the organization
    await withBrowser(async (page) => {
      await signInOnPage(page, au.toString(), { email: ALICE.upn, password: ALICE.password });
      await page.click('#accept');
      await page.waitForURL((u) => u.pathname === '/common/oauth2/nativeclient', { timeout: 20_000 });
      const end = new URL(page.url());
      expect(end.searchParams.get('admin_consent')).toBe('True');
      expect(end.searchParams.get('tenant')).toBe(TID);
      expect(await page.title()).not.toMatch(/error|can.t be reached/i);
    });
    const stats = (await idp.admin('stats')).json;
    expect(stats.admin_consent_granted).toBe(1);
    expect(stats.nativeclient).toBe(1);

    // Bob never consented himself: his sign-in goes straight through (no consent page)
    const bg = backgroundCli(
      h,
      ['login', 'work', '--no-browser', '--timeout', '60'],
      /(https:\/\/\S+\/authorize\?\S+)/,
      {
        killAfterMs: 90_000,
      },
    );
    const loginUrl = (await bg.matched)[1]!;
    await withBrowser(async (page) => {
      await signInOnPage(page, loginUrl, { email: BOB, password: BOB_PASSWORD });
      await page.waitForSelector('#oauthmail-success', { timeout: 20_000 });
    });
    const login = await bg.done;
    expect(login.code, login.stderr).toBe(0);

    // a user opens the user-consent link: it ends on the same page, with a code nobody can redeem
    await withBrowser(async (page) => {
      await signInOnPage(page, uu.toString(), { email: ALICE.upn, password: ALICE.password });
      await page.click('#accept');
      await page.waitForURL((u) => u.pathname === '/common/oauth2/nativeclient', { timeout: 20_000 });
      expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
    });
  }, 120_000);
});
