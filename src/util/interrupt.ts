/**
 * The one place that handles SIGINT and SIGTERM, and decides their exit codes (130, 143: what a
 * shell reports for a process those signals ended).
 *
 * main() installs one Interrupt per run (`Interrupt.forProcess()` in the real CLI; tests build
 * one with no process signals and call `deliver`). A signal is then, in this order:
 * - a second one while a command is stopping: quit at once (`exitNow`, 130/143);
 * - claimed by a command that stops in an orderly way (fetch, send --batch, watch, exec): its
 *   AbortSignal is aborted and the command finishes what it must (see `claim`);
 * - inside a critical section (util/critical.ts: the token write after a refresh): held until the
 *   section ends, then InterruptedError (130/143) unwinds to main();
 * - otherwise: the default, the process ends by that signal.
 */
import { InterruptedError } from '../errors/index.js';

export type StopSignal = 'SIGINT' | 'SIGTERM';
/** SIGHUP is handled only to be forwarded (exec); otherwise it keeps its default action. */
export type HandledSignal = StopSignal | 'SIGHUP';
export const HANDLED_SIGNALS: readonly HandledSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The exit code a shell reports for a process ended by this signal. */
export function exitCodeFor(sig: StopSignal): 130 | 143 {
  return sig === 'SIGINT' ? 130 : 143;
}

export interface InterruptHooks {
  /** Quit at once with this code (the real CLI: process.exit). */
  exitNow(code: number): void;
  /** Nobody claimed the signal and no critical section runs: the default action (end by it). */
  unclaimed(sig: HandledSignal): void;
}

/** What a command holds while it may be stopped in an orderly way. */
export interface Claim {
  /** Aborted on the first SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  /** The signal that stopped the command, if one did. */
  readonly by: StopSignal | undefined;
  /** The signal goes back to its default action. */
  release(): void;
}

interface ClaimEntry {
  controller: AbortController;
  message: string;
  by?: StopSignal;
  forward?: (sig: HandledSignal) => void;
}

export class Interrupt {
  private claims: ClaimEntry[] = [];
  private criticalDepth = 0;
  private pending: StopSignal | undefined;
  private stoppingBy: StopSignal | undefined;
  private readonly controller = new AbortController();
  private uninstall: (() => void) | undefined;

  constructor(
    private readonly hooks: InterruptHooks,
    private readonly say: (line: string) => void = () => undefined,
  ) {}

  /** Handlers on this process's SIGINT/SIGTERM until `dispose()`. */
  static forProcess(say?: (line: string) => void): Interrupt {
    const listeners = new Map<HandledSignal, () => void>();
    const it: Interrupt = new Interrupt(
      {
        exitNow: (code) => process.exit(code),
        unclaimed: (sig) => {
          // the default action, exactly: without our handlers, the signal ends the process
          it.dispose();
          process.kill(process.pid, sig);
        },
      },
      say,
    );
    for (const s of HANDLED_SIGNALS) {
      // a handler of another module's own (not yet on claim()) keeps the signal, as before
      const l = () => {
        if (foreignListeners(s) === 0) it.deliver(s);
      };
      listeners.set(s, l);
      process.on(s, l);
    }
    it.uninstall = () => {
      for (const [s, l] of listeners) process.off(s, l);
    };
    return it;
  }

  /** Aborted when a stop was asked for (the first signal a command claimed). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** A signal arrived (the process's, or a test's). */
  deliver(sig: HandledSignal): void {
    const top = this.claims[this.claims.length - 1];
    if (top?.forward) {
      top.forward(sig);
      return;
    }
    if (sig === 'SIGHUP') {
      this.hooks.unclaimed(sig);
      return;
    }
    if (this.stoppingBy) {
      this.hooks.exitNow(exitCodeFor(sig));
      return;
    }
    const claim = this.claims[this.claims.length - 1];
    if (claim) {
      this.stoppingBy = sig;
      for (const c of this.claims) c.by = sig;
      if (claim.message) this.say(claim.message);
      for (const c of this.claims) c.controller.abort(sig);
      this.controller.abort(sig);
      return;
    }
    if (this.criticalDepth > 0) {
      this.pending ??= sig;
      return;
    }
    this.hooks.unclaimed(sig);
  }

  /**
   * A command that stops in an orderly way: until `release()`, the first SIGINT/SIGTERM prints
   * `message` and aborts the claim's signal (a second one quits at once). With `forward`, every
   * signal (SIGHUP too) goes to it instead, and nothing else happens (exec hands them to its child).
   */
  claim(message: string, o: { forward?: (sig: HandledSignal) => void } = {}): Claim {
    const entry: ClaimEntry = { controller: new AbortController(), message, ...o };
    if (this.stoppingBy) {
      entry.by = this.stoppingBy;
      entry.controller.abort(this.stoppingBy);
    }
    this.claims.push(entry);
    return {
      signal: entry.controller.signal,
      get by() {
        return entry.by;
      },
      release: () => {
        this.claims = this.claims.filter((c) => c !== entry);
      },
    };
  }

  /** Run fn with signals held; if one came meanwhile (and no command claimed it), throw after fn. */
  async critical<T>(fn: () => Promise<T>): Promise<T> {
    this.criticalDepth++;
    let result: T;
    try {
      result = await fn();
    } finally {
      if (--this.criticalDepth === 0 && this.pending) {
        const sig = this.pending;
        this.pending = undefined;
        // eslint-disable-next-line no-unsafe-finally -- the stop the user asked for wins over fn's outcome
        throw new InterruptedError(sig);
      }
    }
    return result;
  }

  /** Whether a signal waits for the current critical section to end. */
  get interruptPending(): boolean {
    return this.pending !== undefined;
  }

  /** Take the handlers off the process (end of main()). */
  dispose(): void {
    this.uninstall?.();
    this.uninstall = undefined;
  }
}

/**
 * Listeners on `sig` besides ours (one) and signal-exit's (proper-lockfile loads it to release
 * locks; it stands aside while any other listener is there, and ends the process by the signal
 * once it is alone: process.__signal_exit_emitter__.count is its own count of them).
 */
function foreignListeners(sig: HandledSignal): number {
  const signalExit =
    (process as { __signal_exit_emitter__?: { count?: number } }).__signal_exit_emitter__?.count ?? 0;
  return Math.max(0, process.listenerCount(sig) - 1 - signalExit);
}

let active: Interrupt | undefined;

/** main() makes `it` the run's interrupt (critical sections deep in auth find it here). */
export function setActiveInterrupt(it: Interrupt | undefined): void {
  active = it;
}

export function activeInterrupt(): Interrupt | undefined {
  return active;
}
