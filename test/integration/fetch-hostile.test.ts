/**
 * `fetch --delete` against a hostile IMAP server (test/support/hostile-imap.ts, scripted, in this
 * process): UIDs left out of the answer, answered without a body, SEARCH listing UIDs that cannot
 * exist, a 600 MB literal where 512 KiB was asked for, a server that stalls mid-literal. In every
 * case nothing is deleted that is not on disk, byte for byte; memory stays bounded; a stall ends
 * at the idle timeout with exit 6; an mbox killed before its first commit is repaired by the rerun.
 * The fetch code runs from dist/ in a child process (runDriver) so that its peak RSS can be read.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHostileImap, type HostileOptions, type HostileServer } from '../support/hostile-imap.js';
import { ageFetchLock, imapProfile, maxRssKb, rawMessage, runDriver, type Stack } from './fetch-support.js';
import type { Profile } from '../../src/config/schema.js';

const USER = 'mallory-victim@contoso.test';
let work: string;
let server: HostileServer | undefined;

beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-hostile-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  rmSync(work, { recursive: true, force: true });
});

function profile(port: number): Profile {
  // the stack's IMAP profile, pointed at the scripted server (plain text: it is on loopback)
  return imapProfile({ imapsPort: 0 } as Stack, USER, {
    imap: { host: '127.0.0.1', port, security: 'none' },
    sasl: 'xoauth2',
  });
}

function messages(n: number, size = 3000): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (let uid = 1; uid <= n; uid++) m.set(uid, rawMessage(uid, size));
  return m;
}

async function run(
  opts: HostileOptions,
  options: Record<string, unknown>,
  imapOptions: Record<string, unknown> = {},
) {
  server ??= await startHostileImap(opts);
  const r = await runDriver({
    user: USER,
    token: 'not-a-real-token',
    profile: profile(server.port),
    options: { mailbox: 'INBOX', out: work, format: 'eml', delete: true, ...options },
    imapOptions,
  }).done;
  return { ...r, summary: r.code === 0 ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined };
}

/** The .eml files on disk, by UID (the name ends in -<uid>.eml). */
function emlByUid(): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const f of readdirSync(work)) {
    const m = /-(\d+)\.eml$/.exec(f);
    if (m) out.set(Number(m[1]), readFileSync(path.join(work, f)));
  }
  return out;
}

function expectDeletedOnlyWhatIsOnDisk(originals: Map<number, Buffer>) {
  const disk = emlByUid();
  for (const uid of [...server!.deleted, ...server!.expunged]) {
    expect(disk.get(uid)?.equals(originals.get(uid)!), `UID ${uid} deleted but not on disk intact`).toBe(
      true,
    );
  }
}

const stateOf = () => {
  const f = readdirSync(work).find((x) => x.startsWith('.oauthmail-state.') && x.endsWith('.json'));
  return f
    ? (JSON.parse(readFileSync(path.join(work, f), 'utf8')) as { saved: string; lastUid: number })
    : undefined;
};

describe('fetch --delete against a hostile IMAP server', () => {
  it('records and deletes only the UIDs it wrote: one left out of the FETCH answer, one answered without a body', async () => {
    const msgs = messages(5);
    const originals = new Map(msgs);
    const opts: HostileOptions = { messages: msgs, omit: new Set([3]), noBody: new Set([4]) };
    const r1 = await run(opts, {});
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.stderr).toMatch(/no message for UID 3:4 of INBOX; not saved, so left on the server/);
    expect([...emlByUid().keys()].sort()).toEqual([1, 2, 5]);
    expect([...server!.expunged].sort()).toEqual([1, 2, 5]);
    expect(stateOf()?.saved).toBe('1:2,5');
    expectDeletedOnlyWhatIsOnDisk(originals);

    // the server behaves again: the rerun saves the two it held back, and only then deletes them
    opts.omit = new Set();
    opts.noBody = new Set();
    const r2 = await run(opts, {});
    expect(r2.code, r2.stderr).toBe(0);
    expect([...emlByUid().keys()].sort()).toEqual([1, 2, 3, 4, 5]);
    expect([...server!.expunged].sort()).toEqual([1, 2, 3, 4, 5]);
    expectDeletedOnlyWhatIsOnDisk(originals);
  });

  it('never trusts SEARCH UIDs at or above UIDNEXT (a million of them), and fetches real ones later', async () => {
    const msgs = messages(5);
    const originals = new Map(msgs);
    const extra = Array.from({ length: 1_000_000 }, (_, i) => 6 + i);
    const opts: HostileOptions = { messages: msgs, searchExtra: extra };
    const r1 = await run(opts, {});
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.summary?.fetched).toBe(5);
    expect(stateOf()).toMatchObject({ saved: '1:5', lastUid: 5 });
    expect([...server!.expunged].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(maxRssKb(r1.stderr)).toBeLessThan(150 * 1024);

    // a real message 6 arrives: it is downloaded, not taken for "saved" by the earlier answer
    msgs.set(6, rawMessage(6, 2000));
    originals.set(6, msgs.get(6)!);
    opts.searchExtra = [];
    const r2 = await run(opts, {});
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.summary?.fetched).toBe(1);
    expect([...emlByUid().keys()].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expectDeletedOnlyWhatIsOnDisk(originals);
  });

  it('refuses a 600 MB literal sent for a 512 KiB request, in bounded memory, deleting nothing', async () => {
    const msgs = messages(3);
    const originals = new Map(msgs);
    const opts: HostileOptions = { messages: msgs, hugeLiteral: { uid: 2, bytes: 600 * 1024 * 1024 } };
    const r1 = await run(opts, { format: 'mbox' });
    expect(r1.code, r1.stderr).not.toBe(0);
    expect(r1.stderr).toMatch(/^error: .*(literal|too large)/im);
    expect(maxRssKb(r1.stderr)).toBeLessThan(150 * 1024);
    expect(server!.hugeBytesSent()).toBeLessThan(100 * 1024 * 1024);
    expect(server!.deleted).toEqual([]);
    expect(server!.expunged).toEqual([]);

    // repaired: every message ends up in the mbox exactly once (UID 1 may have been appended by the
    // failed run before its first commit: the rerun cuts it off and writes it again)
    opts.hugeLiteral = undefined;
    const r2 = await run(opts, { format: 'mbox' });
    expect(r2.code, r2.stderr).toBe(0);
    expect(mboxIds()).toEqual([...originals.values()].map(messageId).sort());
    expect([...server!.expunged].sort()).toEqual([1, 2, 3]);
  });

  it('gives up on a server that stalls mid-literal at the idle timeout, exit 6, deleting nothing', async () => {
    const msgs = messages(3);
    const opts: HostileOptions = { messages: msgs, stall: { uid: 2 } };
    const t0 = Date.now();
    const r = await run(opts, {}, { socketTimeoutMs: 1000 });
    expect(r.code, r.stderr).toBe(6);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(server!.deleted).toEqual([]);
    expect(server!.expunged).toEqual([]);
  });

  it('leaves the mode of an existing --out folder alone; a file in the way is exit 2 with the fix', async () => {
    chmodSync(work, 0o755);
    const msgs = messages(2);
    const r = await run({ messages: msgs }, { delete: false });
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(work).mode & 0o777).toBe(0o755);
    // a folder it makes itself is private
    const made = path.join(work, 'new-folder');
    const r2 = await run({ messages: msgs }, { delete: false, out: made });
    expect(r2.code, r2.stderr).toBe(0);
    expect(statSync(made).mode & 0o777).toBe(0o700);

    const file = path.join(work, 'a-file');
    writeFileSync(file, 'x');
    const r3 = await run({ messages: msgs }, { out: file });
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/--out .*a-file: a file is in the way \(it must be a folder\)/);
    expect(server!.expunged).toEqual([]);
  });

  it('mbox: a run killed before its first commit leaves no torn or doubled copy', async () => {
    const msgs = messages(4, 20_000);
    const originals = new Map(msgs);
    // UID 3 stalls: UIDs 1 and 2 are appended, nothing is committed, then the run is killed
    const opts: HostileOptions = { messages: msgs, stall: { uid: 3 } };
    server = await startHostileImap(opts);
    const d = runDriver({
      user: USER,
      token: 'x',
      profile: profile(server.port),
      options: { mailbox: 'INBOX', out: work, format: 'mbox', delete: true },
    });
    const mbox = () => readdirSync(work).find((f) => f.endsWith('.mbox'));
    for (let i = 0; i < 400; i++) {
      const f = mbox();
      if (f && statSync(path.join(work, f)).size >= 30_000) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(mbox(), 'the run appended to the mbox before it was killed').toBeDefined();
    d.child.kill('SIGKILL');
    await d.done;
    expect(server.expunged).toEqual([]);
    // its lock stays behind; without moving the clock, a rerun now is told to retry
    const early = await run(opts, { format: 'mbox' });
    expect(early.code).toBe(6);
    expect(early.stderr).toMatch(/another oauthmail fetch or watch is writing to/);
    ageFetchLock(work);

    opts.stall = undefined;
    const r = await run(opts, { format: 'mbox' });
    expect(r.code, r.stderr).toBe(0);
    expect(mboxIds()).toEqual([...originals.values()].map(messageId).sort());
    expect([...server.expunged].sort()).toEqual([1, 2, 3, 4]);
  });
});

function messageId(b: Buffer): string {
  return /^Message-ID: <([^>]+)>/im.exec(b.toString('latin1'))![1]!;
}

/** The Message-IDs in the mbox files of the folder, sorted (duplicates kept). */
function mboxIds(): string[] {
  const ids: string[] = [];
  for (const f of readdirSync(work).filter((x) => x.endsWith('.mbox'))) {
    const text = readFileSync(path.join(work, f), 'latin1');
    for (const part of text.split(/^From MAILER-DAEMON /m).slice(1)) {
      const m = /^Message-ID: <([^>]+)>/im.exec(part);
      ids.push(m ? m[1]! : `<torn: ${part.slice(0, 40)}>`);
    }
  }
  expect(existsSync(work)).toBe(true);
  return ids.sort();
}
