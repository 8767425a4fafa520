/**
 * `fetch` against the local Dovecot: 500 messages of mixed sizes (one of 50 MB) as .eml and as
 * Maildir, byte-identical to what was appended (APPEND stores exact bytes), with the child's peak
 * RSS under 150 MB; a rerun fetches nothing new.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ImapFlow } from 'imapflow';
import {
  adminClient,
  appendAll,
  freshFolder,
  imapProfile,
  maxRssKb,
  mintImapToken,
  prng,
  rawMessage,
  runDriver,
  stack,
} from './fetch-support.js';

const USER = 'alice@contoso.test';
const s = stack();
let admin: ImapFlow;
let folder: string;
const sent = new Map<string, Buffer>(); // Message-ID -> bytes
let work: string;

const mid = (b: Buffer) => /^Message-ID: <([^>]+)>/im.exec(b.subarray(0, 4096).toString('latin1'))![1]!;

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-fetch-bulk-'));
  admin = await adminClient(s, USER);
  folder = await freshFolder(admin, 'bulk');
  const rnd = prng(42);
  const msgs: Buffer[] = [];
  for (let i = 0; i < 499; i++) {
    const r = rnd();
    // mostly small, some medium, a few over the 1 MB streaming threshold
    const size =
      r < 0.8
        ? 500 + Math.floor(rnd() * 30_000)
        : r < 0.97
          ? 30_000 + Math.floor(rnd() * 400_000)
          : 1_100_000 + Math.floor(rnd() * 2_000_000);
    msgs.push(rawMessage(i, size));
  }
  msgs.splice(250, 0, rawMessage(9999, 50 * 1024 * 1024));
  for (const m of msgs) sent.set(mid(m), m);
  await appendAll(admin, folder, msgs);
}, 300_000);

afterAll(async () => {
  await admin?.mailboxDelete(folder).catch(() => undefined);
  await admin?.logout().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

function checkFiles(files: string[]) {
  expect(files.length).toBe(500);
  const seen = new Set<string>();
  for (const f of files) {
    const got = readFileSync(f);
    const id = mid(got);
    expect(seen.has(id)).toBe(false);
    seen.add(id);
    const want = sent.get(id)!;
    expect(want, `unexpected message ${id} in ${f}`).toBeDefined();
    // byte-identical (compare lengths first for a readable failure)
    expect(got.length).toBe(want.length);
    expect(got.equals(want)).toBe(true);
  }
}

describe('fetch 500 messages of mixed sizes', () => {
  for (const format of ['eml', 'maildir'] as const) {
    it(`as ${format}: byte-identical, peak RSS < 150 MB, rerun fetches nothing`, async () => {
      const out = path.join(work, format);
      const cfg = {
        user: USER,
        token: mintImapToken(s, USER),
        profile: imapProfile(s, USER),
        options: { mailbox: folder, out, format },
      };
      const r = await runDriver(cfg).done;
      expect(r.stderr).not.toMatch(/error:/);
      expect(r.code).toBe(0);
      const summary = JSON.parse(r.stdout) as { fetched: number; bytes: number };
      expect(summary.fetched).toBe(500);
      const rss = maxRssKb(r.stderr);
      console.log(
        `fetch ${format}: 500 messages, ${(summary.bytes / 1048576).toFixed(1)} MB, child peak RSS ${(rss / 1024).toFixed(1)} MB`,
      );
      expect(rss).toBeLessThan(150 * 1024);
      const files =
        format === 'eml'
          ? readdirSync(out)
              .filter((f) => f.endsWith('.eml'))
              .map((f) => path.join(out, f))
          : readdirSync(path.join(out, 'new')).map((f) => path.join(out, 'new', f));
      checkFiles(files);
      if (format === 'maildir') {
        expect(readdirSync(path.join(out, 'tmp'))).toEqual([]);
        expect(readdirSync(path.join(out, 'cur'))).toEqual([]);
      }
      // no temp files left behind
      expect(readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);

      const again = await runDriver({ ...cfg, token: mintImapToken(s, USER) }).done;
      expect(again.code).toBe(0);
      expect((JSON.parse(again.stdout) as { fetched: number }).fetched).toBe(0);
    }, 300_000);
  }
});
