/** Run the real CLI (`node bin/oauthmail.js`) in a child process with its own config and data folders. */
import { spawn } from 'node:child_process';
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

export interface CliHome {
  dir: string;
  /** The CLI script run (default: this repo's bin/oauthmail.js). */
  bin: string;
  env: NodeJS.ProcessEnv;
  configFile: string;
  run(
    args: string[],
    opts?: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
  ): Promise<CliResult>;
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
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; bin?: string } = {},
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
