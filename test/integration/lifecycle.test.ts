// Issue 9, "keep sign-ins alive": the real CLI with real MSAL against the fake Entra ID.
// - refresh --all on a schedule keeps a profile alive past the IdP's refresh-token idle timeout,
//   while an untouched profile dies (AADSTS700082, exit 4) after `status` warned about it;
// - login --paste with the redirect URL on stdin (and a wrong state refused);
// - exec puts the token in the child's environment, never in its argv;
// - token --sasl oauthbearer (RFC 7628);
// - the new catalogue entries, provoked through the IdP.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, type CliHome } from '../support/cli.js';
import {
  addProfile,
  admin,
  ALICE,
  background,
  browserSignIn,
  claims,
  cli,
  CONFIDENTIAL,
  deviceLogin,
  expectNoLeaks,
  fixtures,
  req,
  home,
  type Lab,
  startLab,
  stopLab,
} from './lifecycle-support.js';

let lab: Lab;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `seconds` pass for oauthmail without waiting for them: every timestamp in its health records
 * (data/health.json: obtainedAt, lastUsedAt, ...) moves that far into the past.
 */
function ageHealth(h: CliHome, seconds: number): void {
  const file = join(h.dir, 'data', 'health.json');
  const j = JSON.parse(readFileSync(file, 'utf8')) as { profiles: Record<string, Record<string, unknown>> };
  for (const rec of Object.values(j.profiles)) {
    for (const [k, v] of Object.entries(rec)) {
      if (k.endsWith('At') && typeof v === 'string')
        rec[k] = new Date(Date.parse(v) - seconds * 1000).toISOString();
    }
  }
  writeFileSync(file, JSON.stringify(j, null, 2) + '\n');
}

beforeAll(async () => {
  lab = await startLab();
}, 60_000);

afterAll(async () => {
  if (lab) expectNoLeaks(lab);
  await stopLab(lab);
});

beforeEach(async () => {
  expect((await admin(lab, 'reset', {})).status).toBe(200);
  expect((await admin(lab, 'config', { deviceCodeInterval: 1 })).status).toBe(200);
});

describe('keep-alive', () => {
  it('refresh --all on a schedule keeps a profile alive past the idle timeout; an untouched one dies after status warned', async () => {
    const IDLE = 60; // the IdP ends refresh tokens unused for 60 s
    const WARN = 15; // status warns about a refresh token unused for 15 s
    // the "schedule": a round every STEP seconds, which pass on the IdP's clock (/_admin/clock) and
    // in oauthmail's health records (ageHealth) instead of being waited for; the real time a round
    // takes comes on top (under load: seconds), hence the wide margins
    const STEP = 10;
    const healthEnv = {
      OAUTHMAIL_HEALTH_IDLE_WARN_SECONDS: String(WARN),
      OAUTHMAIL_HEALTH_IDLE_LIMIT_SECONDS: String(IDLE),
    };
    const kept = home(lab, healthEnv);
    const idle = home(lab, healthEnv);
    await addProfile(lab, kept, 'kept');
    await addProfile(lab, idle, 'idle');
    expect((await deviceLogin(lab, kept, 'kept')).code).toBe(0);
    expect((await deviceLogin(lab, idle, 'idle')).code).toBe(0);
    expect((await admin(lab, 'config', { refreshTokenIdleTimeout: IDLE })).status).toBe(200);
    const start = Date.now();

    // health right after sign-in: recorded, no warning
    const s0 = await cli(lab, idle, ['status', 'idle', '--json']);
    expect(s0.code, s0.stderr).toBe(0);
    const j0 = JSON.parse(s0.stdout)[0];
    expect(Date.parse(j0.health.obtainedAt)).toBeGreaterThan(start - 60_000);
    expect(j0.warnings).toEqual([]);
    // the health file holds timestamps only, never a token
    const healthFile = join(idle.dir, 'data', 'health.json');
    expect(statSync(healthFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(healthFile, 'utf8')).not.toMatch(/eyJ|refresh_token|secret/i);

    let warned = false;
    let round = 0;
    let elapsed = 0; // seconds, as the IdP and oauthmail see them
    // for well past the idle timeout
    while (elapsed < IDLE + 5) {
      round++;
      const r = await cli(lab, kept, ['refresh', '--all']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^kept: ok, refresh token redeemed and rotated$/m);
      if (!warned && elapsed > WARN && elapsed < IDLE - STEP) {
        // before the idle profile dies, status warns about it (and exits 0: it still works)
        const s = await cli(lab, idle, ['status', 'idle']);
        expect(s.code, s.stderr).toBe(0);
        expect(s.stdout).toMatch(
          /! warning: the refresh token has not been used for \d+ seconds; Microsoft ends a sign-in unused for 60 seconds/,
        );
        expect(s.stdout).toMatch(/run oauthmail refresh idle/);
        const sj = JSON.parse((await cli(lab, idle, ['status', 'idle', '--json'])).stdout)[0];
        expect(sj.warnings.map((w: { code: string }) => w.code)).toEqual(['refresh_token_idle']);
        // the kept profile has no warning
        const k = JSON.parse((await cli(lab, kept, ['status', 'kept', '--json'])).stdout)[0];
        expect(k.warnings).toEqual([]);
        expect(Date.parse(k.health.lastUsedAt)).toBeGreaterThan(Date.parse(k.health.obtainedAt));
        expect(k.health.lastRotatedAt).toBe(k.health.lastUsedAt);
        warned = true;
      }
      expect((await admin(lab, 'clock', { advanceSeconds: STEP })).status).toBe(200);
      for (const x of [kept, idle]) ageHealth(x, STEP);
      elapsed += STEP;
    }
    expect(warned).toBe(true);
    expect(round).toBeGreaterThanOrEqual(4);

    // past the idle timeout: the kept profile still gets tokens, the idle one needs a sign-in
    const ok = await kept.run(['token', 'kept', '--force-refresh']);
    expect(ok.code, ok.stderr).toBe(0);
    lab.secrets.add(ok.stdout.trim());
    expect(claims(ok.stdout.trim())).toMatchObject({ upn: ALICE.upn });

    const dead = await cli(lab, idle, ['refresh', '--all']);
    expect(dead.code).toBe(4);
    expect(dead.stderr).toMatch(
      /idle: FAILED: the sign-in expired because it was not used for 90 days .*\(AADSTS700082\)/,
    );
    expect(dead.stderr).toMatch(/hint: run: oauthmail login idle/);
    // the cached access token still works until it expires; a refresh does not
    const t = await cli(lab, idle, ['token', 'idle', '--force-refresh']);
    expect(t.code).toBe(4);
    expect(t.stdout).toBe('');
    const j = JSON.parse((await cli(lab, idle, ['status', 'idle', '--json'])).stdout)[0];
    expect(j.health.lastFailureCode).toBe('AADSTS700082');
  }, 120_000);

  it('refresh reports each profile, exits 4 when one needs a sign-in, 6 when the IdP is unavailable', async () => {
    const h = home(lab);
    await addProfile(lab, h, 'a');
    await addProfile(lab, h, 'b');
    expect((await deviceLogin(lab, h, 'a')).code).toBe(0);
    const r = await cli(lab, h, ['refresh', '--all', '--json']);
    expect(r.code).toBe(4);
    const rows = JSON.parse(r.stdout);
    expect(rows).toMatchObject([
      { profile: 'a', ok: true, result: 'refreshed', rotated: true },
      { profile: 'b', ok: false, result: 'sign-in-needed', exitCode: 4, fix: 'run: oauthmail login b' },
    ]);
    expect(r.stderr).toMatch(/profile b needs a new sign-in/);

    const q = await cli(lab, h, ['refresh', 'a', '--quiet']);
    expect(q.code, q.stderr).toBe(0);
    expect(q.stderr).toBe('');

    // 503 for as long as oauthmail retries (its retry policy redeems up to a few times)
    expect(
      (await admin(lab, 'faults', { endpoint: 'token', grantType: 'refresh_token', status: 503, times: -1 }))
        .status,
    ).toBe(200);
    const tr = await cli(lab, h, ['refresh', 'a']);
    expect(tr.code, tr.stderr).toBe(6);
    expect(tr.stderr).toMatch(/a: FAILED: .*temporarily unavailable/);
    expect((await req(lab, 'DELETE', '/_admin/faults')).status).toBe(200);
    // and the stored sign-in survived the failure
    const again = await cli(lab, h, ['refresh', 'a']);
    expect(again.code, again.stderr).toBe(0);
  }, 60_000);
});

describe('Google: a short-lived sign-in is flagged as "Testing" status', () => {
  it('refresh --all records the sign-in that died after seconds, and status warns about Testing status', async () => {
    expect((await admin(lab, 'config', { autoConsent: true })).status).toBe(200);
    const G = fixtures.google;
    const CAROL = G.users[0]!;
    const CLIENT = G.clients[0]!;
    const idp = lab.idp.url;
    const h = home(lab);
    const add = await cli(
      lab,
      h,
      [
        'profile',
        'add',
        'gmail',
        '--provider',
        'google',
        '--client-id',
        CLIENT.clientId,
        '--client-type',
        'secret',
        '--client-secret-stdin',
        '--authorization-endpoint',
        `${idp}/o/oauth2/v2/auth`,
        '--token-endpoint',
        `${idp}/token`,
        '--user',
        CAROL.email,
        '--storage',
        'file',
      ],
      { input: CLIENT.secret },
    );
    expect(add.code, add.stderr).toBe(0);
    // sign in: the person's browser is driven over HTTP, and lands on oauthmail's loopback
    const bg = background(
      lab,
      h,
      ['login', 'gmail', '--no-browser', '--timeout', '60'],
      /(https:\/\/\S+\/o\/oauth2\/v2\/auth\?\S+)/,
    );
    const url = new URL((await bg.matched)[1]!);
    const page = await req(lab, 'GET', url.pathname + url.search);
    const txn = /name="txn" value="([^"]+)"/.exec(page.text)?.[1];
    const form = new URLSearchParams({
      txn: txn!,
      username: CAROL.email,
      password: CAROL.password,
    }).toString();
    const formType = { 'content-type': 'application/x-www-form-urlencoded' };
    const consent = await req(lab, 'POST', '/_flow/login', form, formType);
    expect(consent.status).toBe(200); // Google asks for consent again (prompt=consent)
    const posted = await req(
      lab,
      'POST',
      '/_flow/consent',
      new URLSearchParams({
        txn: /name="txn" value="([^"]+)"/.exec(consent.text)![1]!,
        action: 'accept',
      }).toString(),
      formType,
    );
    expect(posted.status).toBe(302);
    const landing = await fetch(String(posted.headers.location));
    expect(landing.status).toBe(200);
    const login = await bg.done;
    expect(login.code, login.stderr).toBe(0);
    lab.secrets.add(CLIENT.secret);

    const ok = await cli(lab, h, ['refresh', '--all']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/^gmail: ok, refresh token redeemed$/m);
    // Google ends it (as it does after 7 days for an app in Testing status)
    expect((await admin(lab, 'revoke-refresh-tokens', { user: CAROL.email })).status).toBe(200);
    const dead = await cli(lab, h, ['refresh', '--all']);
    expect(dead.code).toBe(4);
    const st = await cli(lab, h, ['status', 'gmail', '--json']);
    const j = JSON.parse(st.stdout)[0];
    expect(j.warnings.map((w: { code: string }) => w.code)).toContain('google_testing_status');
    const text = await cli(lab, h, ['status', 'gmail']);
    expect(text.stdout).toMatch(
      /! warning: an earlier sign-in lasted only \d+ seconds: the Google app is probably in "Testing" status/,
    );
  }, 60_000);
});

describe('login --paste', () => {
  it('signs in with the redirect URL pasted on stdin; a URL with another state is refused', async () => {
    expect((await admin(lab, 'config', { autoConsent: true })).status).toBe(200);
    const h = home(lab);
    await addProfile(lab, h, 'work');

    // a sign-in whose URL is pasted into ANOTHER login: the state differs → refused, nothing stored
    const first = background(lab, h, ['login', 'work', '--paste'], /(https:\/\/\S+authorize\S+)/, () => '');
    const url1 = (await first.matched)[1]!;
    const redirect1 = await browserSignIn(lab, url1);
    expect(redirect1).toMatch(/^http:\/\/localhost\/?\?code=/);
    first.child.kill('SIGTERM');
    await first.done;

    const second = background(lab, h, ['login', 'work', '--paste'], /(https:\/\/\S+authorize\S+)/, () => '');
    await second.matched;
    second.child.stdin.end(redirect1 + '\n');
    const refused = await second.done;
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(
      /the pasted URL belongs to another sign-in \(its state does not match\); nothing was stored/,
    );
    expect((await cli(lab, h, ['status', 'work'])).code).toBe(4);

    // the right URL: signed in
    const third = background(lab, h, ['login', 'work', '--paste'], /(https:\/\/\S+authorize\S+)/, () => '');
    const url3 = (await third.matched)[1]!;
    const q = new URL(url3).searchParams;
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('response_mode')).toBe('query');
    const redirect3 = await browserSignIn(lab, url3);
    third.child.stdin.end(redirect3 + '\n');
    const ok = await third.done;
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/paste it here/);
    expect(ok.stderr).toMatch(/Signed in to work as alice@contoso\.test/);
    const t = await h.run(['token', 'work']);
    expect(t.code, t.stderr).toBe(0);
    lab.secrets.add(t.stdout.trim());
    // the codes in the pasted URLs never show up in the output
    lab.secrets.add(new URL(redirect1).searchParams.get('code')!);
    lab.secrets.add(new URL(redirect3).searchParams.get('code')!);
  }, 60_000);

  it('prints SSH port-forwarding guidance in a remote session without a display', async () => {
    const h = home(lab, { SSH_CONNECTION: '192.0.2.1 50000 192.0.2.2 22' });
    await addProfile(lab, h, 'work', ['--redirect-port', '53682']);
    const r = await cli(lab, h, ['login', 'work', '--no-browser', '--timeout', '1'], { timeoutMs: 20_000 });
    expect(r.stderr).toMatch(/SSH session without a display/);
    expect(r.stderr).toMatch(/ssh -L 53682:localhost:53682 192\.0\.2\.2/);
    expect(r.stderr).toMatch(/oauthmail login work --paste/);
    expect(r.code).toBe(4);
  }, 30_000);
});

describe('hand-off to other programs', () => {
  it('exec puts the token in the environment of the command, never in its argv, and passes the exit code', async () => {
    const h = home(lab);
    await addProfile(lab, h, 'work');
    expect((await deviceLogin(lab, h, 'work')).code).toBe(0);

    const r = await h.run([
      'exec',
      '-p',
      'work',
      '--',
      'sh',
      '-c',
      'echo $OAUTHMAIL_ACCESS_TOKEN; echo $OAUTHMAIL_USER',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [token, user] = r.stdout.trim().split('\n');
    lab.secrets.add(token!);
    expect(claims(token!)).toMatchObject({ upn: ALICE.upn, aud: 'https://outlook.office.com' });
    expect(user).toBe(ALICE.upn);
    expect(r.stderr).toBe('');

    // argv of the child, read from /proc while it runs
    const marker = join(h.dir, 'child-ready');
    const child = spawn(
      process.execPath,
      [BIN, '-p', 'work', 'exec', '--', 'sh', '-c', `echo $$ > ${marker}; sleep 5`],
      { env: h.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const deadline = Date.now() + 15_000;
    while (!existsSync(marker) || !readFileSync(marker, 'utf8').trim()) {
      if (Date.now() > deadline) throw new Error('exec child did not start');
      await sleep(50);
    }
    const pid = readFileSync(marker, 'utf8').trim();
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    const parentCmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
    const tokenNow = /OAUTHMAIL_ACCESS_TOKEN=([^\0]+)/.exec(environ)?.[1];
    expect(tokenNow).toBeTruthy();
    expect(cmdline).not.toContain(tokenNow!);
    expect(parentCmdline).not.toContain(tokenNow!);
    expect(cmdline).not.toMatch(/eyJ/);
    // SIGTERM to oauthmail reaches the child: it exits by that signal, and so does oauthmail (128+15)
    const exited = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    child.kill('SIGTERM');
    expect(await exited).toBe(143);

    const code = await cli(lab, h, ['exec', '-p', 'work', '--', 'sh', '-c', 'exit 7']);
    expect(code.code).toBe(7);
    const missing = await cli(lab, h, ['exec', '-p', 'work', '--', 'no-such-command-xyz']);
    // the shell's convention: 127 not found, 126 not runnable
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/command not found: no-such-command-xyz/);
    const script = join(h.dir, 'not-executable.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const denied = await cli(lab, h, ['exec', '-p', 'work', '--', script]);
    expect(denied.code).toBe(126);
    expect(denied.stderr).toMatch(/cannot run .*not-executable\.sh: permission denied/);
  }, 60_000);

  it('token --sasl oauthbearer prints the RFC 7628 initial response with the host and port', async () => {
    const h = home(lab);
    await addProfile(lab, h, 'work', ['--smtp', 'smtp.contoso.test:587', '--imap', 'imap.contoso.test:993']);
    expect((await deviceLogin(lab, h, 'work')).code).toBe(0);
    const t = (await h.run(['token', 'work'])).stdout.trim();
    lab.secrets.add(t);
    const smtp = await h.run(['token', 'work', '--sasl', 'oauthbearer']);
    expect(smtp.code, smtp.stderr).toBe(0);
    lab.secrets.add(smtp.stdout.trim());
    expect(Buffer.from(smtp.stdout.trim(), 'base64').toString()).toBe(
      `n,a=${ALICE.upn},\x01host=smtp.contoso.test\x01port=587\x01auth=Bearer ${t}\x01\x01`,
    );
    const imap = await h.run(['token', 'work', '--sasl', 'oauthbearer', '--protocol', 'imap']);
    lab.secrets.add(imap.stdout.trim());
    expect(Buffer.from(imap.stdout.trim(), 'base64').toString()).toBe(
      `n,a=${ALICE.upn},\x01host=imap.contoso.test\x01port=993\x01auth=Bearer ${t}\x01\x01`,
    );
    const x = await h.run(['token', '--sasl', 'work']);
    expect(x.code, x.stderr).toBe(0);
    lab.secrets.add(x.stdout.trim());
    expect(Buffer.from(x.stdout.trim(), 'base64').toString()).toBe(
      `user=${ALICE.upn}\x01auth=Bearer ${t}\x01\x01`,
    );
    const bad = await cli(lab, h, ['token', 'work', '--sasl', 'plain']);
    expect(bad.code).toBe(2);
    const badp = await cli(lab, h, ['token', 'work', '--sasl', 'oauthbearer', '--protocol', 'pop']);
    expect(badp.code).toBe(2);
  }, 60_000);
});

describe('catalogue entries, provoked through the identity provider', () => {
  it('AADSTS7000218: a confidential app asked for a device code without a secret → exit 3 and the fix', async () => {
    const h = home(lab);
    await addProfile(lab, h, 'conf', ['--client-id', CONFIDENTIAL.clientId]);
    const r = await cli(lab, h, ['login', 'conf', '--device'], { timeoutMs: 20_000 });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /the app is treated as confidential: the request needs a client secret or certificate \(AADSTS7000218\)/,
    );
    expect(r.stderr).toMatch(/Allow public client flows/);
  });

  it('AADSTS700025: a public app sent a client secret → exit 3 and the fix', async () => {
    const h = home(lab, { OAUTHMAIL_CLIENT_SECRET: 'not-needed-secret-value' });
    lab.secrets.add('not-needed-secret-value');
    await addProfile(lab, h, 'pub', ['--client-type', 'secret', '--flow', 'client-credentials']);
    const r = await cli(lab, h, ['token', 'pub'], {
      env: { OAUTHMAIL_CLIENT_SECRET: 'not-needed-secret-value' },
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /the app is registered as a public client, so it must not send a client secret or certificate \(AADSTS700025\)/,
    );
    expect(r.stderr).toMatch(/--set clientType=public/);
  });

  it('AADSTS7000012: the tenant of the authorize and token requests differ → exit 3', async () => {
    const h = home(lab);
    await addProfile(lab, h, 'work');
    expect((await deviceLogin(lab, h, 'work')).code).toBe(0);
    expect(
      (
        await admin(lab, 'faults', {
          endpoint: 'token',
          grantType: 'refresh_token',
          status: 400,
          error: 'invalid_grant',
          errorCode: 7000012,
          message: 'The grant was obtained for a different tenant.',
        })
      ).status,
    ).toBe(200);
    const r = await cli(lab, h, ['token', 'work', '--force-refresh']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /the sign-in was started in one tenant and redeemed in another .*\(AADSTS7000012\)/,
    );
    expect(r.stderr).toMatch(/oauthmail profile show work/);
  });

  it('AADSTS700082 through the idle timeout, with the keep-alive advice', async () => {
    const h = home(lab);
    await addProfile(lab, h, 'work');
    expect((await deviceLogin(lab, h, 'work')).code).toBe(0);
    expect((await admin(lab, 'config', { refreshTokenIdleTimeout: 1 })).status).toBe(200);
    expect((await admin(lab, 'clock', { advanceSeconds: 2 })).status).toBe(200);
    const r = await cli(lab, h, ['token', 'work', '--force-refresh']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(
      /the sign-in expired because it was not used for 90 days \(Microsoft ends idle refresh tokens\) \(AADSTS700082\)/,
    );
    expect(r.stderr).toMatch(
      /hint: run: oauthmail login work; then keep it alive with a scheduled oauthmail refresh --all/,
    );
  });
});
