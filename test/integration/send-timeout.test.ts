/**
 * `send` against a server that accepts the connection and never greets: each attempt gives up
 * after `--timeout`, each retry is announced on stderr with its wait and reason, and the whole
 * command ends within the bound the policy gives (attempts × timeout + waits), with exit 6.
 * (It was silent for 2 min 10 s.) The server is a TCP listener in this process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { cliHome, type CliHome } from '../support/cli.js';

let server: net.Server;
let port: number;
let h: CliHome;
const sockets = new Set<net.Socket>();

beforeAll(async () => {
  server = net.createServer((c) => {
    sockets.add(c);
    c.on('error', () => undefined);
    c.on('close', () => sockets.delete(c));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
  h = cliHome({ DBUS_SESSION_BUS_ADDRESS: '' });
  const add = await h.run([
    'profile',
    'add',
    'w',
    '--client-id',
    '11111111-1111-4111-8111-111111111111',
    '--user',
    'a@contoso.test',
    '--smtp',
    `127.0.0.1:${port}`,
    '--smtp-security',
    'none',
    '--storage',
    'file',
    '--set',
    'retry.maxAttempts=3',
    '--set',
    'retry.initialDelayMs=100',
  ]);
  expect(add.code, add.stderr).toBe(0);
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(h.dir, { recursive: true, force: true });
});

describe('send against a server that never greets', () => {
  it('--timeout 1: three attempts, each retry announced, exit 6 within the bound', async () => {
    const t0 = Date.now();
    const r = await h.run([
      'send',
      '-p',
      'w',
      '--to',
      'b@contoso.test',
      '-s',
      'x',
      '--body',
      'y',
      '--timeout',
      '1',
    ]);
    const took = Date.now() - t0;
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/^retrying in 0\.\d s \(2\/3\): .*(Greeting never received|Timeout)/m);
    expect(r.stderr).toMatch(/^retrying in 0\.\d s \(3\/3\): /m);
    expect(r.stderr).toMatch(/after 3 attempts/);
    expect(took).toBeLessThan(3 * 1000 + 2 * 100 + 5_000); // attempts × timeout + waits + start-up slack
  });

  it('the profile key timeout does the same; a bad --timeout is exit 2', async () => {
    const e = await h.run(['profile', 'edit', 'w', '--set', 'timeout=1', '--set', 'retry.maxAttempts=1']);
    expect(e.code, e.stderr).toBe(0);
    const r = await h.run(['send', '-p', 'w', '--to', 'b@contoso.test', '-s', 'x', '--body', 'y']);
    expect(r.code, r.stderr).toBe(6);
    const bad = await h.run([
      'send',
      '-p',
      'w',
      '--to',
      'b@contoso.test',
      '--body',
      'y',
      '--timeout',
      'soon',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--timeout must be a number of seconds/);
  });
});

describe('send on a terminal', () => {
  it('with no body refuses (exit 2) instead of sending an empty message; --body "" is allowed', () => {
    // script(1) gives the CLI a terminal on stdin; nothing is connected to (the server never greets)
    const run = (extra: string) =>
      spawnSync(
        'script',
        ['-qec', `${process.execPath} ${h.bin} send -p w --to b@contoso.test -s x ${extra}`, '/dev/null'],
        {
          env: h.env,
          encoding: 'utf8',
          timeout: 30_000,
        },
      );
    const r = run('');
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(
      /no message body: give --body TEXT, --body-file FILE or --html FILE, or pipe it in/,
    );
    const dry = run("--body '' --dry-run");
    expect(dry.status, dry.stdout).toBe(0);
  });
});
