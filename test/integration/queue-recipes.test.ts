/**
 * Issue 13: the README's cron and systemd recipes for the queue and the alert, run as written.
 *
 * Each recipe is the fenced block after its heading in README.md; while README.md does not have
 * the heading yet, the text below (the same text) is used, so switching is only a README edit.
 * There is no crond or systemd here, so the test does what they do, and no more:
 * - cron: `VAR=value` lines set variables, each job line runs `/bin/sh -c COMMAND` in cron's
 *   environment (HOME, LOGNAME, SHELL=/bin/sh, PATH=/usr/bin:/bin, then the crontab's variables);
 * - systemd: each unit passes `systemd-analyze verify` (no unknown keys), ExecStart runs with
 *   %h expanded, C escapes decoded, the unit's Environment=, no TTY and no D-Bus; an exit status
 *   not in SuccessExitStatus= starts the OnFailure= unit.
 * The only substitutions: /home/you -> the test's home, /usr/local/bin -> its bin folder,
 * ops@example.com / you@example.com -> a mailbox in the local Dovecot.
 * The alert goes through a profile whose sign-in is dead: it must be queued, not lost, and be
 * delivered once the sign-in is repaired.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, cliHome, type CliHome } from '../support/cli.js';
import { mailbox, postfixLog, postfixSettled, stack, waitForMail, type Stack } from './send-support.js';
import { ALICE, type TestIdp } from '../support/signin.js';
import { queueProfile, signInWork } from './queue-support.js';
import { stackEnv } from '../support/stack-env.js';

export const CRON_HEADING = '### Delivering the queue from cron';
export const CRON_RECIPE = `# crontab -e, as the user the jobs run as (a --storage file profile: cron has no keychain)
PATH=/usr/local/bin:/usr/bin:/bin
OAUTHMAIL_PASSPHRASE_FILE=/home/you/.config/oauthmail/passphrase
# every 5 minutes: deliver what sendmail queued (only failures are printed, to syslog)
*/5 * * * *  oauthmail queue run --quiet 2>&1 | logger -t oauthmail-queue
# daily: keep sign-ins alive (this delivers the queue too); mail an alert when a person is needed
17 4 * * *  oauthmail refresh --all --quiet; oauthmail status >/dev/null 2>&1 || { printf 'To: ops@example.com\\nSubject: oauthmail needs attention\\n\\n'; oauthmail status 2>&1; } | oauthmail sendmail -t
`;

export const SYSTEMD_HEADING = '### Delivering the queue with a systemd timer';
export const SYSTEMD_RECIPE = `# ~/.config/systemd/user/oauthmail-queue.service
[Unit]
Description=Deliver the oauthmail queue
OnFailure=oauthmail-alert.service
[Service]
Type=oneshot
Environment=OAUTHMAIL_PASSPHRASE_FILE=%h/.config/oauthmail/passphrase
ExecStart=%h/.local/bin/oauthmail queue run --quiet
# 6 = the server is not back yet: the messages stay queued, the next run retries, no alert
SuccessExitStatus=6

# ~/.config/systemd/user/oauthmail-queue.timer
[Unit]
Description=Deliver the oauthmail queue every 5 minutes
[Timer]
OnBootSec=2min
OnUnitActiveSec=5min
[Install]
WantedBy=timers.target

# ~/.config/systemd/user/oauthmail-alert.service
[Unit]
Description=Mail the oauthmail status to a person
[Service]
Type=oneshot
Environment=OAUTHMAIL_PASSPHRASE_FILE=%h/.config/oauthmail/passphrase
ExecStart=/bin/sh -c '{ printf "To: you@example.com\\nSubject: oauthmail needs attention\\n\\n"; %h/.local/bin/oauthmail status 2>&1; } | %h/.local/bin/oauthmail sendmail -t'
`;

/** The fenced block after `heading` in README.md, or `fallback` while README.md has no such heading. */
export function recipe(heading: string, fallback: string): string {
  const lines = readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
  const at = lines.findIndex((l) => l.trim() === heading);
  if (at < 0) return fallback;
  const open = lines.findIndex((l, i) => i > at && /^```/.test(l));
  const close = lines.findIndex((l, i) => i > open && /^```\s*$/.test(l));
  if (open < 0 || close < 0) throw new Error(`README.md: no fenced block after ${heading}`);
  return lines.slice(open + 1, close).join('\n') + '\n';
}

let s: Stack;
let h: CliHome;
let idp: TestIdp;
let binDir: string;
const BOB = 'bob@contoso.test';
const tag = () => `r${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

const localize = (text: string) =>
  text
    .replaceAll('/home/you', h.dir)
    .replaceAll('/usr/local/bin', binDir)
    .replaceAll('ops@example.com', BOB)
    .replaceAll('you@example.com', BOB);

/**
 * `/bin/sh -c command` with only `env` (env -i). Asynchronous: the private identity provider
 * answers from this process, so the test must not block while the CLI talks to it.
 */
function sh(command: string, env: Record<string, string>, input = '') {
  return run('/bin/sh', ['-c', command], env, input);
}

function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  input = '',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/usr/bin/env',
      ['-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), cmd, ...args],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** The queue's files and their subjects. */
function queued(): string[] {
  const dir = path.join(h.dir, '.local', 'share', 'oauthmail', 'queue');
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith('.msg'));
  } catch {
    return [];
  }
  return names.map(
    (f) => /^Subject: (.*)$/im.exec(readFileSync(path.join(dir, f), 'utf8'))?.[1]?.trim() ?? '',
  );
}

beforeAll(async () => {
  s = stack();
  // the default folders under HOME, as on a real machine (cron and systemd set no OAUTHMAIL_*_DIR)
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '', DBUS_SESSION_BUS_ADDRESS: '' });
  h.env.HOME = h.dir;
  h.env.OAUTHMAIL_CONFIG_DIR = path.join(h.dir, '.config', 'oauthmail');
  h.env.OAUTHMAIL_DATA_DIR = path.join(h.dir, '.local', 'share', 'oauthmail');
  mkdirSync(h.env.OAUTHMAIL_CONFIG_DIR, { recursive: true, mode: 0o700 });
  const pass = path.join(h.env.OAUTHMAIL_CONFIG_DIR, 'passphrase');
  writeFileSync(pass, 'a passphrase only this account can read\n', { mode: 0o600 });
  h.env.OAUTHMAIL_PASSPHRASE_FILE = pass;
  // `oauthmail` as installed: a command on PATH (the test CA is the fake IdP's, not part of the recipe)
  binDir = path.join(h.dir, '.local', 'bin');
  mkdirSync(binDir, { recursive: true });
  writeFileSync(
    path.join(binDir, 'oauthmail'),
    `#!/bin/sh\nNODE_EXTRA_CA_CERTS=${stackEnv().caFile} exec ${process.execPath} ${BIN} "$@"\n`,
  );
  chmodSync(path.join(binDir, 'oauthmail'), 0o755);
  // a private identity provider (its revocations must not reach other test files), with
  // short-lived access tokens: every send redeems the refresh token, so a revocation shows at once
  idp = await queueProfile(h, s);
}, 90_000);

const signIn = () => signInWork(h, idp);

afterAll(async () => {
  await idp?.close();
});

/** A cron job's output, which cron pipes to sendmail (MAILTO), run the way cron runs it. */
function cronJobOutput(t: string, env: Record<string, string>) {
  return sh(
    'oauthmail sendmail -t -i',
    env,
    `From: root (Cron Daemon)\nTo: ${BOB}\nSubject: Cron <you@host> backup ${t}\n\nbackup failed ${t}\n`,
  );
}

describe('README: delivering the queue from cron', () => {
  it('a job report and the daily alert survive a dead sign-in (queued); after a new sign-in the 5-minute job delivers both, once', async () => {
    const crontab = localize(recipe(CRON_HEADING, CRON_RECIPE));
    const vars: Record<string, string> = {
      HOME: h.dir,
      LOGNAME: 'root',
      SHELL: '/bin/sh',
      PATH: '/usr/bin:/bin',
    };
    const jobs: string[] = [];
    for (const line of crontab.split('\n')) {
      if (!line.trim() || line.trim().startsWith('#')) continue;
      const v = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (v) vars[v[1]!] = v[2]!;
      else {
        const f = line.trim().split(/\s+/);
        expect(f.length, line).toBeGreaterThan(5);
        expect(line, 'a % in a crontab command is a newline').not.toContain('%');
        jobs.push(line.trim().replace(/^(\S+\s+){5}/, ''));
      }
    }
    const [every5, daily] = [
      jobs.find((j) => j.includes('queue run'))!,
      jobs.find((j) => j.includes('refresh'))!,
    ];
    expect(every5).toBeTruthy();
    expect(daily).toBeTruthy();

    // the sign-in dies at the identity provider
    expect((await idp.admin('revoke-refresh-tokens', { user: ALICE.upn })).status).toBe(200);
    const t = tag();
    const job = await cronJobOutput(t, vars);
    expect(job.code, job.stderr).toBe(0);
    expect(job.stderr).toMatch(/queued .*a sign-in is needed/);

    const d = await sh(daily, vars);
    expect(d.code, d.stderr).toBe(0); // the alert was handed over (to the queue)
    expect(d.stderr).toMatch(/FAILED/); // refresh --all says what failed
    expect(d.stderr).toMatch(/queued .*a sign-in is needed/);
    expect(queued().sort()).toEqual([`Cron <you@host> backup ${t}`, 'oauthmail needs attention'].sort());

    // the 5-minute job cannot deliver yet: both stay
    await sh(every5, vars);
    expect(queued()).toHaveLength(2);

    // a person signs in again; the next 5-minute run delivers both, once
    await signIn();
    const r = await sh(every5, vars);
    expect(r.code, r.stderr).toBe(0);
    expect(queued()).toEqual([]);
    const alert = await waitForMail(s, BOB, 'oauthmail needs attention', 1);
    expect(alert.length).toBeGreaterThanOrEqual(1);
    expect(
      alert.some((m) =>
        /the sign-in has ended: its last refresh was refused on .*\(AADSTS\d+\): run oauthmail login work/.test(
          m.text,
        ),
      ),
    ).toBe(true);
    expect(await waitForMail(s, BOB, `backup ${t}`, 1)).toHaveLength(1);
    const mark = postfixLog(s).length;
    await sh(every5, vars);
    await postfixSettled(s, { since: mark });
    expect(mailbox(s, BOB).filter((m) => m.text.includes(`backup ${t}`))).toHaveLength(1);
  }, 120_000);
});

interface Unit {
  name: string;
  text: string;
  get(section: string, key: string): string[];
}

function units(text: string): Unit[] {
  const out: Unit[] = [];
  for (const chunk of text.split(/^(?=# ~\/\.config\/systemd\/user\/)/m)) {
    const m = /^# ~\/\.config\/systemd\/user\/(\S+)\n/.exec(chunk);
    if (!m) continue;
    const body = chunk.slice(m[0].length);
    out.push({
      name: m[1]!,
      text: body,
      get(section, key) {
        let cur = '';
        const vals: string[] = [];
        for (const l of body.split('\n')) {
          const sec = /^\[(.+)\]$/.exec(l.trim());
          if (sec) cur = sec[1]!;
          else if (cur === section && l.startsWith(`${key}=`)) vals.push(l.slice(key.length + 1));
        }
        return vals;
      },
    });
  }
  return out;
}

/** systemd's unquoting of ExecStart: words, '...' and "..." with C escapes (systemd.service(5)). */
function execWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  const unesc = (sq: string) =>
    sq.replace(/\\(n|t|\\|"|')/g, (_m, c: string) => ({ n: '\n', t: '\t' })[c] ?? c);
  while (i < line.length) {
    while (line[i] === ' ') i++;
    if (i >= line.length) break;
    const q = line[i];
    if (q === "'" || q === '"') {
      let j = i + 1;
      while (j < line.length && !(line[j] === q && line[j - 1] !== '\\')) j++;
      words.push(unesc(line.slice(i + 1, j)));
      i = j + 1;
    } else {
      let j = i;
      while (j < line.length && line[j] !== ' ') j++;
      words.push(unesc(line.slice(i, j)));
      i = j;
    }
  }
  return words;
}

describe('README: delivering the queue with a systemd timer', () => {
  it('the units verify; with a dead sign-in the queue service fails, its OnFailure alert is queued; after a new sign-in both are delivered once', async () => {
    const all = units(localize(recipe(SYSTEMD_HEADING, SYSTEMD_RECIPE)));
    expect(all.map((u) => u.name).sort()).toEqual([
      'oauthmail-alert.service',
      'oauthmail-queue.service',
      'oauthmail-queue.timer',
    ]);
    const dir = path.join(h.dir, 'units');
    mkdirSync(dir, { recursive: true });
    for (const u of all) writeFileSync(path.join(dir, u.name), u.text.replaceAll('%h', h.dir));
    const v = spawnSync('systemd-analyze', ['verify', ...all.map((u) => path.join(dir, u.name))], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stderr).not.toMatch(/Unknown|ignoring|Failed|not executable/i);

    const byName = new Map(all.map((u) => [u.name, u]));
    /** Start a service as the user manager would: its Environment=, no TTY, no D-Bus. */
    const start = async (name: string): Promise<number> => {
      const u = byName.get(name)!;
      const env: Record<string, string> = {
        HOME: h.dir,
        USER: 'root',
        LOGNAME: 'root',
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      };
      for (const e of u.get('Service', 'Environment')) {
        const [k, ...rest] = e.replaceAll('%h', h.dir).split('=');
        env[k!] = rest.join('=');
      }
      const [cmd, ...args] = execWords(u.get('Service', 'ExecStart')[0]!.replaceAll('%h', h.dir));
      const r = await run(cmd!, args, env);
      const ok = [0, ...u.get('Service', 'SuccessExitStatus').flatMap((x) => x.split(/\s+/).map(Number))];
      if (!ok.includes(r.code ?? -1)) for (const f of u.get('Unit', 'OnFailure')) await start(f);
      return r.code ?? -1;
    };

    const vars = { HOME: h.dir, LOGNAME: 'root', SHELL: '/bin/sh', PATH: `${binDir}:/usr/bin:/bin` };
    expect((await idp.admin('revoke-refresh-tokens', { user: ALICE.upn })).status).toBe(200);
    const t = tag();
    const job = await cronJobOutput(t, {
      ...vars,
      OAUTHMAIL_PASSPHRASE_FILE: h.env.OAUTHMAIL_PASSPHRASE_FILE!,
    });
    expect(job.code, job.stderr).toBe(0);
    expect(queued()).toEqual([`Cron <you@host> backup ${t}`]);

    // the timer fires: queue run cannot deliver (sign-in needed: exit 4, not 6), so the alert runs
    expect(await start('oauthmail-queue.service')).toBe(4);
    expect(queued().sort()).toEqual([`Cron <you@host> backup ${t}`, 'oauthmail needs attention'].sort());

    await signIn();
    expect(await start('oauthmail-queue.service')).toBe(0);
    expect(queued()).toEqual([]);
    expect(await waitForMail(s, BOB, `backup ${t}`, 1)).toHaveLength(1);
    const alerts = await waitForMail(s, BOB, 'oauthmail needs attention', 2);
    expect(alerts.length).toBeGreaterThanOrEqual(2); // the cron test's and this one
  }, 120_000);
});
