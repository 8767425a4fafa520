// The loopback redirect of the browser sign-in, for Microsoft (MSAL), custom and Google
// profiles, with the real CLI, the fake identity provider and a real headless Chromium:
//   - Chromium tries [::1] first for http://localhost:PORT, so another program listening on
//     [::1]:PORT would get the authorization code and show its own "Signed in" page; oauthmail
//     must hold every loopback address of its port, or refuse to start;
//   - the browser page says "Signed in" only once the tokens are stored, and shows the real
//     error when the token exchange fails.
import { describe, it, expect, beforeEach } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { backgroundCli, type CliHome, type CliResult } from '../support/cli.js';
import { fixtures } from '../support/stack-env.js';
import { cliSession } from '../support/cli-session.js';
import { signInOnPage, withBrowser } from '../support/provider-checks.js';

type Page = import('playwright-core').Page;

const session = cliSession();
const { url: idpUrl, admin, home, cli, background, transcript } = session;
const MS = fixtures.microsoft;
const ALICE = MS.users[0]!;
const GCLIENT = fixtures.google.clients[0]!;
const CAROL = fixtures.google.users[0]!;

interface ProviderCase {
  kind: 'microsoft' | 'custom' | 'google';
  /** `profile add NAME ...` for this provider, with `extra` flags. */
  add(h: CliHome, name: string, extra: string[]): Promise<CliResult>;
  /** The sign-in URL on stderr. */
  urlRe: RegExp;
  /** Sign in and consent on the IdP's pages; the browser then goes to the redirect URI. */
  signIn(page: Page, url: string): Promise<void>;
  /** The fake IdP's fault name for the token endpoint. */
  tokenEndpoint: string;
  account: string;
  /**
   * The default redirect is the IP literal http://127.0.0.1:PORT/ (RFC 8252 §8.3; custom
   * providers), not http://localhost:PORT: the browser cannot be sent to [::1] at all then.
   */
  ipLiteral?: boolean;
}

const googleLike = (h: CliHome, name: string, args: string[]) =>
  cli(
    h,
    [
      'profile',
      'add',
      name,
      '--client-id',
      GCLIENT.clientId,
      '--client-type',
      'secret',
      '--client-secret-stdin',
      '--user',
      CAROL.email,
      '--storage',
      'file',
      ...args,
    ],
    GCLIENT.secret,
  );

const CASES: ProviderCase[] = [
  {
    kind: 'microsoft',
    add: (h, name, extra) =>
      cli(h, [
        'profile',
        'add',
        name,
        '--client-id',
        MS.clients[0]!.clientId,
        '--authority',
        `${idpUrl()}/${MS.tenantId}/`,
        '--user',
        ALICE.upn,
        '--storage',
        'file',
        ...extra,
      ]),
    urlRe: /(https:\/\/\S+\/oauth2\/v2\.0\/authorize\?\S+)/,
    signIn: async (page, url) => {
      await page.goto(url);
      await page.fill('#username', ALICE.upn);
      await page.fill('#password', ALICE.password);
      await page.click('#signin');
      await page.click('#accept');
    },
    tokenEndpoint: 'token',
    account: ALICE.upn,
  },
  {
    kind: 'custom',
    add: (h, name, extra) =>
      googleLike(h, name, [
        '--provider',
        'custom',
        '--scopes',
        'mail',
        '--issuer',
        `${idpUrl()}/custom`,
        '--auth-param',
        'access_type=offline',
        ...extra,
      ]),
    urlRe: /(https:\/\/\S+\/custom\/authorize\?\S+)/,
    signIn: async (page, url) => {
      await signInOnPage(page, url, CAROL);
      await page.click('#accept');
    },
    tokenEndpoint: 'custom.token',
    account: CAROL.email,
    ipLiteral: true,
  },
  {
    kind: 'google',
    add: (h, name, extra) =>
      googleLike(h, name, [
        '--provider',
        'google',
        '--authorization-endpoint',
        `${idpUrl()}/o/oauth2/v2/auth`,
        '--token-endpoint',
        `${idpUrl()}/token`,
        ...extra,
      ]),
    urlRe: /(https:\/\/\S+\/o\/oauth2\/v2\/auth\?\S+)/,
    signIn: async (page, url) => {
      await signInOnPage(page, url, CAROL);
      await page.click('#accept');
    },
    tokenEndpoint: 'google.token',
    account: CAROL.email,
  },
];

/** Another local program on `host`:`port` (0: any) that records what reaches it and says "Signed in". */
async function squatter(host: string, port = 0) {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    req.resume();
    res.writeHead(200, { 'content-type': 'text/html', connection: 'close' });
    res.end('<!doctype html><h1 id="squatter">Signed in</h1>');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Can a program listen on `host`:`port`? Resolves the error code when it cannot. */
async function listenError(host: string, port: number): Promise<string | undefined> {
  try {
    const s = await squatter(host, port);
    await s.close();
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
}

const redirectPortOf = (signInUrl: string) =>
  Number(new URL(new URL(signInUrl).searchParams.get('redirect_uri')!).port);

beforeEach(async () => {
  await admin('reset', {});
});

describe.each(CASES)('$kind browser sign-in: the loopback redirect', (p) => {
  it('a program already listening on [::1]:PORT never receives the sign-in response: login refuses to start, naming the address and the fix', async () => {
    const sq = await squatter('::1');
    try {
      const h = home();
      const add = await p.add(h, 'work', ['--set', `redirectPort=${sq.port}`]);
      expect(add.code, add.stderr).toBe(0);
      const bg = backgroundCli(h, ['login', 'work', '--no-browser', '--timeout', '60'], p.urlRe, {
        killAfterMs: 60_000,
        onExit: (r) => transcript.push({ args: ['login', 'work'], stdout: r.stdout, stderr: r.stderr }),
      });
      const started = await Promise.race([bg.matched.then((m) => m[1]!), bg.done.then(() => undefined)]);
      if (started) {
        // it did start: sign in as a person would, and see where Chromium sends the response
        await withBrowser(async (page) => {
          await p.signIn(page, started);
          await page
            .waitForSelector('#squatter, #oauthmail-success, #oauthmail-error', { timeout: 20_000 })
            .catch(() => undefined);
        });
        bg.child.kill();
      }
      const r = await bg.done;
      expect(sq.hits, 'the other program received the sign-in response').toEqual([]);
      if (p.ipLiteral) {
        // redirected to 127.0.0.1 itself: [::1] plays no part, and the sign-in goes through
        expect(started).toBeDefined();
        expect(new URL(started!).searchParams.get('redirect_uri')).toBe(`http://127.0.0.1:${sq.port}/`);
        expect(r.code, r.stderr).toBe(0);
      } else {
        expect(r.code, r.stderr).toBe(3);
        expect(r.stderr).toContain(`oauthmail: the sign-in redirect address [::1]:${sq.port} is in use`);
        expect(r.stderr).toContain(`oauthmail profile edit work --set redirectPort=`);
      }
      expect(r.stdout).toBe('');
    } finally {
      await sq.close();
    }
  }, 90_000);

  it('holds every loopback address of its port, and says "Signed in" only once the tokens are stored', async () => {
    // the token exchange takes a while: a page answered before it would say "Signed in" early
    await admin('faults', { endpoint: p.tokenEndpoint, grantType: 'authorization_code', delayMs: 3000 });
    const h = home();
    expect((await p.add(h, 'work', [])).code).toBe(0);
    const bg = background(h, ['login', 'work', '--no-browser', '--timeout', '60'], p.urlRe);
    const url = (await bg.matched)[1]!;
    const port = redirectPortOf(url);
    expect(port).toBeGreaterThan(0);
    // nobody else can take the port on the loopback address(es) the browser may be sent to
    if (p.ipLiteral) expect(new URL(url).searchParams.get('redirect_uri')).toBe(`http://127.0.0.1:${port}/`);
    else expect(await listenError('::1', port)).toBe('EADDRINUSE');
    expect(await listenError('127.0.0.1', port)).toBe('EADDRINUSE');
    await withBrowser(async (page) => {
      await p.signIn(page, url);
      await page.waitForSelector('#oauthmail-success', { timeout: 30_000 });
      // the moment the page says so, the sign-in is stored
      const st = await cli(h, ['status', 'work', '--json']);
      expect(JSON.parse(st.stdout)).toMatchObject([{ name: 'work', signedIn: true, hasRefreshToken: true }]);
      expect(await page.textContent('h1')).toBe(`Signed in as ${p.account}`);
    });
    const r = await bg.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Signed in to work/);
  }, 90_000);

  it('when the token exchange fails, the browser shows that error, not "Signed in"', async () => {
    await admin('faults', { endpoint: p.tokenEndpoint, grantType: 'authorization_code', status: 400 });
    const h = home();
    expect((await p.add(h, 'work', [])).code).toBe(0);
    const bg = background(h, ['login', 'work', '--no-browser', '--timeout', '60'], p.urlRe);
    const url = (await bg.matched)[1]!;
    let pageText = '';
    await withBrowser(async (page) => {
      await p.signIn(page, url);
      await page.waitForSelector('#oauthmail-success, #oauthmail-error', { timeout: 30_000 });
      expect(await page.locator('#oauthmail-success').count(), 'a success page').toBe(0);
      expect(await page.textContent('h1')).toMatch(/^Sign-in failed/);
      pageText = (await page.textContent('main'))!;
    });
    const r = await bg.done;
    expect(r.code).toBe(4);
    // the page carries the terminal's message and its hint
    const message = /^oauthmail: (.+)$/m.exec(r.stderr)![1]!;
    const hint = /^hint: (.+)$/m.exec(r.stderr)![1]!;
    expect(pageText.toLowerCase()).toContain(message.toLowerCase().replace(/ \(aadsts\d+\)$/, ''));
    expect(pageText).toContain(hint);
    const st = await cli(h, ['status', 'work', '--json']);
    expect(JSON.parse(st.stdout)).toMatchObject([{ name: 'work', signedIn: false }]);
  }, 90_000);
});
