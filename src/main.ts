/**
 * main(): builds the dependencies, runs the command line, and turns every error into a message
 * and an exit code. This is the only place that decides exit codes.
 */
import { CommanderError } from 'commander';
import { Context } from './cli/context.js';
import { Io, type InStream, type OutStream } from './cli/io.js';
import { buildProgram } from './cli/program.js';
import { ExitCode, isOauthmailError } from './errors/index.js';
import { redact } from './util/redact.js';

export interface MainDeps {
  stdin?: InStream;
  stdout?: OutStream;
  stderr?: OutStream;
  env?: NodeJS.ProcessEnv;
}

export async function main(argv: string[], deps: MainDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  const io = new Io({
    stdin: deps.stdin ?? process.stdin,
    stdout: deps.stdout ?? process.stdout,
    stderr: deps.stderr ?? process.stderr,
    env,
    verbose: argv.includes('--verbose') || argv.includes('-v'),
  });
  const ctx = new Context(io, env);
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.OK;
  } catch (e) {
    return report(io, e);
  }
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
