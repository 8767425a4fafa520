/**
 * `oauthmail exec [-p PROFILE] -- CMD [ARGS...]`: run a program with a fresh access token in its
 * environment (OAUTHMAIL_ACCESS_TOKEN, and OAUTHMAIL_USER for the mailbox), never in its argv:
 * argv is world-readable through /proc/<pid>/cmdline and `ps`, the environment is not (it is
 * readable only by the same user, /proc/<pid>/environ is mode 0400).
 *
 * The child gets the user's environment without oauthmail's secrets (OAUTHMAIL_PASSPHRASE,
 * OAUTHMAIL_CLIENT_SECRET: src/util/child-env.ts). It inherits stdin/stdout/stderr; oauthmail exits with the child's exit code (128+N when
 * it was killed by signal N, as shells report it), and forwards SIGINT/SIGTERM/SIGHUP to it.
 */
import type { Command } from 'commander';
import { constants } from 'node:os';
import { OauthmailError, UsageError, type ErrorCode } from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';

/** Carries the child's exit code through main() (the only place that maps errors to exit codes). */
class ChildExit extends OauthmailError {
  constructor(code: number) {
    super(`the command exited with code ${code}`, { code: 'child_exit' });
    Object.defineProperty(this, 'exitCode', { value: code });
  }
}

/** The command could not be started: 127 not found, 126 found but not runnable (as sh, env, xargs do). */
class NotRunnable extends OauthmailError {
  constructor(message: string, code: ErrorCode, exit: 126 | 127, hint: string) {
    super(message, { code, hint });
    Object.defineProperty(this, 'exitCode', { value: exit });
  }
}

export interface ExecOptions {
  profile: string | undefined;
  /** The program and its arguments (at least the program). */
  command: string[];
  minValiditySeconds: number;
}

export function execOptions(
  args: { command: string[] },
  flags: { minValidity: string },
  globals: GlobalOptions,
): ExecOptions {
  const min = Number(flags.minValidity);
  if (!Number.isInteger(min) || min < 0 || min > 86_400) {
    throw new UsageError('--min-validity must be a whole number of seconds from 0 to 86400', {
      code: 'bad_usage',
    });
  }
  if (!args.command.length) throw new UsageError('give a command to run after --', { code: 'bad_usage' });
  return { profile: globals.profile, command: args.command, minValiditySeconds: min };
}

export async function runExec(o: ExecOptions, ctx: Context): Promise<void> {
  const { resolveProvider } = await import('../../auth/index.js');
  const { name, profile, provider } = await resolveProvider(ctx, o.profile);
  const t = await provider.getToken({ minValiditySeconds: o.minValiditySeconds });
  // the user's environment without oauthmail's own secrets (passphrase, client secret)
  const { childEnv } = await import('../../util/child-env.js');
  const env = childEnv(ctx.env, { OAUTHMAIL_ACCESS_TOKEN: t.accessToken, OAUTHMAIL_PROFILE: name });
  const user = profile.user ?? t.account ?? undefined;
  if (user) env.OAUTHMAIL_USER = user;
  else delete env.OAUTHMAIL_USER;
  if (t.expiresOn) env.OAUTHMAIL_TOKEN_EXPIRES = t.expiresOn.toISOString();

  const { spawn } = await import('node:child_process');
  const [cmd, ...args] = o.command as [string, ...string[]];
  ctx.io.debug(`running ${cmd} for profile ${name}`);
  const code = await new Promise<number>((resolve, reject) => {
    // the process's own streams are handed over as they are (a terminal stays a terminal);
    // other streams (main() run in-process with memory streams) are piped
    const io = ctx.io;
    const own = [io.stdin === process.stdin, io.stdout === process.stdout, io.stderr === process.stderr];
    const child = spawn(cmd, args, { env, stdio: own.map((o) => (o ? 'inherit' : 'pipe')) });
    if (!own[0]) child.stdin?.on('error', () => undefined);
    if (!own[0] && child.stdin) io.stdin.pipe(child.stdin);
    if (!own[1]) child.stdout?.pipe(io.stdout, { end: false });
    if (!own[2]) child.stderr?.pipe(io.stderr, { end: false });
    // SIGINT, SIGTERM, SIGHUP go to the child; we end when it does, with its code
    const claim = ctx.interrupt.claim('', { forward: (s) => child.kill(s) });
    const cleanup = () => claim.release();
    child.on('error', (e: NodeJS.ErrnoException) => {
      cleanup();
      if (e.code === 'ENOENT') {
        reject(
          new NotRunnable(
            `command not found: ${cmd}`,
            'command_not_found',
            127,
            'check the name and your PATH',
          ),
        );
      } else if (e.code === 'EACCES' || e.code === 'EISDIR' || e.code === 'ENOEXEC') {
        reject(
          new NotRunnable(
            `cannot run ${cmd}: ${e.code === 'EISDIR' ? 'it is a folder' : 'permission denied'}`,
            'command_not_executable',
            126,
            'make it executable (chmod +x), or run it through its interpreter (sh FILE, python3 FILE)',
          ),
        );
      } else reject(e);
    });
    // 'close': after the child's output (when piped) has all been passed on
    child.on('close', (c, sig) => {
      cleanup();
      if (sig) resolve(128 + ((constants.signals as Record<string, number>)[sig] ?? 0));
      else resolve(c ?? 1);
    });
  });
  if (code !== 0) throw new ChildExit(code);
}

export function registerExec(program: Command, ctx: Context, runF = runExec): void {
  program
    .command('exec')
    .description('run a command with OAUTHMAIL_ACCESS_TOKEN and OAUTHMAIL_USER in its environment')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('--min-validity <seconds>', 'refresh first if the token expires sooner than this', '300')
    .addHelpText(
      'after',
      `
The token goes into the environment only, never into the command line: keep it out of the
child's own argv too (pass it on stdin or in a file, not as an argument).
Environment: OAUTHMAIL_ACCESS_TOKEN, OAUTHMAIL_USER (mailbox), OAUTHMAIL_PROFILE,
OAUTHMAIL_TOKEN_EXPIRES (ISO 8601); the rest of your environment, except oauthmail's secrets
(OAUTHMAIL_PASSPHRASE, OAUTHMAIL_CLIENT_SECRET). oauthmail exits with the command's exit code
(128+N when a signal N ended it), 127 when the command is not found, 126 when it cannot be run.
Examples:
  $ oauthmail exec -p work -- sh -c 'printf "Authorization: Bearer %s\\n" "$OAUTHMAIL_ACCESS_TOKEN" | curl -sH @- URL'
  $ oauthmail -p work exec -- python3 fetch.py`,
    )
    .action((command: string[], flags: { minValidity: string }, cmd: Command) =>
      runF(execOptions({ command }, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}
