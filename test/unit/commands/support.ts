/**
 * In-process command tests (as gh's `create_test.go` and npm's mock-npm): main() from src/ with
 * Io.Test()'s memory streams, a private config folder, and an interrupt no process signal reaches.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Context } from '../../../src/cli/context.js';
import { Io } from '../../../src/cli/io.js';
import { main } from '../../../src/main.js';
import { Interrupt } from '../../../src/util/interrupt.js';

export const CLIENT_ID = '11111111-2222-3333-4444-555555555555';

export interface Home {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** main(argv) in this process; stdin holds `input`; `tty` makes the streams terminals. */
  run(
    argv: string[],
    o?: { input?: string; tty?: boolean; env?: NodeJS.ProcessEnv },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** A Context on memory streams for calling a command's run function directly. */
  ctx(o?: { input?: string; tty?: boolean }): ReturnType<typeof Context.forTest>;
}

export function home(extra: NodeJS.ProcessEnv = {}): Home {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-unit-'));
  const env: NodeJS.ProcessEnv = {
    HOME: dir,
    PATH: process.env.PATH,
    OAUTHMAIL_CONFIG_DIR: path.join(dir, 'config'),
    OAUTHMAIL_DATA_DIR: path.join(dir, 'data'),
    NO_COLOR: '1',
    ...extra,
  };
  return {
    dir,
    env,
    async run(argv, o = {}) {
      const t = Io.Test({ env, ...(o.input !== undefined ? { stdin: o.input } : {}), tty: !!o.tty });
      const interrupt = new Interrupt({ exitNow: () => undefined, unclaimed: () => undefined });
      const code = await main(argv, {
        stdin: t.stdin,
        stdout: t.stdout,
        stderr: t.stderr,
        env: { ...env, ...o.env },
        interrupt,
      });
      return { code, stdout: t.out(), stderr: t.err() };
    },
    ctx(o = {}) {
      return Context.forTest(env, { ...(o.input !== undefined ? { stdin: o.input } : {}), tty: !!o.tty });
    },
  };
}

/** `profile add NAME` for Microsoft with file storage (no network). */
export async function addMicrosoft(h: Home, name: string, extra: string[] = []): Promise<void> {
  const flags: Record<string, string> = {
    provider: 'microsoft',
    'client-id': CLIENT_ID,
    tenant: 'contoso.test',
    user: 'alice@contoso.test',
    storage: 'file',
  };
  const args = Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v]);
  const r = await h.run(['profile', 'add', name, ...args, ...extra]);
  if (r.code !== 0) throw new Error(`profile add ${name}: exit ${r.code}\n${r.stderr}`);
}
