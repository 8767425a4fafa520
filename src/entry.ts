/**
 * What bin/oauthmail.js calls: the start-up fast path (src/cli/fast-path.ts) when it can answer,
 * otherwise the full CLI (src/main.ts), loaded only then.
 */
import { fastPath } from './cli/fast-path.js';
import type { MainDeps } from './main.js';

export async function run(argv: string[], deps: MainDeps = {}): Promise<number> {
  if (!deps.stdout) {
    // `oauthmail ... | head`: a reader that went away is not an error of ours (as with cat, git)
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  const full = {
    ...deps,
    stdin: deps.stdin ?? process.stdin,
    stdout: deps.stdout ?? process.stdout,
    stderr: deps.stderr ?? process.stderr,
    env: deps.env ?? process.env,
  };
  const fast = await fastPath(argv, full);
  if (fast !== undefined) return fast;
  const { main } = await import('./main.js');
  return main(argv, full);
}
