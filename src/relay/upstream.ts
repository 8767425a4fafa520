/**
 * Handing a device's message on: to the profile's mail server (SMTP XOAUTH2, src/mail/smtp.ts, one
 * attempt while the device waits), else to the queue `sendmail` uses (src/mail/queue/: one file
 * per message, fsynced before we answer). The device gets 250 only after one of the two; a
 * permanent refusal upstream is its 5xx; a queue that cannot be written is its 451 (it keeps the
 * message and tries again). The relay delivers its queue itself, with the profile's retry policy
 * (the runner's backoff), every `everyMs` and soon after a message was queued.
 */
import { MailServerError } from '../errors/index.js';
import { smtpDelivery, type SmtpDelivery } from '../mail/queue/deliver.js';
import { errorLine, queueDecision } from '../mail/queue/policy.js';
import { runQueue, type RunEvent } from '../mail/queue/runner.js';
import { Spool } from '../mail/queue/spool.js';
import type { Profile } from '../config/schema.js';
import type { TokenSource } from '../mail/token-source.js';

export type Outcome =
  | { kind: 'sent'; response: string; rejected?: string[]; deadId?: string }
  | { kind: 'queued'; id: string; why: string; error: string }
  | { kind: 'refused'; code: number; message: string };

export interface UpstreamDeps {
  dataDir: string;
  locksDir: string;
  sourceFor: (profile: string) => Promise<{ profile: Profile; source: TokenSource }>;
  everyMs: number;
  onQueueEvent?: (ev: RunEvent) => void;
  debug?: (line: string) => void;
}

/** The 5xx for the device: the server's own code when it gave one, its first line as the text. */
function refusal(e: unknown): { code: number; message: string } {
  const server = e instanceof MailServerError ? Number(e.serverCode) : NaN;
  const code = server >= 500 && server < 600 ? server : 554;
  const line = errorLine(e).replace(/[\r\n]+/g, ' ');
  // the server's enhanced status code (RFC 3463) when its reply had one
  const enhanced = /\b5\.\d{1,3}\.\d{1,3}\b/.exec(line)?.[0] ?? '5.0.0';
  return { code, message: `${enhanced} upstream refused: ${line}` };
}

export class Upstream {
  readonly spool: Spool;
  private live: SmtpDelivery;
  private later: SmtpDelivery;
  private readonly opts: Parameters<typeof smtpDelivery>[1];
  /** Replaced by reset(), closed a while later (a send in flight keeps its client) or at stop. */
  private readonly retired = new Set<SmtpDelivery>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly deps: UpstreamDeps) {
    this.spool = new Spool(deps.dataDir);
    // one connection and AUTH per message, as sendmail and `queue run` do: a pooled transport was
    // about 3.5 times faster here, but in one test run it left every live send failing (and
    // queued) after a revoked sign-in and a new login, for a reason not found yet
    this.opts = {
      singleAttempt: true,
      ...(deps.debug ? { debug: deps.debug } : {}),
    };
    this.live = smtpDelivery(deps.sourceFor, this.opts);
    this.later = smtpDelivery(deps.sourceFor, this.opts);
  }

  /** After a reload: new connections with the profiles as they are now (server, sign-in). */
  reset(): void {
    const old = [this.live, this.later];
    this.live = smtpDelivery(this.deps.sourceFor, this.opts);
    this.later = smtpDelivery(this.deps.sourceFor, this.opts);
    // a send in flight keeps its client; the pools close once idle
    for (const d of old) this.retired.add(d);
    setTimeout(() => {
      for (const d of old) {
        d.close();
        this.retired.delete(d);
      }
    }, 30_000).unref();
  }

  async deliver(profile: string, envelope: { from: string; to: string[] }, raw: Buffer): Promise<Outcome> {
    try {
      const r = await this.live.deliver({
        meta: { version: 1, id: 'live', profile, envelope, queuedAt: '', reason: '', attempts: 0 },
        raw,
        file: '',
      });
      if (!r.rejected?.length) return { kind: 'sent', response: r.response };
      // taken for some recipients, refused for others: one DATA reply cannot say both, so the
      // device gets 250 and the refused recipients a dead letter (`queue list`, `status` exit 5)
      const deadId = await this.deadLetter(profile, { from: envelope.from, to: r.rejected }, raw, r.response);
      return { kind: 'sent', response: r.response, rejected: r.rejected, deadId };
    } catch (e) {
      const d = queueDecision(e);
      if (!d.queue) return { kind: 'refused', ...refusal(e) };
      // the device waits for this answer: 250 only once the file is on disk
      const meta = await this.spool.add({ profile, envelope, raw, reason: d.why, lastError: errorLine(e) });
      this.soon();
      return { kind: 'queued', id: meta.id, why: d.why, error: errorLine(e) };
    }
  }

  private async deadLetter(
    profile: string,
    envelope: { from: string; to: string[] },
    raw: Buffer,
    response: string,
  ): Promise<string> {
    const reason = `refused: the mail server refused ${envelope.to.join(', ')} (it took the message for the other recipients: ${response})`;
    const meta = await this.spool.add({ profile, envelope, raw, reason, lastError: reason });
    const entry = await this.spool.read(meta.id);
    if (entry) await this.spool.bury(entry, reason);
    return meta.id;
  }

  /** Try the queue every everyMs, and now. */
  start(): void {
    this.soon(0);
  }

  /** A run in a moment (a queued message's first retry is not in the same breath as its failure). */
  soon(ms = 1000): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.runOnce(), ms);
    this.timer.unref();
  }

  /** Run the queue now (also after SIGHUP); resolves when this run is over. */
  async runOnce(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.running = (async () => {
      try {
        await runQueue({
          spool: this.spool,
          locksDir: this.deps.locksDir,
          deliver: (entry) => this.later.deliver(entry),
          policyFor: (p) => this.later.policyFor(p),
          ...(this.deps.onQueueEvent ? { onEvent: this.deps.onQueueEvent } : {}),
        });
      } catch (e) {
        this.deps.debug?.(`queue run failed: ${(e as Error).message}`);
      }
    })();
    await this.running;
    this.running = undefined;
    if (this.stopped) return;
    const next = this.again ? 1000 : this.deps.everyMs;
    this.again = false;
    this.timer = setTimeout(() => void this.runOnce(), await this.nextDelay(next));
    this.timer.unref();
  }

  /** The earlier of `ms` and the next message's backoff time (so a 50 ms backoff is not 30 s). */
  private async nextDelay(ms: number): Promise<number> {
    const metas = await this.spool.list().catch(() => []);
    let best = ms;
    for (const m of metas) {
      const at = m.nextAttemptAt ? Date.parse(m.nextAttemptAt) - Date.now() : 0;
      best = Math.min(best, Math.max(200, at + 20));
    }
    return best;
  }

  async waiting(): Promise<number> {
    return (await this.spool.ids()).length;
  }

  /** Stop the loop (waiting for a run in progress) and close the upstream connections. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    for (const d of [this.live, this.later, ...this.retired]) d.close();
    this.retired.clear();
  }
}
