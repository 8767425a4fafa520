/**
 * `send --batch FILE --resume` and its results file (FILE.results.jsonl): one run at a time per
 * batch (a second overlapping run refuses instead of sending everything again), a torn last
 * record left by a crash is repaired instead of swallowing the next record, and a short write
 * is continued instead of leaving half a record. A fake Sender counts what would go out.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  promises as fsp,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { runBatch, resultsFileFor, type Sender } from '../../src/mail/batch.js';
import type { BuiltMessage } from '../../src/mail/message.js';
import type { SendResult } from '../../src/mail/smtp.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-batch-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const profile = { user: 'alice@contoso.test' };

function batchFile(n: number): string {
  const file = path.join(dir, 'mails.jsonl');
  writeFileSync(
    file,
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({ to: 'bob@contoso.test', subject: `#${i + 1}` }),
    ).join('\n') + '\n',
  );
  return file;
}

/** A sender that records every subject it "sends"; `gate` holds each send until released. */
function fakeSender(opts: { delayMs?: number } = {}): Sender & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    async send(built: BuiltMessage): Promise<SendResult> {
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      sent.push(String(built.mail.subject));
      return {
        messageId: String(built.mail.messageId),
        response: '250 2.0.0 Ok: queued',
        accepted: built.envelope.to,
        rejected: [],
        envelope: built.envelope,
        attempts: 1,
      };
    },
  };
}

const sentLines = (file: string) =>
  readFileSync(resultsFileFor(file), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { line: number; status: string });

describe('batch results file', () => {
  it('two overlapping runs of the same batch: the second refuses (exit 6), every line goes out once', async () => {
    const file = batchFile(40);
    const a = fakeSender({ delayMs: 5 });
    const b = fakeSender({ delayMs: 5 });
    const first = runBatch(a, profile, { file, resume: true, concurrency: 2 });
    // the second starts while the first is sending
    await new Promise((r) => setTimeout(r, 30));
    const second = runBatch(b, profile, { file, resume: true, concurrency: 2 });
    const [ra, rb] = await Promise.allSettled([first, second]);
    expect(ra.status).toBe('fulfilled');
    expect(rb.status).toBe('rejected');
    const err = (rb as PromiseRejectedResult).reason as { code: string; exitCode: number; message: string };
    expect(err.code).toBe('batch_locked');
    expect(err.exitCode).toBe(6);
    expect(err.message).toContain(file);
    expect(b.sent).toEqual([]);
    expect(a.sent).toHaveLength(40);
    // and once the first has finished, --resume runs again (the lock was released) and sends nothing
    const c = fakeSender();
    const rc = await runBatch(c, profile, { file, resume: true });
    expect(c.sent).toEqual([]);
    expect(rc.skipped).toBe(40);
  });

  it('a lock left by a killed run (dead pid, no longer refreshed) is taken over, not refused', async () => {
    const file = batchFile(3);
    const lock = `${resultsFileFor(file)}.lock`;
    mkdirSync(lock);
    writeFileSync(`${resultsFileFor(file)}.lock-owner`, `${spawnSync(process.execPath, ['-e', '0']).pid}\n`);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    const s = fakeSender();
    const r = await runBatch(s, profile, { file, resume: true });
    expect(s.sent).toEqual(['#1', '#2', '#3']);
    expect(r.sent).toBe(3);
    // released at the end: the lock and its owner file are gone
    expect(existsSync(lock)).toBe(false);
    expect(existsSync(`${resultsFileFor(file)}.lock-owner`)).toBe(false);
  });

  it('a lock held by a live process is refused at once, naming the batch', async () => {
    const file = batchFile(3);
    mkdirSync(`${resultsFileFor(file)}.lock`);
    writeFileSync(`${resultsFileFor(file)}.lock-owner`, '1\n'); // pid 1 is alive
    const t0 = Date.now();
    await expect(runBatch(fakeSender(), profile, { file, resume: true })).rejects.toMatchObject({
      code: 'batch_locked',
      exitCode: 6,
    });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('a torn last record (crash mid-write) does not swallow the next record: no line goes out twice', async () => {
    const file = batchFile(5);
    const first = fakeSender();
    const stop = new AbortController();
    await runBatch(first, profile, {
      file,
      onResult: (r) => {
        if (r.line === 2) stop.abort();
      },
      signal: stop.signal,
    });
    expect(first.sent).toEqual(['#1', '#2']);
    // the crash: half of line 3's record, no newline (line 3 itself never got its 250)
    appendFileSync(resultsFileFor(file), '{"line":3,"status":"se');

    const second = fakeSender();
    const r2 = await runBatch(second, profile, { file, resume: true });
    expect(second.sent).toEqual(['#3', '#4', '#5']);
    expect(r2.skipped).toBe(2);
    // every record is readable again
    expect(sentLines(file).map((x) => x.line)).toEqual([1, 2, 3, 4, 5]);

    const third = fakeSender();
    const r3 = await runBatch(third, profile, { file, resume: true });
    expect(third.sent).toEqual([]);
    expect(r3.skipped).toBe(5);
  });

  it('a torn tail that is a whole record without its newline is kept, and the next record starts on a fresh line', async () => {
    const file = batchFile(3);
    await runBatch(fakeSender(), profile, { file });
    // rewrite: only line 1 recorded, without the final newline
    const rec = readFileSync(resultsFileFor(file), 'utf8').split('\n')[0]!;
    writeFileSync(resultsFileFor(file), rec);
    const s = fakeSender();
    await runBatch(s, profile, { file, resume: true });
    expect(s.sent).toEqual(['#2', '#3']);
    expect(sentLines(file).map((x) => x.line)).toEqual([1, 2, 3]);
  });

  it('short writes are continued: every record is whole, and --resume sends nothing again', async () => {
    const file = batchFile(6);
    // a file system that writes at most 7 bytes per call (allowed by write(2))
    const probe = await fsp.open(path.join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { write: (...a: unknown[]) => Promise<unknown> };
    await probe.close();
    const realWrite = proto.write;
    proto.write = async function (this: unknown, data: unknown, ...rest: unknown[]) {
      if (typeof data === 'string') data = Buffer.from(data);
      const b = data as Buffer;
      if (typeof rest[0] === 'number') {
        const off = rest[0];
        const len = Math.min(rest[1] as number, 7);
        return realWrite.call(this, b, off, len, rest[2]);
      }
      return realWrite.call(this, b, 0, Math.min(b.length, 7), null);
    };
    let s;
    try {
      s = fakeSender();
      await runBatch(s, profile, { file, concurrency: 3 });
    } finally {
      proto.write = realWrite;
    }
    expect(s.sent).toHaveLength(6);
    expect(
      sentLines(file)
        .map((x) => x.line)
        .sort(),
    ).toEqual([1, 2, 3, 4, 5, 6]);
    const again = fakeSender();
    await runBatch(again, profile, { file, resume: true });
    expect(again.sent).toEqual([]);
  });
});
