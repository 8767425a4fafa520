/**
 * Run the CLI with its own config and data folders: in this process (main() of the built dist/,
 * through the same entry as bin/oauthmail.js: the fast path, then the full CLI) with memory
 * streams, the call's environment and `input` as stdin; or, with `spawn: true`, as a real
 * `node bin/oauthmail.js` child (for start-up, signals, kills, crashes and the child's own
 * environment). A call whose environment differs from this process's in a variable that Node,
 * OpenSSL or libsecret read from the real process (HOME, DBUS_SESSION_BUS_ADDRESS, TZ,
 * NODE_*...) spawns too, as does a call of another script (`bin`). OAUTHMAIL_TEST_SPAWN=1 spawns
 * every call (to compare, or to rule the in-process run out).
 */
import { spawn } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'oauthmail.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** A real child process (signals, kills, start-up, the child's environment). */
  spawn?: boolean;
}

export interface CliHome {
  dir: string;
  /** The CLI script run (default: this repo's bin/oauthmail.js). */
  bin: string;
  env: NodeJS.ProcessEnv;
  configFile: string;
  run(args: string[], opts?: RunOptions): Promise<CliResult>;
}

/** A fresh HOME-like sandbox: config and data folders of its own, no keychain unless asked. */
export function cliHome(extraEnv: NodeJS.ProcessEnv = {}, opts: { bin?: string } = {}): CliHome {
  const bin = opts.bin ?? BIN;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-test-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OAUTHMAIL_CONFIG_DIR: path.join(dir, 'config'),
    OAUTHMAIL_DATA_DIR: path.join(dir, 'data'),
    OAUTHMAIL_PROFILE: '',
    OAUTHMAIL_CLIENT_SECRET: '',
    OAUTHMAIL_PASSPHRASE: '',
    NO_COLOR: '1',
    ...extraEnv,
  };
  return {
    dir,
    bin,
    env,
    configFile: path.join(dir, 'config', 'config.json'),
    run: (args, o = {}) => runCli(args, { ...o, env: { ...env, ...o.env }, bin }),
  };
}

export function runCli(
  args: string[],
  opts: RunOptions & { bin?: string } = {},
): Promise<CliResult> {
  const env = opts.env ?? process.env;
  if (
    opts.spawn ||
    process.env.OAUTHMAIL_TEST_SPAWN === '1' ||
    (opts.bin !== undefined && opts.bin !== BIN) ||
    needsOwnProcess(env)
  )
    return spawnCli(args, opts);
  return runInProcess(args, env, opts);
}

/** Variables the code reads only through its Context (ctx.env), never from the real process. */
const CONTEXT_ONLY =
  /^(OAUTHMAIL_(?!DEBUG_RSS$).*|NO_COLOR|CI|TERM|BROWSER|DISPLAY|WAYLAND_DISPLAY|SSH_CONNECTION|SSH_TTY|XDG_CONFIG_HOME|XDG_DATA_HOME|CREDENTIALS_DIRECTORY|PATH)$/;

/** Whether `env` differs from this process's in a variable something reads from the real process. */
export function needsOwnProcess(env: NodeJS.ProcessEnv): boolean {
  for (const k of new Set([...Object.keys(env), ...Object.keys(process.env)])) {
    if (CONTEXT_ONLY.test(k)) continue;
    if ((env[k] ?? '') !== (process.env[k] ?? '')) return true;
  }
  return false;
}

type Entry = typeof import('../../src/entry.js');
let entry: Promise<Entry> | undefined;

type InterruptModule = typeof import('../../src/util/interrupt.js');
let interruptModule: Promise<InterruptModule> | undefined;

/** dist/entry.js: the same compiled code the child runs (loaded once per test file). */
function loadEntry(): Promise<Entry> {
  entry ??= import(/* @vite-ignore */ pathToFileURL(path.join(ROOT, 'dist', 'entry.js')).href) as Promise<Entry>;
  return entry;
}

function loadInterrupt(): Promise<InterruptModule> {
  interruptModule ??= import(
    /* @vite-ignore */ pathToFileURL(path.join(ROOT, 'dist', 'util', 'interrupt.js')).href
  ) as Promise<InterruptModule>;
  return interruptModule;
}

function memory(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

async function runInProcess(args: string[], env: NodeJS.ProcessEnv, opts: RunOptions): Promise<CliResult> {
  const { run } = await loadEntry();
  const { Interrupt } = await loadInterrupt();
  const stdout = memory();
  const stderr = memory();
  const stdin = Readable.from(opts.input ? [Buffer.from(opts.input)] : []);
  // no process signal reaches an in-process run (tests that signal spawn a child)
  const interrupt = new Interrupt({ exitNow: () => undefined, unclaimed: () => undefined });
  const ms = opts.timeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(`oauthmail ${args.join(' ')} did not finish in ${ms} ms\nstderr: ${stderr.text()}`),
        ),
      ms,
    );
  });
  try {
    const code = await Promise.race([
      run(args, { stdin, stdout: stdout.stream, stderr: stderr.stream, env: { ...env }, interrupt }),
      timeout,
    ]);
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  } finally {
    clearTimeout(timer);
  }
}

/** `node bin/oauthmail.js ARGS` in a child process. */
export function spawnCli(
  args: string[],
  opts: RunOptions & { bin?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [opts.bin ?? BIN, ...args], {
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `oauthmail ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 30_000} ms\nstderr: ${stderr}`,
        ),
      );
    }, opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Start the CLI in the background: `matched` resolves when stderr matches `waitFor`, `done` when
 * it exits (after `onExit`, e.g. a transcript), and it is killed after `killAfterMs`. Its stdin is
 * closed at once unless `keepStdinOpen` (then the caller writes to `child.stdin`).
 */
export function backgroundCli(
  h: CliHome,
  args: string[],
  waitFor: RegExp,
  opts: { killAfterMs: number; onExit?: (r: CliResult) => void; keepStdinOpen?: boolean },
) {
  const child = spawn(process.execPath, [h.bin ?? BIN, ...args], {
    env: h.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (!opts.keepStdinOpen) child.stdin.end();
  let stdout = '';
  let stderr = '';
  let onMatch: (m: RegExpExecArray) => void;
  const matched = new Promise<RegExpExecArray>((resolve) => (onMatch = resolve));
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    const m = waitFor.exec(stderr);
    if (m) onMatch(m);
  });
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code) => {
      const r = { code, stdout, stderr };
      opts.onExit?.(r);
      resolve(r);
    }),
  );
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
  void done.finally(() => clearTimeout(timer));
  return { child, matched, done };
}
