/**
 * Batches: one message per JSON line, sent over one pooled SMTP transport.
 *
 * Each line that was sent is recorded in FILE.results.jsonl (appended and fsynced right after
 * the server's 250, before the next result is written), so that `--resume` after a crash, a kill
 * or an outage skips exactly the lines the server already accepted. SMTP has no idempotency key:
 * a process killed between the server's 250 and our fsync can still cause one duplicate, so every
 * message also gets a stable Message-ID (line number + hash of the line) that receivers and
 * tests can deduplicate on. SIGINT/SIGTERM stop cleanly: no new lines, in-flight ones finish and
 * are recorded. One run at a time per batch: the results file is locked, torn records repaired
 * (src/mail/batch-results.ts).
 *
 * Line format: {"to": "a@x" | ["a@x", ...], "cc", "bcc", "from", "replyTo", "subject", "text"
 * (or "body"), "html", "headers": {"X-K": "v"} | ["X-K: v"], "attachments": ["path", ...] |
 * [{"filename", "content", "encoding": "base64"?}], "priority", and any other fields, which fill
 * {{name}} placeholders in the subject/text/html templates given on the command line}.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Profile } from '../config/schema.js';
import {
  MailServerError,
  OauthmailError,
  InterruptedError,
  TransientError,
  UsageError,
  isOauthmailError,
  AuthError,
  ConfigError,
  type ErrorCode,
} from '../errors/index.js';
import { buildMessage, type BuiltMessage } from './message.js';
import type { SendResult } from './smtp.js';
import { BatchLockedError, openResults, type ResultsLog } from './batch-results.js';
import { lineToOptions, missingPlaceholders, type BatchTemplate } from './batch-lines.js';

export { lineToOptions, missingPlaceholders, type BatchTemplate } from './batch-lines.js';

export interface Sender {
  send(built: BuiltMessage): Promise<SendResult>;
}

export interface LineResult {
  line: number;
  status: 'sent' | 'failed';
  to?: string[];
  messageId?: string;
  response?: string;
  error?: { code: ErrorCode; message: string; exitCode: number };
}

export interface BatchSummary {
  total: number;
  sent: number;
  failed: number;
  skipped: number;
  notAttempted: number;
  interrupted: boolean;
  resultsFile: string;
  elapsedMs: number;
}

export interface BatchOptions {
  file: string;
  resume?: boolean;
  template?: BatchTemplate;
  /** Messages in flight at once (the pool's connections carry them). */
  concurrency?: number;
  onResult?: (r: LineResult) => void;
  onProgress?: (p: { done: number; total: number; failed: number }) => void;
  /** Aborted: stop early (SIGINT/SIGTERM); lines in flight finish and are recorded. */
  signal?: AbortSignal;
}

export function resultsFileFor(file: string): string {
  return `${file}.results.jsonl`;
}

const lineHash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

function errorInfo(e: unknown): { code: ErrorCode; message: string; exitCode: number } {
  if (isOauthmailError(e)) return { code: e.code, message: e.message, exitCode: e.exitCode };
  return { code: 'internal', message: (e as Error)?.message ?? String(e), exitCode: 1 };
}

/** Errors after which no other line can succeed either: stop instead of failing 1,000 times. */
function isFatal(e: unknown): boolean {
  return (
    e instanceof AuthError ||
    e instanceof ConfigError ||
    (e instanceof MailServerError && e.code === 'smtp_auth_refused')
  );
}

export async function runBatch(
  sender: Sender,
  profile: Partial<Profile>,
  opts: BatchOptions,
): Promise<BatchSummary> {
  const started = Date.now();
  let input: string;
  try {
    input = await fsp.readFile(opts.file, 'utf8');
  } catch (e) {
    throw new UsageError(`--batch ${opts.file}: cannot read it`, { code: 'bad_batch_file', cause: e });
  }
  const baseDir = path.dirname(path.resolve(opts.file));
  const lines = input
    .split('\n')
    .map((t, i) => ({ no: i + 1, text: t.replace(/\r$/, '') }))
    .filter((l) => l.text.trim() !== '');
  const resultsFile = resultsFileFor(opts.file);
  // held until the run ends: a second run of the same batch refuses instead of resending it all
  const log = await openResults(resultsFile, opts.file);
  try {
    return await sendLines(sender, profile, opts, { lines, log, resultsFile, baseDir, started });
  } finally {
    await log.close();
  }
}

async function sendLines(
  sender: Sender,
  profile: Partial<Profile>,
  opts: BatchOptions,
  b: {
    lines: Array<{ no: number; text: string }>;
    log: ResultsLog;
    resultsFile: string;
    baseDir: string;
    started: number;
  },
): Promise<BatchSummary> {
  const { lines, log, resultsFile, baseDir, started } = b;
  const done = log.done;
  if (done.size && !opts.resume) {
    throw new UsageError(`${resultsFile} already records ${done.size} sent line(s)`, {
      code: 'batch_results_exist',
      hint: 'pass --resume to skip the lines already sent, or move the results file away to send everything again',
    });
  }
  for (const [no, hash] of done) {
    const l = lines.find((x) => x.no === no);
    if (l && hash && lineHash(l.text) !== hash) {
      throw new UsageError(
        `${opts.file} changed since it was sent: line ${no} is not the line that was sent`,
        {
          code: 'batch_file_changed',
          hint: `restore the file, or move ${resultsFile} away to start over`,
        },
      );
    }
  }
  const todo = lines.filter((l) => !done.has(l.no));
  const missing = missingPlaceholders(todo, opts.template ?? {});
  if (missing.length) {
    const m = missing[0]!;
    const where =
      m.lines.length === 1
        ? `line ${m.lines[0]}`
        : `lines ${m.lines.slice(0, 5).join(', ')}${m.lines.length > 5 ? `, … (${m.lines.length} in all)` : ''}`;
    throw new UsageError(
      `{{${m.name}}} in ${m.flag} has no value on ${where} of ${opts.file}${missing.length > 1 ? ` (and ${missing.length - 1} more placeholder(s))` : ''}; nothing was sent`,
      {
        code: 'batch_placeholder_missing',
        hint: `add "${m.name}" to those lines, or fix the placeholder's name in ${m.flag}`,
      },
    );
  }
  const summary: BatchSummary = {
    total: lines.length,
    sent: 0,
    failed: 0,
    skipped: lines.length - todo.length,
    notAttempted: 0,
    interrupted: false,
    resultsFile,
    elapsedMs: 0,
  };
  const record = log.record;

  let next = 0;
  let fatal: unknown;
  const stopped = () => !!opts.signal?.aborted;
  const worker = async () => {
    while (!fatal && !stopped() && next < todo.length) {
      if (log.lost()) {
        // another run took the lock over (we stalled past its stale time): stop sending
        fatal = new BatchLockedError(opts.file, log.lost());
        break;
      }
      const l = todo[next++]!;
      const hash = lineHash(l.text);
      let built: BuiltMessage | undefined;
      try {
        const mo = lineToOptions(l.text, l.no, opts.template, baseDir);
        built = await buildMessage(mo, profile);
        const domain = built.envelope.from.split('@')[1] ?? 'localhost';
        built.mail.messageId = `<batch.${hash}.${l.no}@${domain}>`;
        const r = await sender.send(built);
        // the server has accepted it: record before anything else, so --resume never resends it
        await record(
          {
            line: l.no,
            status: 'sent',
            hash,
            messageId: r.messageId,
            response: r.response,
            at: new Date().toISOString(),
          },
          true,
        );
        summary.sent++;
        opts.onResult?.({
          line: l.no,
          status: 'sent',
          to: r.envelope.to,
          messageId: r.messageId,
          response: r.response,
        });
      } catch (e) {
        summary.failed++;
        const err = errorInfo(e);
        await record({ line: l.no, status: 'failed', hash, error: err, at: new Date().toISOString() }, false);
        opts.onResult?.({
          line: l.no,
          status: 'failed',
          ...(built ? { to: built.envelope.to } : {}),
          error: err,
        });
        if (isFatal(e)) fatal = e;
      }
      opts.onProgress?.({
        done: summary.skipped + summary.sent + summary.failed,
        total: summary.total,
        failed: summary.failed,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 1) }, worker));
  summary.notAttempted = todo.length - next;
  summary.interrupted = stopped();
  summary.elapsedMs = Date.now() - started;
  if (fatal) (summary as BatchSummary & { fatal?: unknown }).fatal = fatal;
  return summary;
}

/** The error that sets the exit code of a batch that did not fully succeed (undefined: all sent). */
export function batchOutcome(
  s: BatchSummary & { fatal?: unknown },
  failures: Array<{ exitCode: number }>,
  signal: 'SIGINT' | 'SIGTERM' = 'SIGTERM',
): OauthmailError | undefined {
  const hint = `rerun with --resume to send only what is missing (results: ${s.resultsFile})`;
  if (s.fatal) {
    const f = s.fatal as OauthmailError;
    return Object.assign(f, { hint: `${f.hint ? f.hint + '; then ' : ''}${hint}` });
  }
  if (s.interrupted) {
    // the shell's codes for an interrupted command, 130 / 143, as fetch and the token refresh
    return new InterruptedError(signal, `stopped by ${signal}: ${s.notAttempted} line(s) not sent`, hint);
  }
  if (s.failed === 0) return undefined;
  const msg = `${s.failed} of ${s.total} message(s) failed`;
  if (failures.some((f) => f.exitCode === 5)) return new MailServerError(msg, { code: 'batch_failed', hint });
  if (failures.some((f) => f.exitCode === 6)) return new TransientError(msg, { code: 'batch_failed', hint });
  if (failures.every((f) => f.exitCode === 2))
    return new UsageError(msg, { code: 'batch_failed', hint: 'fix the lines named above, then ' + hint });
  return new MailServerError(msg, { code: 'batch_failed', hint });
}
