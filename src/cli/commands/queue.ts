/**
 * `oauthmail queue list|show|run|drop`: the local queue of messages `sendmail` (and
 * `send --queue`) could not hand to the mail server (src/mail/queue/). Also the two hooks the
 * sending commands use: keep a message that failed for a reason worth waiting out, and flush the
 * queue after a successful send.
 */
import type { Command } from 'commander';
import {
  AuthError,
  ConfigError,
  ExitCode,
  MailServerError,
  TransientError,
  UsageError,
} from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';
import type { QueueMeta, Spool } from '../../mail/queue/spool.js';
import type { RunEvent, RunReport } from '../../mail/queue/runner.js';

export async function spoolFor(ctx: Context): Promise<Spool> {
  const { Spool } = await import('../../mail/queue/spool.js');
  return new Spool(ctx.paths.dataDir);
}

/** "5d", "12h", "30m", "90s", "0": a duration in milliseconds. */
export function parseDuration(v: string, flag: string): number {
  const m = /^(\d{1,9})\s*(s|m|h|d)?$/.exec(v.trim());
  if (!m) {
    throw new UsageError(`${flag} ${JSON.stringify(v)} is not a duration like 5d, 12h, 30m or 90s`, {
      code: 'bad_value',
    });
  }
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit * 1000;
}

export function maxAgeFrom(ctx: Context, flag?: string): number | undefined {
  const v = flag ?? ctx.env.OAUTHMAIL_QUEUE_MAX_AGE;
  return v ? parseDuration(v, flag ? '--max-age' : 'OAUTHMAIL_QUEUE_MAX_AGE') : undefined;
}

/**
 * After a send failed: queue the message when the failure is worth waiting out, print the one
 * line that says so, and return true; false when the caller should report the failure itself.
 */
export async function queueAfterFailure(
  ctx: Context,
  input: { profile: string; envelope: { from: string; to: string[] }; raw: string | Buffer },
  error: unknown,
): Promise<boolean> {
  const { queueDecision, queuedLine, errorLine } = await import('../../mail/queue/policy.js');
  const d = queueDecision(error);
  if (!d.queue) return false;
  let meta: QueueMeta;
  try {
    meta = await (await spoolFor(ctx)).add({ ...input, reason: d.why, lastError: errorLine(error) });
  } catch (e) {
    // could not keep it: the caller reports the send failure (and its exit code) as before
    ctx.io.warn(`could not queue the message: ${(e as Error).message}`);
    return false;
  }
  ctx.io.err(queuedLine(meta.id, d.why, error));
  return true;
}

function smtpDeliveryFor(ctx: Context, singleAttempt: boolean) {
  return import('../../mail/queue/deliver.js').then(({ smtpDelivery }) =>
    smtpDelivery((name) => ctx.tokenSource(name), {
      singleAttempt,
      warn: (m: string) => ctx.io.warn(m),
      ...(ctx.io.verbose ? { debug: (m: string) => ctx.io.debug(m) } : {}),
    }),
  );
}

async function run(
  ctx: Context,
  opts: { singleAttempt: boolean; force?: boolean; maxAgeMs?: number; profile?: string; ids?: string[] },
  onEvent?: (ev: RunEvent) => void,
): Promise<RunReport> {
  const { runQueue } = await import('../../mail/queue/runner.js');
  const spool = await spoolFor(ctx);
  const delivery = await smtpDeliveryFor(ctx, opts.singleAttempt);
  try {
    return await runQueue({
      spool,
      locksDir: ctx.paths.locksDir,
      deliver: (e) => delivery.deliver(e),
      policyFor: (p) => delivery.policyFor(p),
      ...(opts.force ? { force: true } : {}),
      ...(opts.maxAgeMs !== undefined ? { maxAgeMs: opts.maxAgeMs } : {}),
      ...(opts.profile !== undefined ? { profile: opts.profile } : {}),
      ...(opts.ids ? { ids: opts.ids } : {}),
      ...(onEvent ? { onEvent } : {}),
    });
  } finally {
    delivery.close();
  }
}

/**
 * After a successful send: deliver what waits (one attempt each, no waits), quietly. A failure
 * here never fails the send that triggered it; a busy queue (another runner) is left alone.
 */
export async function flushAfterSend(ctx: Context): Promise<void> {
  try {
    const spool = await spoolFor(ctx);
    if ((await spool.ids()).length === 0) return;
    const r = await run(ctx, { singleAttempt: true, maxAgeMs: maxAgeFrom(ctx) }, (ev) =>
      ctx.io.debug(describeEvent(ev)),
    );
    if (r.delivered) ctx.io.debug(`queue: delivered ${r.delivered} waiting message(s)`);
  } catch (e) {
    ctx.io.debug(`queue: flush failed: ${(e as Error).message}`);
  }
}

/** `refresh --all`: deliver the queue too (one attempt each), and say what happened. */
export async function flushAfterRefresh(ctx: Context): Promise<RunReport | undefined> {
  try {
    const spool = await spoolFor(ctx);
    if ((await spool.ids()).length === 0) return undefined;
    return await run(ctx, { singleAttempt: true, maxAgeMs: maxAgeFrom(ctx) });
  } catch (e) {
    ctx.io.warn(`queue: could not deliver waiting messages: ${(e as Error).message}`);
    return undefined;
  }
}

function describeEvent(ev: RunEvent): string {
  if (ev.kind === 'delivered') return `delivered ${ev.id} (${ev.profile}): ${ev.response}`;
  if (ev.kind === 'deferred')
    return `deferred ${ev.id} (${ev.profile}): ${ev.error}; next attempt after ${ev.nextAttemptAt}`;
  return `dead ${ev.id} (${ev.profile}): ${ev.reason}`;
}

function ageText(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s >= 2 * 86400) return `${Math.floor(s / 86400)}d`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h`;
  if (s >= 60) return `${Math.floor(s / 60)}m`;
  return `${s}s`;
}

export interface QueueListOptions {
  dead: boolean;
  json: boolean;
}
export interface QueueShowOptions extends QueueListOptions {
  id: string;
}
export interface QueueRunOptions {
  profile: string | undefined;
  force: boolean;
  quiet: boolean;
  /** --max-age (undefined: OAUTHMAIL_QUEUE_MAX_AGE, else the default). */
  maxAgeMs: number | undefined;
  json: boolean;
}
export interface QueueDropOptions {
  ids: string[];
  dead: boolean;
}

export const queueListOptions = (flags: { dead?: boolean }, g: GlobalOptions): QueueListOptions => ({
  dead: !!flags.dead,
  json: !!g.json,
});

export const queueShowOptions = (
  id: string,
  flags: { dead?: boolean },
  g: GlobalOptions,
): QueueShowOptions => ({
  id,
  ...queueListOptions(flags, g),
});

export function queueRunOptions(
  flags: { force?: boolean; maxAge?: string; quiet?: boolean },
  g: GlobalOptions,
): QueueRunOptions {
  return {
    profile: g.profile,
    force: !!flags.force,
    quiet: !!flags.quiet,
    maxAgeMs: flags.maxAge !== undefined ? parseDuration(flags.maxAge, '--max-age') : undefined,
    json: !!g.json,
  };
}

export const queueDropOptions = (ids: string[], flags: { dead?: boolean }): QueueDropOptions => ({
  ids,
  dead: !!flags.dead,
});

export async function runQueueList(o: QueueListOptions, ctx: Context): Promise<void> {
  const spool = await spoolFor(ctx);
  const items = await spool.list(!!o.dead);
  if (o.json) {
    ctx.io.outJson(items);
    return;
  }
  if (!items.length) {
    ctx.io.err(o.dead ? 'No dead letters.' : 'The queue is empty.');
    return;
  }
  for (const m of items) {
    const tail = o.dead ? (m.deadReason ?? '') : (m.lastError ?? m.reason);
    ctx.io.out(
      `${m.id}  ${ageText(m.queuedAt).padStart(4)}  ${m.profile}  ${m.envelope.to.join(',')}  tries ${m.attempts}  ${tail}`,
    );
  }
}

export async function runQueueShow(o: QueueShowOptions, ctx: Context): Promise<void> {
  const spool = await spoolFor(ctx);
  const { isQueueId } = await import('../../mail/queue/spool.js');
  const e = isQueueId(o.id) ? await spool.read(o.id, !!o.dead).catch(() => undefined) : undefined;
  if (!e) {
    throw new UsageError(`no ${o.dead ? 'dead letter' : 'queued message'} ${JSON.stringify(o.id)}`, {
      code: 'queue_not_found',
      hint: `list them: oauthmail queue list${o.dead ? ' --dead' : ''}`,
    });
  }
  if (o.json) {
    ctx.io.outJson({ ...e.meta, message: e.raw.toString('utf8') });
    return;
  }
  ctx.io.err(JSON.stringify(e.meta, null, 2));
  ctx.io.stdout.write(e.raw);
}

export async function runQueueRun(o: QueueRunOptions, ctx: Context): Promise<void> {
  const maxAgeMs = o.maxAgeMs ?? maxAgeFrom(ctx);
  const r = await run(
    ctx,
    {
      singleAttempt: false,
      ...(o.force ? { force: true } : {}),
      ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
      ...(o.profile ? { profile: o.profile } : {}),
    },
    o.json ? undefined : (ev) => (ev.kind !== 'delivered' || !o.quiet) && ctx.io.err(describeEvent(ev)),
  );
  if (o.json) ctx.io.outJson(r);
  else if (r.busy !== undefined) {
    ctx.io.err(`another queue run (pid ${r.busy}) is delivering the queue; nothing to do`);
  } else if (!o.quiet || r.deferred || r.dead) {
    ctx.io.err(
      `queue: ${r.delivered} delivered, ${r.deferred} deferred, ${r.dead} dead, ${r.skipped} not due yet`,
    );
  }
  if (r.dead) {
    throw new MailServerError(`${r.dead} queued message(s) could not be delivered and became dead letters`, {
      code: 'queue_dead',
      hint: 'see them: oauthmail queue list --dead',
    });
  }
  if (r.deferred) {
    // a failure a person must fix (sign-in, keychain) gets its own exit code, so that a
    // systemd OnFailure= or a cron alert fires; a temporary one is 6 (the next run retries)
    const deferred = r.events.filter((e) => e.kind === 'deferred');
    const auth = deferred.find((e) => e.exitCode === ExitCode.AUTH);
    const config = deferred.find((e) => e.exitCode === ExitCode.CONFIG);
    const msg = `${r.deferred} queued message(s) could not be delivered yet; they stay queued`;
    if (auth) {
      throw new AuthError(`${msg}: profile ${auth.profile} needs a sign-in`, {
        code: 'queue_sign_in_needed',
        hint: auth.hint ?? `run: oauthmail login ${auth.profile}`,
      });
    }
    if (config) {
      throw new ConfigError(`${msg}: ${config.error}`, {
        code: 'queue_config',
        ...(config.hint ? { hint: config.hint } : {}),
      });
    }
    throw new TransientError(msg, {
      code: 'queue_deferred',
      hint: 'they are tried again on the next queue run',
    });
  }
}

export async function runQueueDrop(o: QueueDropOptions, ctx: Context): Promise<void> {
  const spool = await spoolFor(ctx);
  const { tryQueueLock } = await import('../../mail/queue/lock.js');
  const { isQueueId } = await import('../../mail/queue/spool.js');
  // never while a runner may be sending the same file
  const lock = await tryQueueLock(ctx.paths.locksDir);
  if (!lock) {
    throw new TransientError('a queue run is delivering the queue right now', {
      code: 'queue_busy',
      hint: 'try again when it has finished',
    });
  }
  const missing: string[] = [];
  try {
    for (const id of o.ids) {
      if (isQueueId(id) && (await spool.remove(id, !!o.dead))) ctx.io.err(`dropped ${id}`);
      else missing.push(id);
    }
  } finally {
    await lock.release();
  }
  if (missing.length) {
    throw new UsageError(`no such ${o.dead ? 'dead letter' : 'queued message'}: ${missing.join(', ')}`, {
      code: 'queue_not_found',
      hint: `list them: oauthmail queue list${o.dead ? ' --dead' : ''}`,
    });
  }
}

export function registerQueue(program: Command, ctx: Context): void {
  const q = program
    .command('queue')
    .description('the local queue of messages sendmail could not send yet: list, show, run, drop')
    .addHelpText(
      'after',
      `
The queue lives in <data folder>/queue (one file per message, dead letters in queue/dead).
Examples:
  $ oauthmail queue list
  $ oauthmail queue run                       # deliver what waits (cron: */5 * * * *)
  $ oauthmail queue show ID > message.eml
  $ oauthmail queue drop ID`,
    );

  q.command('list')
    .description('waiting messages, oldest first (--dead: the dead letters)')
    .option('--dead', 'list the dead letters instead')
    .action((flags: { dead?: boolean }, cmd: Command) =>
      runQueueList(queueListOptions(flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );

  q.command('show <id>')
    .description('print a queued message (stdout) and its envelope and state (stderr; --json: both)')
    .option('--dead', 'a dead letter')
    .action((id: string, flags: { dead?: boolean }, cmd: Command) =>
      runQueueShow(queueShowOptions(id, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );

  q.command('run')
    .description('deliver the queue now, oldest first (one runner at a time)')
    .option('--force', 'try every message now, even those waiting for their next attempt')
    .option(
      '--max-age <duration>',
      'older messages become dead letters (default 5d; OAUTHMAIL_QUEUE_MAX_AGE)',
    )
    .option('-q, --quiet', 'report only failures')
    .action((flags: { force?: boolean; maxAge?: string; quiet?: boolean }, cmd: Command) =>
      runQueueRun(queueRunOptions(flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );

  q.command('drop <id...>')
    .description('remove queued messages (or dead letters with --dead) without sending them')
    .option('--dead', 'dead letters')
    .action((ids: string[], flags: { dead?: boolean }) => runQueueDrop(queueDropOptions(ids, flags), ctx));
}

export type { QueueMeta };
