/**
 * main(): builds the dependencies (Context: io, env, clock, the run's interrupt), runs the
 * command line, and turns every error that reaches it into a message and an exit code. Exit
 * codes come from the error classes (src/errors/); the two that do not pass through here are a
 * second SIGINT/SIGTERM while a command stops (util/interrupt.ts quits at once with 130/143)
 * and a signal nobody claimed (the process ends by it, as by default).
 *
 * main() can run many times in one process (the in-process tests): state that lives in modules
 * (registered secrets, warnings shown once) is reset when no other run is in flight.
 */
import { CommanderError } from 'commander';
import { Context, type Clock } from './cli/context.js';
import { Io, type InStream, type OutStream } from './cli/io.js';
import { buildProgram } from './cli/program.js';
import { ExitCode, isOauthmailError } from './errors/index.js';
import { clearRegisteredSecrets, redact } from './util/redact.js';
import { activeInterrupt, Interrupt, setActiveInterrupt } from './util/interrupt.js';

export interface MainDeps {
  stdin?: InStream;
  stdout?: OutStream;
  stderr?: OutStream;
  env?: NodeJS.ProcessEnv;
  /** Default: this process's SIGINT/SIGTERM (Interrupt.forProcess) for the run. */
  interrupt?: Interrupt;
  clock?: Clock;
}

let inFlight = 0;
let runs = 0;

export async function main(argv: string[], deps: MainDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  const io = new Io({
    stdin: deps.stdin ?? process.stdin,
    stdout: deps.stdout ?? process.stdout,
    stderr: deps.stderr ?? process.stderr,
    env,
    verbose: argv.includes('--verbose') || argv.includes('-v'),
  });
  // a later run in the same process (tests) starts as a fresh process would
  if (inFlight++ === 0 && runs++ > 0) await resetModuleState();
  const interrupt = deps.interrupt ?? Interrupt.forProcess((l) => io.err(l));
  const previous = activeInterrupt();
  setActiveInterrupt(interrupt);
  const ctx = new Context(io, env, interrupt, deps.clock);
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.OK;
  } catch (e) {
    return report(io, e);
  } finally {
    inFlight--;
    setActiveInterrupt(previous);
    if (!deps.interrupt) interrupt.dispose();
  }
}

/** What a fresh process starts with: no registered secrets, no warning shown yet. */
async function resetModuleState(): Promise<void> {
  clearRegisteredSecrets();
  const { resetFallbackWarnings } = await import('./secrets/open.js');
  resetFallbackWarnings();
}

function report(io: Io, e: unknown): number {
  if (e instanceof CommanderError) {
    // help and --version end here too: they are not errors
    if (
      e.code === 'commander.helpDisplayed' ||
      e.code === 'commander.version' ||
      e.code === 'commander.help'
    ) {
      return ExitCode.OK;
    }
    // commander already printed its message
    if (e.code === 'commander.executeSubCommandAsync') return e.exitCode;
    return ExitCode.USAGE;
  }
  if (isOauthmailError(e)) {
    io.err(`oauthmail: ${e.message}`);
    if (e.hint) io.err(`hint: ${e.hint}`);
    if (io.verbose) {
      io.err(`code: ${e.code} (exit ${e.exitCode})`);
      if (e.cause) io.err(`cause: ${describe(e.cause)}`);
    }
    return e.exitCode;
  }
  const err = e as NodeJS.ErrnoException;
  if (
    err &&
    (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'ENOSPC' || err.code === 'EROFS')
  ) {
    io.err(
      `oauthmail: ${err.code === 'ENOSPC' ? 'disk full' : 'permission denied'}: ${err.path ?? err.message}`,
    );
    return ExitCode.ERROR;
  }
  io.err(`oauthmail: unexpected error: ${err?.message ?? String(e)}`);
  if (io.verbose && err?.stack) io.err(redact(err.stack));
  else io.err('hint: run again with --verbose for details, and report it if it persists');
  return ExitCode.ERROR;
}

function describe(cause: unknown): string {
  if (cause instanceof Error) return `${cause.name}: ${cause.message}`;
  try {
    return JSON.stringify(cause);
  } catch {
    return String(cause);
  }
}
