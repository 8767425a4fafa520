/**
 * Issue 13, the kill test: 50 queued messages, Postfix slow (a 1 s pause at RCPT for each message),
 * `oauthmail queue run` killed with SIGKILL 30 times at random moments. At the end every message
 * arrived in Dovecot, none was lost, and the duplicates number at most the kills that hit after
 * the server accepted a message and before its queue file was removed (the test prints both).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { BIN, cliHome, type CliHome } from '../support/cli.js';
import {
  installSenderFaults,
  mailbox,
  postfixLog,
  postfixSettled,
  stack,
  type Stack,
} from './send-support.js';
import { signInStackProfile } from '../support/signin.js';
import { slowSender } from './queue-support.js';
import { Spool } from '../../src/mail/queue/spool.js';
import { parseSendmailArgs, prepareSendmail } from '../../src/mail/sendmail.js';

const BOB = 'bob@contoso.test';
const MESSAGES = 50;
const KILLS = 30;
const SLOW = 'slow@contoso.test';

let s: Stack;
let h: CliHome;

beforeAll(async () => {
  s = stack();
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
  await signInStackProfile(h, s.idpUrl, `${s.smtpHost}:${s.smtpPort}`);
  // a slow server: Postfix pauses 1 s at RCPT for every message from SLOW (only this file's mail:
  // the other files share the stack's Postfix)
  await installSenderFaults(s);
  await slowSender(s, SLOW, 1);
}, 60_000);

afterAll(async () => {
  await slowSender(s, SLOW, undefined);
});

const queueDir = () => path.join(h.env.OAUTHMAIL_DATA_DIR!, 'queue');
const queuedIds = () => {
  try {
    return readdirSync(queueDir()).filter((f) => f.endsWith('.msg'));
  } catch {
    return [];
  }
};
const midOfFile = (f: string) =>
  /^Message-ID: (<[^>]+>)/im.exec(readFileSync(path.join(queueDir(), f), 'utf8'))?.[1];

/** Message-IDs Postfix has accepted (committed to its queue: qmgr saw them). */
function acceptedByPostfix(): Set<string> {
  const log = postfixLog(s);
  const midOfQid = new Map<string, string>();
  for (const m of log.matchAll(/cleanup\[\d+\]: ([0-9A-F]+): message-id=(<[^>]+>)/g))
    midOfQid.set(m[1]!, m[2]!);
  const out = new Set<string>();
  for (const m of log.matchAll(/qmgr\[\d+\]: ([0-9A-F]+): from=/g)) {
    const mid = midOfQid.get(m[1]!);
    if (mid) out.add(mid);
  }
  return out;
}

function runner(): { child: ReturnType<typeof spawn>; done: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, 'queue', 'run'], {
    env: h.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr.resume();
  const done = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  return { child, done };
}

describe('queue run under SIGKILL', () => {
  it(`${KILLS} kills while ${MESSAGES} messages are queued and Postfix is slow: all arrive, duplicates only from kills in the window`, async () => {
    const t = `k${Date.now().toString(36)}`;
    const spool = new Spool(h.env.OAUTHMAIL_DATA_DIR!);
    const mids: string[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const prepared = prepareSendmail(
        parseSendmailArgs(['-f', SLOW, '-t', '-i']),
        `To: ${BOB}\nSubject: kill ${t} #${i}\n\nmessage ${i} of ${t}\n`,
        { user: 'alice@contoso.test' },
      );
      const meta = await spool.add({
        profile: 'work',
        envelope: prepared.envelope,
        raw: prepared.raw,
        reason: 'test',
      });
      mids.push(meta.messageId!);
    }
    expect(new Set(mids).size).toBe(MESSAGES);

    let windowHits = 0;
    let kills = 0;
    while (kills < KILLS) {
      if (queuedIds().length === 0) break;
      const mark = postfixLog(s).length;
      const r = runner();
      // node start-up is ~0.4 s and every message takes > 1 s: kill anywhere in that span
      const at = 300 + Math.floor(Math.random() * 2200);
      const exited = await Promise.race([
        r.done.then(() => true),
        new Promise((res) => setTimeout(() => res(false), at)),
      ]);
      if (exited) continue;
      r.child.kill('SIGKILL');
      await r.done;
      kills++;
      const waiting = new Set(queuedIds().map(midOfFile));
      // Postfix logs asynchronously: wait until the killed session is logged as ended
      await postfixSettled(s, { since: mark });
      const accepted = acceptedByPostfix();
      if ([...waiting].some((m) => m && accepted.has(m))) windowHits++;
    }
    // then run to the end
    for (let i = 0; i < 5 && queuedIds().length; i++) {
      const r = runner();
      const code = await r.done;
      expect([0, 6]).toContain(code);
    }
    expect(queuedIds()).toEqual([]);

    // every message arrived; count the copies
    const deadline = Date.now() + 30_000;
    let copies = new Map<string, number>();
    for (;;) {
      copies = new Map();
      for (const m of mailbox(s, BOB).filter((x) => x.text.includes(`kill ${t}`))) {
        const mid = /^Message-ID: (<[^>]+>)/im.exec(m.text)?.[1] ?? '';
        copies.set(mid, (copies.get(mid) ?? 0) + 1);
      }
      if (mids.every((m) => copies.has(m)) || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    const lost = mids.filter((m) => !copies.has(m));
    const duplicates = [...copies.values()].reduce((n, c) => n + c - 1, 0);
    console.log(
      `queue kill test: ${kills} SIGKILLs, ${MESSAGES} messages, ${lost.length} lost, ${duplicates} duplicates, ${windowHits} kills between the server's acceptance and the file's removal`,
    );
    expect(lost).toEqual([]);
    expect(kills).toBe(KILLS);
    expect(duplicates).toBeLessThanOrEqual(windowHits);
    expect([...copies.keys()].every((m) => mids.includes(m))).toBe(true);
  }, 400_000);

  it('two runners started together never send the same file: one delivers, the other says another run is busy', async () => {
    const t = `two${Date.now().toString(36)}`;
    const spool = new Spool(h.env.OAUTHMAIL_DATA_DIR!);
    const mids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const p = prepareSendmail(parseSendmailArgs(['-f', SLOW, BOB]), `Subject: two ${t} #${i}\n\nx\n`, {
        user: 'alice@contoso.test',
      });
      mids.push(
        (await spool.add({ profile: 'work', envelope: p.envelope, raw: p.raw, reason: 'test' })).messageId!,
      );
    }
    const err: string[] = ['', ''];
    const mark = postfixLog(s).length;
    const runs = [0, 1].map((k) => {
      const child = spawn(process.execPath, [BIN, 'queue', 'run'], {
        env: h.env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr.on('data', (d: Buffer) => (err[k] += d.toString()));
      return new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    });
    const codes = await Promise.all(runs);
    expect(codes).toEqual([0, 0]);
    expect(err.filter((e) => /another queue run \(pid \d+\) is delivering the queue/.test(e))).toHaveLength(
      1,
    );
    expect(queuedIds()).toEqual([]);
    const deadline = Date.now() + 20_000;
    let got: string[] = [];
    while (Date.now() < deadline) {
      got = mailbox(s, BOB)
        .filter((m) => m.text.includes(`two ${t}`))
        .map((m) => /^Message-ID: (<[^>]+>)/im.exec(m.text)![1]!);
      if (got.length >= 4) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    // a duplicate would still be on its way: wait until Postfix has delivered all it accepted
    await postfixSettled(s, { since: mark });
    got = mailbox(s, BOB)
      .filter((m) => m.text.includes(`two ${t}`))
      .map((m) => /^Message-ID: (<[^>]+>)/im.exec(m.text)![1]!);
    expect(got.sort()).toEqual([...mids].sort()); // each exactly once
  }, 60_000);
});
