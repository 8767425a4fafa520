/**
 * Nothing lost, nothing doubled: a `fetch --delete` killed with SIGKILL at random points 20 times,
 * then run to completion, leaves every message exactly once on disk and none on the server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ImapFlow } from 'imapflow';
import {
  ageFetchLock,
  adminClient,
  appendAll,
  freshFolder,
  imapProfile,
  mintImapToken,
  prng,
  rawMessage,
  runDriver,
  stack,
} from './fetch-support.js';

const USER = 'alice@contoso.test';
const s = stack();
let admin: ImapFlow;
let work: string;
const folders: string[] = [];

const mid = (b: Buffer | string) =>
  /^Message-ID: <([^>]+)>/im.exec(typeof b === 'string' ? b : b.toString('latin1'))?.[1];

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-fetch-kill-'));
  admin = await adminClient(s, USER);
});
afterAll(async () => {
  for (const f of folders) await admin?.mailboxDelete(f).catch(() => undefined);
  await admin?.logout().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

function onDisk(format: string, out: string): Array<{ id: string; bytes: Buffer }> {
  if (format === 'mbox') {
    const text = readFileSync(
      path.join(
        out,
        readdirSync(out).find((f) => f.endsWith('.mbox'))!,
      ),
      'latin1',
    );
    return text
      .split(/^(?=From MAILER-DAEMON )/m)
      .filter(Boolean)
      .map((m) => ({ id: mid(m)!, bytes: Buffer.from(m, 'latin1') }));
  }
  const dir = format === 'maildir' ? path.join(out, 'new') : out;
  return readdirSync(dir)
    .filter((f) => format === 'maildir' || f.endsWith('.eml'))
    .map((f) => {
      const bytes = readFileSync(path.join(dir, f));
      return { id: mid(bytes)!, bytes };
    });
}

describe('fetch --delete under SIGKILL', () => {
  for (const format of ['eml', 'maildir', 'mbox'] as const) {
    it(`${format}: 20 kills at random points, then a full run: every message once on disk, none on the server`, async () => {
      const folder = await freshFolder(admin, `kill-${format}`);
      folders.push(folder);
      const rnd = prng(format.length * 7919);
      const msgs: Buffer[] = [];
      for (let i = 0; i < 120; i++)
        msgs.push(
          rawMessage(
            i,
            i % 40 === 7 ? 700_000 + Math.floor(rnd() * 600_000) : 300 + Math.floor(rnd() * 60_000),
          ),
        );
      await appendAll(admin, folder, msgs);
      const byId = new Map(msgs.map((m) => [mid(m)!, m]));
      const out = path.join(work, format);
      const cfg = () => ({
        user: USER,
        token: mintImapToken(s, USER),
        profile: imapProfile(s, USER),
        options: { mailbox: folder, out, format, delete: true, batchSize: 3 },
      });

      let killedMidway = 0;
      // Kill points are drawn from the time a run takes here: a run that finished before its kill
      // shrinks the window, so that most runs really die mid-way on fast and slow machines alike.
      // New mail keeps arriving between runs, so every run has work to do.
      let windowMs = 900;
      let n = msgs.length;
      for (let k = 0; k < 20; k++) {
        const more = Array.from({ length: 6 }, (_, j) =>
          rawMessage(1000 + k * 6 + j, 300 + Math.floor(rnd() * 40_000)),
        );
        await appendAll(admin, folder, more);
        for (const m of more) byId.set(mid(m)!, m);
        n += more.length;
        const run = runDriver(cfg());
        const started = Date.now();
        const delay = 80 + Math.floor(rnd() * windowMs);
        const timer = setTimeout(() => run.child.kill('SIGKILL'), delay);
        const r = await run.done;
        clearTimeout(timer);
        if (r.signal === 'SIGKILL') {
          killedMidway++;
          // the killed run's folder lock is taken over once stale (10 s): move its clock
          ageFetchLock(out);
        } else {
          expect(r.code, r.stderr).toBe(0);
          windowMs = Math.max(100, Math.floor((Date.now() - started) * 0.8));
        }
      }
      // most runs must really have been killed, or the test proves nothing
      expect(killedMidway).toBeGreaterThanOrEqual(10);

      const final = await runDriver(cfg()).done;
      expect(final.code, final.stderr).toBe(0);

      const st = await admin.status(folder, { messages: true });
      expect(st && st.messages).toBe(0);

      const files = onDisk(format, out);
      const counts = new Map<string, number>();
      for (const f of files) counts.set(f.id, (counts.get(f.id) ?? 0) + 1);
      expect(counts.size).toBe(n);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
      for (const id of byId.keys()) expect(counts.get(id), `message ${id} missing`).toBe(1);
      if (format !== 'mbox') {
        for (const f of files) expect(f.bytes.equals(byId.get(f.id)!)).toBe(true);
        // no temp files left (message temp files, or a state write cut short by a kill)
        if (format === 'maildir') expect(readdirSync(path.join(out, 'tmp'))).toEqual([]);
      } else {
        // mboxrd: the "From the start" body line is quoted, CRLF became LF
        for (const f of files) {
          expect(f.bytes.toString('latin1')).toContain('\n>From the start: message');
          expect(f.bytes.includes('\r\n')).toBe(false);
        }
      }
      expect(readdirSync(out).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock'))).toEqual([]);
      console.log(`fetch --delete ${format}: ${killedMidway}/20 runs killed mid-way; final state consistent`);
    }, 300_000);
  }
});
