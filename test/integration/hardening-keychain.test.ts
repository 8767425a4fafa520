/**
 * Keychain faults at the CLI level (issue 8): a locked keyring, a D-Bus session without a Secret
 * Service, no D-Bus at all, a HOME that does not exist. Each command ends (the CLI helper kills
 * and fails after 30 s) with either the file-fallback warning (storage auto) or a clear error
 * naming the fix (storage keychain). The in-process store cases, the dead-socket case and the
 * never-answering bus are in keychain.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, type Socket } from 'node:net';
import { BIN, cliHome, runCli, type CliHome } from '../support/cli.js';

const SECRET = `kc-secret-${Math.random().toString(36).slice(2)}`;
let root: string;
let bus: ChildProcess | undefined;
let busAddress: string;

async function profileHome(storage: 'auto' | 'keychain', env: NodeJS.ProcessEnv): Promise<CliHome> {
  const h = cliHome(env);
  const add = await h.run([
    'profile',
    'add',
    'k',
    '--provider',
    'microsoft',
    '--client-id',
    '00000000-0000-0000-0000-0000000000aa',
    '--tenant',
    'common',
    '--user',
    'a@contoso.test',
    '--storage',
    storage,
  ]);
  expect(add.code, add.stderr).toBe(0);
  return h;
}

function noLeak(h: CliHome, out: string) {
  expect(out).not.toContain(SECRET);
  expect(readFileSync(h.configFile, 'utf8')).not.toContain(SECRET);
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'om-hard-kc-'));
  // a session bus with no service files: nothing can be activated, so no Secret Service
  const sock = join(root, 'bus');
  const conf = join(root, 'bus.conf');
  writeFileSync(
    conf,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=${sock}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`,
  );
  bus = spawn('dbus-daemon', ['--config-file', conf, '--nofork', '--nopidfile'], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !existsSync(sock); i++) await sleep(100);
  expect(existsSync(sock)).toBe(true);
  busAddress = `unix:path=${sock}`;
});

afterAll(() => {
  bus?.kill('SIGTERM');
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('keychain faults, CLI level', () => {
  it('a D-Bus session without a Secret Service: auto falls back to the file with the warning; keychain fails clearly', async () => {
    const env = { DBUS_SESSION_BUS_ADDRESS: busAddress };
    const a = await profileHome('auto', env);
    const r = await a.run(['profile', 'secret', 'k', '--stdin'], { input: SECRET });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/storing secrets in .* \(mode 0600\)/);
    noLeak(a, r.stdout + r.stderr);
    const k = await profileHome('keychain', env);
    const f = await k.run(['profile', 'secret', 'k', '--stdin'], { input: SECRET });
    expect(f.code).toBe(3); // a configuration that does not fit this session (issue 13)
    expect(f.stderr).toMatch(/^oauthmail: the keychain is unavailable: /m);
    expect(f.stderr).toMatch(/--storage file/);
    expect(f.stderr).not.toMatch(/\n\s+at /);
    noLeak(k, f.stdout + f.stderr);
  });

  it('no D-Bus at all (DBUS_SESSION_BUS_ADDRESS unset): the file fallback warning', async () => {
    const a = await profileHome('auto', {});
    const env = { ...a.env };
    delete env.DBUS_SESSION_BUS_ADDRESS;
    const r = await runCli(['profile', 'secret', 'k', '--stdin'], { env, input: SECRET });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/DBUS_SESSION_BUS_ADDRESS is not set/);
    expect(r.stderr).toMatch(/storing secrets in /);
    noLeak(a, r.stdout + r.stderr);
  });

  it('a HOME that does not exist: the file fallback warning at once, no 25 s hang', async () => {
    const a = await profileHome('auto', { HOME: join(root, 'no-such-home') });
    const r = await a.run(['profile', 'secret', 'k', '--stdin'], { input: SECRET, timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/HOME \(.*no-such-home\) does not exist/);
    noLeak(a, r.stdout + r.stderr);
  });

  it('a bus that accepts but never answers: the warning at the timeout, and the process ends by itself', async () => {
    const sock = join(root, 'black-hole');
    const sockets: Socket[] = [];
    const server = createServer((c) => {
      sockets.push(c);
      c.on('data', () => undefined);
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const a = await profileHome('auto', {
        DBUS_SESSION_BUS_ADDRESS: `unix:path=${sock}`,
        OAUTHMAIL_KEYCHAIN_TIMEOUT_MS: '1000',
      });
      // runCli fails the test if the process has not ended after 20 s
      const r = await a.run(['profile', 'secret', 'k', '--stdin'], { input: SECRET, timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/the D-Bus session bus did not answer within 1000 ms; storing secrets in /);
      noLeak(a, r.stdout + r.stderr);
    } finally {
      for (const c of sockets) c.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('a Secret Service whose activation never completes: the warning at the timeout, and the process ends by itself (not at the 25 s D-Bus timeout)', async () => {
    // a bus that can "activate" org.freedesktop.secrets, but the program never takes the name
    const dir = mkdtempSync(join(root, 'stuck-'));
    const sock = join(dir, 'bus');
    mkdirSync(join(dir, 'services'));
    writeFileSync(
      join(dir, 'services', 'org.freedesktop.secrets.service'),
      '[D-BUS Service]\nName=org.freedesktop.secrets\nExec=/bin/sleep 20\n',
    );
    const conf = join(dir, 'bus.conf');
    writeFileSync(
      conf,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=${sock}</listen><auth>EXTERNAL</auth><servicedir>${join(dir, 'services')}</servicedir>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`,
    );
    const stuck = spawn('dbus-daemon', ['--config-file', conf, '--nofork', '--nopidfile'], {
      stdio: 'ignore',
    });
    try {
      for (let i = 0; i < 50 && !existsSync(sock); i++) await sleep(100);
      const a = await profileHome('auto', {
        DBUS_SESSION_BUS_ADDRESS: `unix:path=${sock}`,
        OAUTHMAIL_KEYCHAIN_TIMEOUT_MS: '1000',
      });
      // runCli fails the test if the process has not ended after 15 s; keytar alone held it 25 s
      const r = await a.run(['profile', 'secret', 'k', '--stdin'], { input: SECRET, timeoutMs: 15_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(
        /^warning: no Secret Service on D-Bus \(the Secret Service did not start within 1000 ms\); storing secrets in /m,
      );
      noLeak(a, r.stdout + r.stderr);
    } finally {
      stuck.kill('SIGTERM');
    }
  });

  it('a locked keyring that cannot be unlocked here: a clear error naming the lock, not a hang', async () => {
    // its own D-Bus session and gnome-keyring, started without --unlock, in a fresh HOME, so
    // the shared unlocked keyring of the test run is left alone
    const home = mkdtempSync(join(root, 'locked-home-'));
    for (const storage of ['keychain', 'auto'] as const) {
      const h = await profileHome(storage, { HOME: home });
      const script =
        'gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1; ' +
        // wait until the daemon owns its name: a call racing its start-up waits for D-Bus
        'for i in $(seq 50); do dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets org.freedesktop.DBus.Peer.Ping >/dev/null 2>&1 && break; sleep 0.1; done; ' +
        `printf %s "$OM_SECRET" | "${process.execPath}" "${BIN}" profile secret k --stdin`;
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn('dbus-run-session', ['--', 'sh', '-c', script], {
          // its own runtime dir: with the outer one, gnome-keyring-daemon --start would find the
          // test run's daemon through its control socket and never register on this bus
          env: {
            ...h.env,
            OM_SECRET: SECRET,
            DISPLAY: '',
            WAYLAND_DISPLAY: '',
            XDG_RUNTIME_DIR: mkdtempSync(join(root, 'run-')),
            GNOME_KEYRING_CONTROL: '',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`locked keyring: no end in 30 s\n${stderr}`));
        }, 30_000);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stderr });
        });
      });
      const ours = r.stderr
        .split('\n')
        .filter((l) => /^(oauthmail|hint):/.test(l))
        .join('\n');
      expect(r.code, r.stderr).toBe(1);
      expect(ours).toMatch(/^oauthmail: the keychain is unavailable: the keyring is locked/m);
      expect(ours).toMatch(/^hint: .*--storage file/m);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      noLeak(h, r.stderr);
    }
  }, 90_000);
});
