/**
 * `oauthmail send`: one message from flags, or a JSONL batch (--batch). Parses flags into an
 * options object, calls src/mail, renders the result. No logic of its own.
 */
import { Command, Option } from 'commander';
import { promises as fsp } from 'node:fs';
import { MailServerError, UsageError } from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';
import type { Priority } from '../../mail/message.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export interface SendFlags {
  to?: string[];
  cc?: string[];
  bcc?: string[];
  subject?: string;
  from?: string;
  replyTo?: string;
  header?: string[];
  body?: string;
  bodyFile?: string;
  html?: string;
  attach?: string[];
  signature?: boolean;
  priority?: Priority;
  dryRun?: boolean;
  allowPartial?: boolean;
  timeout?: string;
  batch?: string;
  resume?: boolean;
  connections?: string;
  ca?: string;
  insecureTls?: boolean;
  queue?: boolean;
}

async function readText(file: string, flag: string, ctx: Context): Promise<string> {
  if (file === '-') return ctx.io.readStdin();
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(
      `${flag} ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot read it'}`,
      {
        code: 'bad_input',
        cause: e,
      },
    );
  }
}

export interface SendOptions extends Omit<SendFlags, 'timeout' | 'connections'> {
  profile: string | undefined;
  json: boolean;
  /** --timeout in milliseconds (undefined: the profile's, else 30 s). */
  timeoutMs: number | undefined;
  /** --connections (with --batch). */
  connections: number | undefined;
}

/** Flags to options; throws UsageError before any file is read or any sign-in. */
export function sendOptions(flags: SendFlags, globals: GlobalOptions): SendOptions {
  if (flags.body !== undefined && flags.bodyFile !== undefined) {
    throw new UsageError('give --body or --body-file, not both', { code: 'bad_usage' });
  }
  if (flags.resume && !flags.batch)
    throw new UsageError('--resume needs --batch FILE', { code: 'bad_usage' });
  if (flags.batch && (flags.to?.length || flags.dryRun)) {
    throw new UsageError('--batch takes recipients from the file; do not combine it with --to or --dry-run', {
      code: 'bad_usage',
    });
  }
  let connections: number | undefined;
  if (flags.connections !== undefined) {
    connections = Number(flags.connections);
    if (!Number.isInteger(connections) || connections < 1 || connections > 50) {
      throw new UsageError('--connections must be a whole number from 1 to 50', { code: 'bad_usage' });
    }
  }

  let timeoutMs: number | undefined;
  if (flags.timeout !== undefined) {
    const n = Number(flags.timeout);
    if (!Number.isFinite(n) || n < 1 || n > 3600)
      throw new UsageError('--timeout must be a number of seconds from 1 to 3600', { code: 'bad_usage' });
    timeoutMs = n * 1000;
  }
  const { timeout: _t, connections: _c, ...rest } = flags;
  return { ...rest, profile: globals.profile, json: !!globals.json, timeoutMs, connections };
}

export async function runSend(o: SendOptions, ctx: Context): Promise<void> {
  const io = ctx.io;
  let text: string | undefined = o.body;
  if (o.bodyFile !== undefined) text = await readText(o.bodyFile, '--body-file', ctx);
  else if (text === undefined && !o.batch && !io.stdin.isTTY) {
    const s = await io.readStdin();
    if (s.length) text = s;
  }
  const html = o.html !== undefined ? await readText(o.html, '--html', ctx) : undefined;
  if (text === undefined && html === undefined && !o.batch && io.stdin.isTTY) {
    // on a terminal an empty message is almost always a mistake (a forgotten pipe or --body)
    throw new UsageError(
      'no message body: give --body TEXT, --body-file FILE or --html FILE, or pipe it in',
      {
        code: 'no_body',
        hint: "to send a message without a body on purpose: --body ''",
      },
    );
  }
  const msg = {
    ...(o.from !== undefined ? { from: o.from } : {}),
    cc: o.cc ?? [],
    bcc: o.bcc ?? [],
    ...(o.replyTo !== undefined ? { replyTo: o.replyTo } : {}),
    ...(o.subject !== undefined ? { subject: o.subject } : {}),
    ...(text !== undefined ? { text } : {}),
    ...(html !== undefined ? { html } : {}),
    headers: o.header ?? [],
    attachments: o.attach ?? [],
    ...(o.signature !== undefined ? { signature: o.signature } : {}),
    ...(o.priority ? { priority: o.priority } : {}),
  };
  const smtpOpts = {
    ...(o.timeoutMs !== undefined ? { connectionTimeoutMs: o.timeoutMs } : {}),
    ...(o.ca ? { caFile: o.ca } : {}),
    ...(o.insecureTls ? { insecureTls: true } : {}),
    warn: (m: string) => io.warn(m),
    ...(io.verbose ? { debug: (m: string) => io.debug(m) } : {}),
  };

  // the config is read once: the profile checks the message before any sign-in, then signs in
  const { resolveProfileName } = await import('../../config/store.js');
  const resolved = resolveProfileName(await ctx.config.load(), o.profile, ctx.env);
  const { buildMessage, renderMessage } = await import('../../mail/message.js');
  if (o.dryRun) {
    const { profile } = resolved;
    const built = await buildMessage({ ...msg, to: o.to ?? [] }, profile);
    const raw = (await renderMessage(built)).toString('utf8');
    if (o.json) io.outJson({ envelope: built.envelope, message: raw });
    else {
      io.err(`dry run: would send from ${built.envelope.from} to ${built.envelope.to.join(', ')}`);
      io.stdout.write(raw.endsWith('\n') ? raw : raw + '\n');
    }
    return;
  }

  if (o.batch) {
    const { runBatch, batchOutcome } = await import('../../mail/batch.js');
    // check the batch file (the profile was checked above) before any sign-in
    await fsp.access(o.batch).catch((e: unknown) => {
      throw new UsageError(`--batch ${o.batch}: no such file`, { code: 'bad_batch_file', cause: e });
    });
    const { profile, source } = await ctx.tokenSource(o.profile, resolved);
    const { createSender } = await import('../../mail/transport.js');
    const conns = o.connections ?? 5;
    const client = await createSender(profile, source, {
      ...smtpOpts,
      pool: true,
      maxConnections: conns,
    });
    // Ctrl-C / SIGTERM: finish the messages in flight, record them, exit 130 / 143 (as fetch)
    const stop = ctx.interrupt.claim(
      'stopping: finishing the messages in flight (interrupt again to quit at once)',
    );
    const failures: Array<{ exitCode: number }> = [];
    let lastDraw = 0;
    const tty = io.stderrIsTTY;
    try {
      const summary = await runBatch(client, profile, {
        file: o.batch,
        resume: !!o.resume,
        template: {
          ...msg,
          ...(msg.subject !== undefined ? { subject: msg.subject } : {}),
        },
        concurrency: conns * 2,
        signal: stop.signal,
        onResult: (r) => {
          if (r.error) {
            failures.push({ exitCode: r.error.exitCode });
            // the message of a bad line already starts with "line N:"
            const msg = r.error.message.startsWith(`line ${r.line}:`)
              ? r.error.message
              : `line ${r.line}: ${r.error.message}`;
            if (!tty) io.err(msg);
          }
          io.stdout.write(JSON.stringify(r) + '\n');
        },
        onProgress: ({ done, total, failed }) => {
          if (!tty) return;
          const now = Date.now();
          if (now - lastDraw < 100 && done !== total) return;
          lastDraw = now;
          const w = 30;
          const fillN = Math.round((done / Math.max(1, total)) * w);
          io.stderr.write(
            `\r[${'#'.repeat(fillN)}${'.'.repeat(w - fillN)}] ${done}/${total}${failed ? ` (${failed} failed)` : ''}`,
          );
        },
      });
      if (tty) io.stderr.write('\n');
      const rate = summary.elapsedMs > 0 ? ((summary.sent / summary.elapsedMs) * 1000).toFixed(1) : '-';
      io.err(
        `batch: ${summary.sent} sent, ${summary.failed} failed, ${summary.skipped} already sent, ` +
          `${summary.notAttempted} not attempted, of ${summary.total} (${(summary.elapsedMs / 1000).toFixed(1)} s, ${rate}/s)`,
      );
      const err = batchOutcome(summary, failures, stop.by);
      if (err) throw err;
    } finally {
      stop.release();
      client.close();
    }
    return;
  }

  // validate addresses against the profile before any sign-in or connection
  const built = await buildMessage({ ...msg, to: o.to ?? [] }, resolved.profile);
  let r: import('../../mail/transport.js').SendOutcome;
  let client: import('../../mail/transport.js').MailSender | undefined;
  try {
    const { profile, source } = await ctx.tokenSource(o.profile, resolved);
    const { createSender } = await import('../../mail/transport.js');
    client = await createSender(profile, source, {
      ...smtpOpts,
      onRetry: (line: string) => io.err(line),
    });
    r = await client.send(built);
  } catch (e) {
    client?.close();
    if (o.queue && (await queueBuilt(ctx, resolved.name, built, e))) return;
    throw e;
  }
  try {
    if (r.transport === 'graph') {
      // 202: Graph accepted the message for delivery; it has not been delivered yet
      if (o.json)
        io.outJson({
          transport: 'graph',
          status: r.status,
          accepted: true,
          delivered: false,
          messageId: r.messageId,
          recipients: r.accepted,
          envelope: r.envelope,
        });
      else {
        io.out(r.messageId);
        io.err(`accepted by Microsoft Graph for delivery (202): ${r.accepted.join(', ')}`);
      }
    } else if (o.json) {
      io.outJson({
        transport: 'smtp',
        messageId: r.messageId,
        response: r.response,
        accepted: r.accepted,
        rejected: r.rejected,
        envelope: r.envelope,
      });
    } else {
      io.out(r.messageId);
      io.err(`sent: ${r.response}`);
    }
    if (r.rejected.length) {
      // delivered to some, not to all: a script must not take that for success
      const what = `the server refused ${r.rejected.join(', ')}; delivered to ${r.accepted.join(', ') || 'nobody'}`;
      if (o.allowPartial) io.warn(what);
      else
        throw new MailServerError(what, {
          code: 'smtp_partial_delivery',
          hint: 'the message went to the accepted recipients only: do not resend it to them; pass --allow-partial to accept this (exit 0)',
        });
    }
  } finally {
    client?.close();
  }
  const { flushAfterSend } = await import('./queue.js');
  await flushAfterSend(ctx);
}

export function registerSend(program: Command, ctx: Context, runF = runSend): void {
  program
    .command('send')
    .description(
      "send a message (or a JSONL batch) over SMTP, or Microsoft Graph (transport graph), with the profile's OAuth token",
    )
    .option('--to <address>', 'recipient (repeat, or comma-separate)', collect)
    .option('--cc <address>', 'copy recipient (repeatable)', collect)
    .option('--bcc <address>', 'blind copy recipient (repeatable; never in the header)', collect)
    .option('-s, --subject <text>', 'subject (UTF-8 is fine)')
    .option('--from <address>', "From: (default: the profile's from, then its user)")
    .option('--reply-to <address>', "Reply-To: (default: the profile's replyTo)")
    .option('--header <"Name: value">', 'extra header (repeatable)', collect)
    .option('--body <text>', 'plain-text body')
    .option(
      '--body-file <file>',
      'plain-text body from a file (- for stdin); default: stdin when it is not a terminal',
    )
    .option('--html <file>', 'HTML body from a file (sent with the text as multipart/alternative)')
    .option('-a, --attach <file>', 'attach a file (repeatable)', collect)
    .option('--signature', "append the profile's signature (default when it has one)")
    .option('--no-signature', "do not append the profile's signature")
    .addOption(new Option('--priority <level>', 'message priority').choices(['high', 'normal', 'low']))
    .option('--dry-run', 'print the MIME message on stdout and send nothing')
    .option(
      '--timeout <seconds>',
      "give up on an attempt when the server is silent this long (default: the profile's timeout, else 30)",
    )
    .option(
      '--allow-partial',
      'exit 0 when the server accepted some recipients and refused others (default: exit 5)',
    )
    .option('--batch <file.jsonl>', 'send one message per JSON line over one pooled connection')
    .option('--resume', 'with --batch: skip lines already sent (recorded in FILE.results.jsonl)')
    .option('--connections <n>', 'with --batch: parallel SMTP connections (default 5)')
    .option('--ca <file>', "trust this CA (PEM) for the SMTP server's certificate")
    .option('--insecure-tls', "do not verify the server's certificate (warns; for debugging only)")
    .option(
      '--queue',
      'when it cannot be sent now (temporary failure, sign-in needed), keep it in the local queue and exit 0',
    )
    .addHelpText(
      'after',
      `
Examples:
  $ oauthmail send --to bob@example.com -s "Backup done" --body "All good"
  $ df -h | oauthmail send -p work --to ops@example.com -s "Disk report"
  $ oauthmail send --to a@x --html report.html --attach report.pdf --attach data.csv
  $ oauthmail send --batch mails.jsonl -s "Hello {{name}}" --body-file letter.txt
  $ oauthmail send --batch mails.jsonl --resume      # after a crash: sends only what is missing

Prints the Message-ID on stdout (--json: message ID, server reply, accepted and rejected).
With transport graph, --json says {"transport":"graph","status":202,"accepted":true,"delivered":false,...}:
Graph's 202 means accepted for delivery, not delivered (a failure comes back as a bounce).
Batch lines: {"to": "...", "cc": [...], "subject": "...", "text": "...", "html": "...",
"attachments": ["file"], "headers": {"X-K": "v"}, ...fields for {{placeholders}}}.`,
    )
    .action((flags: SendFlags, cmd: Command) =>
      runF(sendOptions(flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

/** send --queue: keep the rendered message (its Message-ID on stdout) when the failure is worth waiting out. */
async function queueBuilt(
  ctx: Context,
  name: string,
  built: import('../../mail/message.js').BuiltMessage,
  error: unknown,
): Promise<boolean> {
  const { renderMessage } = await import('../../mail/message.js');
  const { queueAfterFailure } = await import('./queue.js');
  const raw = await renderMessage(built);
  if (!(await queueAfterFailure(ctx, { profile: name, envelope: built.envelope, raw }, error))) return false;
  const messageId =
    /^Message-ID:[ \t]*(<[^>\r\n]+>)/im.exec(raw.subarray(0, 65536).toString('utf8'))?.[1] ?? '';
  if (ctx.io.json) ctx.io.outJson({ queued: true, messageId, envelope: built.envelope });
  else ctx.io.out(messageId);
  return true;
}
