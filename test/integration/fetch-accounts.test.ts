/**
 * One output folder, two mailboxes with long, similar names, two rounds of `fetch --delete`, in every
 * format, against the stack's Dovecot: every message ends up on disk exactly once. (Before, both
 * mailboxes were written to one mbox under a name cut to 40 bytes, and the second round "removed
 * bytes appended by an interrupted run": the other mailbox's messages, already deleted on the server.)
 * A second account is refused in that folder with a clear error and nothing of its mail is touched;
 * in a folder of its own it works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ImapFlow } from 'imapflow';
import { adminClient, imapProfile, mintImapToken, rawMessage, runDriver, stack } from './fetch-support.js';

const s = stack();
const ALICE = 'alice@contoso.test';
const BOB = 'bob@contoso.test';
let work: string;
let alice: ImapFlow;
let bob: ImapFlow;

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-fetch-accounts-'));
  alice = await adminClient(s, ALICE);
  bob = await adminClient(s, BOB);
});
afterAll(async () => {
  await alice?.logout().catch(() => undefined);
  await bob?.logout().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

const mid = (b: Buffer | string) =>
  /^Message-ID: <([^>]+)>/im.exec(typeof b === 'string' ? b : b.toString('latin1'))?.[1] ?? '<none>';

function fetchInto(user: string, mailbox: string, out: string, format: string) {
  return runDriver({
    user,
    token: mintImapToken(s, user),
    profile: imapProfile(s, user),
    options: { mailbox, out, format, delete: true },
  }).done;
}

/** Message-IDs of every message in the folder, in whatever format it was written (sorted, duplicates kept). */
function idsOnDisk(out: string, format: string): string[] {
  const ids: string[] = [];
  if (format === 'eml') {
    for (const f of readdirSync(out).filter((x) => x.endsWith('.eml')))
      ids.push(mid(readFileSync(path.join(out, f))));
  } else if (format === 'maildir') {
    for (const sub of ['new', 'cur'])
      for (const f of readdirSync(path.join(out, sub))) ids.push(mid(readFileSync(path.join(out, sub, f))));
  } else {
    for (const f of readdirSync(out).filter((x) => x.endsWith('.mbox'))) {
      for (const part of readFileSync(path.join(out, f), 'latin1')
        .split(/^From MAILER-DAEMON /m)
        .slice(1))
        ids.push(mid(part));
    }
  }
  return ids.sort();
}

async function count(c: ImapFlow, box: string): Promise<number> {
  const st = await c.status(box, { messages: true });
  if (!st) throw new Error(`STATUS ${box} failed`);
  return st.messages ?? -1;
}

async function put(c: ImapFlow, box: string, n: number, into: string[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const raw = rawMessage(i, 500 + i * 300);
    into.push(mid(raw));
    await c.append(box, raw, [], new Date('2025-11-20T10:00:00Z'));
  }
}

describe.each(['eml', 'maildir', 'mbox'])('one folder, %s', (format) => {
  it('two long, similar mailbox names, two rounds with --delete: every message on disk exactly once; a second account is refused', async () => {
    const out = path.join(work, format);
    const tag = randomBytes(3).toString('hex');
    // equal in their first 40 bytes, which is all the old file names kept
    const box1 = `Customer Contracts 2024 Signed ${tag} Quarter One`;
    const box2 = `Customer Contracts 2024 Signed ${tag} Quarter Two`;
    await alice.mailboxCreate(box1);
    await alice.mailboxCreate(box2);
    const expected: string[] = [];

    for (let round = 0; round < 2; round++) {
      await put(alice, box1, 3, expected);
      await put(alice, box2, 2, expected);
      for (const box of [box1, box2]) {
        const r = await fetchInto(ALICE, box, out, format);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).not.toMatch(/removing \d+ bytes/);
      }
    }
    expect(idsOnDisk(out, format)).toEqual(expected.sort());
    expect(await count(alice, box1)).toBe(0);
    expect(await count(alice, box2)).toBe(0);

    // bob, with a mailbox of the same name, in alice's folder: refused, his mail untouched
    await bob.mailboxCreate(box1);
    const bobs: string[] = [];
    await put(bob, box1, 2, bobs);
    const refused = await fetchInto(BOB, box1, out, format);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /--out .* holds mail fetched for alice@contoso\.test.*bob@contoso\.test.*cannot share it/,
    );
    expect(await count(bob, box1)).toBe(2);
    expect(idsOnDisk(out, format)).toEqual(expected.sort());

    // in his own folder: saved, then deleted
    const own = path.join(work, `${format}-bob`);
    const r = await fetchInto(BOB, box1, own, format);
    expect(r.code, r.stderr).toBe(0);
    expect(idsOnDisk(own, format)).toEqual(bobs.sort());
    expect(await count(bob, box1)).toBe(0);
    expect(existsSync(path.join(own, '.oauthmail-folder.json'))).toBe(true);
  });
});
