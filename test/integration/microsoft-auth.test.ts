// Microsoft sign-in end to end: the real CLI (node bin/oauthmail.js) with real MSAL against the
// fake Entra ID (test/support/idp) over HTTPS, and a real headless Chromium for the browser flow.
// Every stdout/stderr the CLI prints is collected and grepped for tokens and secrets at the end.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import https from 'node:https';
import { join } from 'node:path';
import { type CliHome, type CliResult } from '../support/cli.js';
import { withBrowser } from '../support/provider-checks.js';
import {
  ALICE,
  MS,
  PUBLIC,
  TID,
  addProfile as labAddProfile,
  admin as labAdmin,
  background as labBackground,
  claims,
  cli as labCli,
  deviceLogin as labDeviceLogin,
  home as labHome,
  req,
  startLab,
  stopLab,
  type Json,
  type Lab,
} from './lifecycle-support.js';

const DAEMON = MS.clients[2]! as { clientId: string; secret: string };

/** This file's fake Entra ID and CA; its transcript and secrets feed the leak check at the end. */
let lab: Lab;
const admin = (path: string, json?: unknown) => labAdmin(lab, path, json);
const home = (): CliHome => labHome(lab);
const cli = (h: CliHome, args: string[], opts: { timeoutMs?: number; input?: string; spawn?: boolean } = {}) =>
  labCli(lab, h, args, opts);
const background = (h: CliHome, args: string[], waitFor: RegExp) => labBackground(lab, h, args, waitFor);
const addProfile = (h: CliHome, name: string, extra: string[] = []) => labAddProfile(lab, h, name, extra);
const deviceLogin = (h: CliHome, name: string): Promise<CliResult> => labDeviceLogin(lab, h, name);

/** Redeem a refresh token directly at the IdP (to prove rotation: the old one must be refused). */
function redeem(refreshToken: string): Promise<{ status: number; json: Json }> {
  const body = new URLSearchParams({
    grant_type: 'refresh_token',
    client_id: PUBLIC,
    refresh_token: refreshToken,
    scope: 'https://outlook.office.com/SMTP.Send offline_access',
  }).toString();
  const url = new URL(`/${TID}/oauth2/v2.0/token`, lab.idp.url);
  return new Promise((resolve, reject) => {
    const r = https.request(
      url,
      { method: 'POST', ca: lab.ca, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

async function exportTokens(
  h: CliHome,
  name: string,
): Promise<{ access_token: string; refresh_token: string; expires_in: number }> {
  const r = await cli(h, ['export', name, '--yes']);
  expect(r.code, r.stderr).toBe(0);
  const t = JSON.parse(r.stdout);
  lab.secrets.add(t.access_token);
  lab.secrets.add(t.refresh_token);
  return t;
}

beforeAll(async () => {
  lab = await startLab();
}, 60_000);

afterAll(async () => {
  await stopLab(lab);
});

beforeEach(async () => {
  expect((await admin('reset', {})).status).toBe(200);
  expect((await admin('config', { deviceCodeInterval: 1 })).status).toBe(200);
});

describe('device code, token, refresh rotation', () => {
  it('signs in with a device code, prints only the token, and persists the rotated refresh token', async () => {
    const h = home();
    await addProfile(h, 'work');

    const login = await deviceLogin(h, 'work');
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toMatch(/Signed in to work as alice@contoso\.test/);
    expect(login.stdout).toBe('');

    const t1 = await cli(h, ['token', 'work']);
    expect(t1.code, t1.stderr).toBe(0);
    const token1 = t1.stdout.trim();
    lab.secrets.add(token1);
    expect(t1.stdout).toBe(token1 + '\n');
    expect(t1.stderr).toBe('');
    expect(claims(token1)).toMatchObject({ aud: 'https://outlook.office.com', upn: ALICE.upn });

    // cached: no call to the token endpoint
    const before = (await admin('stats')).json;
    const t2 = await cli(h, ['token', 'work']);
    expect(t2.stdout.trim()).toBe(token1);
    const after = (await admin('stats')).json;
    expect(after.token?.refresh_token ?? 0).toBe(before.token?.refresh_token ?? 0);

    // --json and --sasl
    const j = await cli(h, ['token', 'work', '--json']);
    const jo = JSON.parse(j.stdout);
    expect(jo).toMatchObject({ profile: 'work', token: token1, account: ALICE.upn, user: ALICE.upn });
    expect(Date.parse(jo.expiresOn)).toBeGreaterThan(Date.now());
    const s = await cli(h, ['token', 'work', '--sasl']);
    lab.secrets.add(s.stdout.trim());
    expect(Buffer.from(s.stdout.trim(), 'base64').toString()).toBe(
      `user=${ALICE.upn}\x01auth=Bearer ${token1}\x01\x01`,
    );

    // "expired": the token has less left than --min-validity → refresh; the old refresh token dies
    const old = await exportTokens(h, 'work');
    const t3 = await cli(h, ['token', 'work', '--min-validity', '3700']);
    expect(t3.code, t3.stderr).toBe(0);
    const token3 = t3.stdout.trim();
    lab.secrets.add(token3);
    expect(token3).not.toBe(token1);
    const now = await exportTokens(h, 'work');
    expect(now.refresh_token).not.toBe(old.refresh_token);
    const reuse = await redeem(old.refresh_token);
    expect(reuse.status).toBe(400);
    expect(reuse.json.error).toBe('invalid_grant');
    // the stored (rotated) one still works: refresh once more through the CLI
    const t4 = await cli(h, ['token', 'work', '--force-refresh']);
    expect(t4.code, t4.stderr).toBe(0);
    lab.secrets.add(t4.stdout.trim());

    const st = await cli(h, ['status', 'work', '--json']);
    expect(st.code).toBe(0);
    expect(JSON.parse(st.stdout)[0]).toMatchObject({
      name: 'work',
      signedIn: true,
      account: ALICE.upn,
      hasRefreshToken: true,
    });
  });

  it('20 concurrent token processes on an expired access token all succeed, and the stored refresh token stays valid', async () => {
    const h = home();
    await addProfile(h, 'work');
    expect((await deviceLogin(h, 'work')).code).toBe(0);
    // new tokens live 200 s: under the default --min-validity of 300 s they count as expired
    expect((await admin('config', { accessTokenLifetime: 200 })).status).toBe(200);
    const first = await cli(h, ['token', 'work', '--force-refresh']);
    expect(first.code, first.stderr).toBe(0);
    lab.secrets.add(first.stdout.trim());

    const results = await Promise.all(
      // real processes: the cross-process lock is what this is about
      Array.from({ length: 20 }, () => cli(h, ['token', 'work'], { timeoutMs: 60_000, spawn: true })),
    );
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
      lab.secrets.add(r.stdout.trim());
    }
    // after all that, the stored refresh token must still be the live one
    expect((await admin('config', { accessTokenLifetime: 3600 })).status).toBe(200);
    const again = await cli(h, ['token', 'work', '--force-refresh']);
    expect(again.code, again.stderr).toBe(0);
    lab.secrets.add(again.stdout.trim());
    const stats = (await admin('stats')).json;
    // serialized: at most one concurrent token request at a time against the IdP from these processes
    expect(stats.inFlight.token.max).toBe(1);
  }, 120_000);
});

describe('without a person at the terminal', () => {
  it('login without --device fails with exit 4 and the command to run; token without sign-in exits 4', async () => {
    const h = home();
    await addProfile(h, 'work');
    const l = await cli(h, ['login', 'work'], { timeoutMs: 10_000 });
    expect(l.code).toBe(4);
    expect(l.stderr).toMatch(/run: oauthmail login work/);
    expect(l.stdout).toBe('');
    const t = await cli(h, ['token', 'work']);
    expect(t.code).toBe(4);
    expect(t.stderr).toMatch(/run: oauthmail login work/);
    expect(t.stdout).toBe('');
    const s = await cli(h, ['status', 'work']);
    expect(s.code).toBe(4);
    const e = await cli(h, ['export', 'work']);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/--yes/);
  });

  it('a declined device code exits 4 with a sentence', async () => {
    const h = home();
    await addProfile(h, 'work');
    const bg = background(h, ['login', 'work', '--device'], /enter the code: (\S+)/);
    const m = await bg.matched;
    await admin('device', { user_code: m[1], action: 'deny' });
    const r = await bg.done;
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/declined/);
  });

  it('slow_down makes polling slower instead of failing; an expired code exits 4', async () => {
    const h = home();
    await addProfile(h, 'work');
    await admin('faults', {
      endpoint: 'token',
      grantType: 'urn:ietf:params:oauth:grant-type:device_code',
      status: 400,
      body: { error: 'slow_down', error_description: 'slow down' },
      times: 1,
    });
    await admin('faults', {
      endpoint: 'token',
      grantType: 'device_code',
      status: 400,
      body: { error: 'slow_down', error_description: 'slow down' },
      times: 1,
    });
    const ok = await deviceLogin(h, 'work');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/poll more slowly: every 6 s now/);
    await req(lab, 'DELETE', '/_admin/faults');

    const bg = background(h, ['login', 'work', '--device'], /enter the code: (\S+)/);
    const m = await bg.matched;
    await admin('device', { user_code: m[1], action: 'expire' });
    const r = await bg.done;
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/expired/);
    expect(r.stderr).toMatch(/oauthmail login work --device/);
  }, 60_000);

  it('a refresh token revoked at the IdP gives exit 4 and the login command', async () => {
    const h = home();
    await addProfile(h, 'work');
    expect((await deviceLogin(h, 'work')).code).toBe(0);
    await admin('revoke-refresh-tokens', { user: ALICE.upn });
    const r = await cli(h, ['token', 'work', '--force-refresh']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/AADSTS50173/);
    expect(r.stderr).toMatch(/run: oauthmail login work/);
  });

  it('the IdP throttling (429) gives exit 6', async () => {
    const h = home();
    await addProfile(h, 'work');
    expect((await deviceLogin(h, 'work')).code).toBe(0);
    await admin('faults', { endpoint: 'token', status: 429, retryAfter: 0, times: -1 });
    const r = await cli(h, ['token', 'work', '--force-refresh']);
    await req(lab, 'DELETE', '/_admin/faults');
    expect(r.code, r.stderr).toBe(6);
  });
});

describe('import and logout', () => {
  it('imports a refresh token file, then logout removes the tokens and says where to revoke', async () => {
    const src = home();
    await addProfile(src, 'a');
    expect((await deviceLogin(src, 'a')).code).toBe(0);
    const exported = await exportTokens(src, 'a');

    const h = home();
    await addProfile(h, 'work');
    const file = join(h.dir, 'tokens.json');
    (await import('node:fs')).writeFileSync(file, JSON.stringify(exported), { mode: 0o600 });
    const imp = await cli(h, ['import', 'work', '--file', file]);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stderr).toMatch(/alice@contoso\.test/);
    const t = await cli(h, ['token', 'work']);
    expect(t.code, t.stderr).toBe(0);
    lab.secrets.add(t.stdout.trim());

    const out = await cli(h, ['logout', 'work']);
    expect(out.code).toBe(0);
    expect(out.stderr).toMatch(/myapps\.microsoft\.com/);
    expect(out.stderr).toMatch(/Enterprise applications/);
    expect((await cli(h, ['token', 'work'])).code).toBe(4);
  });
});

describe('client credentials (app-only)', () => {
  /** The app-only profile `daemon`, its client secret on stdin. */
  const addDaemonProfile = (h: CliHome, secret: string, extra: string[] = []) =>
    cli(
      h,
      [
        'profile',
        'add',
        'daemon',
        '--client-id',
        DAEMON.clientId,
        '--authority',
        `${lab.idp.url}/${TID}/`,
        '--flow',
        'client-credentials',
        '--client-type',
        'secret',
        '--storage',
        'file',
        '--client-secret-stdin',
        ...extra,
      ],
      { input: secret },
    );

  it('gets an app-only token with the secret from the store', async () => {
    const h = home();
    const add = await addDaemonProfile(h, DAEMON.secret, ['--user', ALICE.upn]);
    expect(add.code, add.stderr).toBe(0);
    const l = await cli(h, ['login', 'daemon']);
    expect(l.code, l.stderr).toBe(0);
    const t = await cli(h, ['token', 'daemon', '--verbose']);
    expect(t.code, t.stderr).toBe(0);
    const tok = t.stdout.trim();
    lab.secrets.add(tok);
    const c = claims(tok);
    expect(c.roles).toEqual(expect.arrayContaining(['SMTP.SendAsApp']));
    expect(c.aud).toBe('https://outlook.office365.com');
    const f = await cli(h, ['token', 'daemon', '--force-refresh', '--verbose']);
    expect(f.code, f.stderr).toBe(0);
    lab.secrets.add(f.stdout.trim());
    expect(f.stdout.trim()).not.toBe(tok);
  });

  it('a wrong secret is exit 3 with the command to store the right one', async () => {
    const h = home();
    const add = await addDaemonProfile(h, 'wrong-secret-value-123');
    expect(add.code, add.stderr).toBe(0);
    const l = await cli(h, ['login', 'daemon', '--verbose']);
    expect(l.code, l.stderr).toBe(3);
    expect(l.stderr).toMatch(/AADSTS7000215/);
    expect(l.stderr).toMatch(/oauthmail profile secret daemon/);
    expect(l.stderr).not.toContain('wrong-secret-value-123');
  });
});

describe('browser sign-in with headless Chromium', () => {
  it('signs in through the HTML sign-in and consent pages and shows our success page', async () => {
    const h = home();
    await addProfile(h, 'work');
    const bg = background(
      h,
      ['login', 'work', '--no-browser', '--timeout', '60'],
      /(https:\/\/\S+\/oauth2\/v2\.0\/authorize\?\S+)/,
    );
    const url = (await bg.matched)[1]!;
    await withBrowser(async (page) => {
      await page.goto(url);
      await page.fill('#username', ALICE.upn);
      await page.fill('#password', ALICE.password);
      await page.click('#signin');
      await page.click('#accept');
      await page.waitForSelector('#oauthmail-success', { timeout: 20_000 });
      expect(await page.textContent('h1')).toMatch(/Signed in/);
    });
    const r = await bg.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Signed in to work as alice@contoso\.test/);
    const t = await cli(h, ['token', 'work']);
    expect(t.code, t.stderr).toBe(0);
    lab.secrets.add(t.stdout.trim());
  });

  it('a cancelled consent shows our error page and exits 4', async () => {
    const h = home();
    await addProfile(h, 'work');
    const bg = background(
      h,
      ['login', 'work', '--no-browser', '--timeout', '60'],
      /(https:\/\/\S+\/oauth2\/v2\.0\/authorize\?\S+)/,
    );
    const url = (await bg.matched)[1]!;
    await withBrowser(async (page) => {
      await page.goto(url);
      await page.fill('#username', ALICE.upn);
      await page.fill('#password', ALICE.password);
      await page.click('#signin');
      await page.click('#cancel');
      const el = await page.waitForSelector('#oauthmail-error', { timeout: 20_000 });
      expect(await el.getAttribute('data-error')).toBeTruthy();
      expect(await page.textContent('body')).toMatch(/What to do/);
    });
    const r = await bg.done;
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/oauthmail login work/);
  });

  it('gives up after --timeout with a clear message', async () => {
    const h = home();
    await addProfile(h, 'work');
    const r = await cli(h, ['login', 'work', '--no-browser', '--timeout', '2'], { timeoutMs: 20_000 });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/no sign-in response arrived within 2 seconds/);
  });
});

describe('no secrets in output', () => {
  it('no token or secret appears in any captured output except where printed by token/export', () => {
    expect(lab.transcript.length).toBeGreaterThan(10);
    expect(lab.secrets.size).toBeGreaterThan(5);
    for (const entry of lab.transcript) {
      // stdout of `token` and `export` is the point; everything else must be clean
      if (/^\$ (token|export)\b/.test(entry) && !/--verbose/.test(entry.split('\n')[0]!)) continue;
      const body = /^\$ (token|export)\b/.test(entry) ? entry.split('\n').slice(2).join('\n') : entry;
      for (const s of lab.secrets) {
        if (s && s.length >= 8) expect(body.includes(s), `leak in: ${entry.split('\n')[0]}`).toBe(false);
      }
    }
  });
});
