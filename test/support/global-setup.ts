// Build dist/ once before the tests, so that tests that run the real CLI (`node bin/oauthmail.js`)
// run the code under test and not a stale build. A failed build fails the run in CI; on a
// developer machine it is printed and the run goes on (tests of the CLI will then fail loudly).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  // `npm run test:unit`: unit tests import src/ directly and never run the built CLI
  if (process.env.OAUTHMAIL_TEST_NO_BUILD === '1') return;
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const r = spawnSync(
    process.execPath,
    [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    { cwd: root, encoding: 'utf8' },
  );
  if (r.status !== 0) {
    const msg = `build failed (tsc -p tsconfig.build.json):\n${r.stdout}${r.stderr}`;
    if (process.env.CI) throw new Error(msg);
    process.stderr.write(msg + '\n');
  }
}
