/**
 * Ctrl-C and SIGTERM during `fetch --delete` (the real CLI, signed in by device code at the stack's
 * IdP, reading from a scripted IMAP server that sends three messages and then goes quiet, as a slow
 * server or a 2,000-message batch would look mid-way): the command stops within a second or two,
 * with the three messages on disk and recorded, nothing deleted, and exits 130 / 143, as `send
 * --batch` and every other interrupted command do. The rerun applies --delete to what was saved and
 * fetches the rest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backgroundCli, cliHome, type CliHome } from '../support/cli.js';
import { signInStackProfile } from '../support/signin.js';
import { startHostileImap, type HostileServer } from '../support/hostile-imap.js';
import { rawMessage } from './fetch-support.js';
import { stack } from './send-support.js';

let h: CliHome;
let work: string;

beforeAll(async () => {
  const s = stack();
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
  await signInStackProfile(h, s.idpUrl, `${s.smtpHost}:${s.smtpPort}`);
  work = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-fetch-int-'));
}, 90_000);
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(h.dir, { recursive: true, force: true });
});

const emls = (out: string) => (existsSync(out) ? readdirSync(out).filter((f) => f.endsWith('.eml')) : []);

describe.each([
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const)('fetch --delete stopped by %s', (signal, code) => {
  let server: HostileServer;
  afterAll(async () => server?.close());

  it(`stops at once, keeps what arrived (recorded, nothing deleted), exit ${code}; the rerun finishes`, async () => {
    const msgs = new Map([1, 2, 3, 4, 5].map((u) => [u, rawMessage(u, 2000)] as const));
    const opts = { messages: msgs, stall: { uid: 4 } as { uid: number } | undefined };
    server = await startHostileImap(opts);
    const edit = await h.run([
      'profile',
      'edit',
      'work',
      '--imap',
      `127.0.0.1:${server.port}`,
      '--imap-security',
      'none',
    ]);
    expect(edit.code, edit.stderr).toBe(0);
    const out = path.join(work, signal);
    const run = backgroundCli(h, ['fetch', '-p', 'work', '--out', out, '--delete'], /^$/, {
      killAfterMs: 60_000,
    });
    for (let i = 0; i < 300 && emls(out).length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    expect(emls(out)).toHaveLength(3);
    const t0 = Date.now();
    run.child.kill(signal);
    const r = await run.done;
    expect(Date.now() - t0).toBeLessThan(5_000); // not the 60 s idle timeout, nor the batch's end
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).toMatch(new RegExp(`fetch stopped by ${signal}: 3 message\\(s\\) saved and recorded`));
    expect(server.expunged).toEqual([]);
    const state = JSON.parse(
      readFileSync(
        path.join(
          out,
          readdirSync(out).find((f) => f.startsWith('.oauthmail-state.'))!,
        ),
        'utf8',
      ),
    ) as { saved: string };
    expect(state.saved).toBe('1:3');

    // the server behaves: the rerun deletes what was saved and fetches the rest
    opts.stall = undefined;
    const again = await h.run(['fetch', '-p', 'work', '--out', out, '--delete']);
    expect(again.code, again.stderr).toBe(0);
    expect(emls(out)).toHaveLength(5);
    expect([...server.expunged].sort()).toEqual([1, 2, 3, 4, 5]);
  });
});
