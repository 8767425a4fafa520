/**
 * ensureDir, the folder a user names with --out/--attachments: made 0700 with its parents, an
 * existing one left as it is, a file in the way and an impossible place (under /proc, where Node's
 * recursive mkdir loops for ever) refused with exit 2 at once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDir } from '../../src/util/fs.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-ensure-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('ensureDir', () => {
  it('makes missing parents 0700 and leaves an existing folder alone', async () => {
    await ensureDir(path.join(dir, 'a', 'b', 'c'));
    expect(statSync(path.join(dir, 'a', 'b', 'c')).mode & 0o777).toBe(0o700);
    chmodSync(path.join(dir, 'a'), 0o755);
    await ensureDir(path.join(dir, 'a'));
    expect(statSync(path.join(dir, 'a')).mode & 0o777).toBe(0o755);
  });

  it('a file in the way, also further up, is exit 2', async () => {
    writeFileSync(path.join(dir, 'f'), 'x');
    await expect(ensureDir(path.join(dir, 'f'))).rejects.toMatchObject({ exitCode: 2, code: 'not_a_folder' });
    await expect(ensureDir(path.join(dir, 'f', 'sub'))).rejects.toMatchObject({ exitCode: 2 });
  });

  it.skipIf(!existsSync('/proc/self'))(
    'a place under /proc is refused at once (it spun at 100% CPU before)',
    async () => {
      await expect(ensureDir('/proc/oauthmail-x/y', '--out')).rejects.toMatchObject({
        exitCode: 2,
        message: expect.stringMatching(/--out \/proc\/oauthmail-x\/y: cannot create the folder/),
      });
    },
    5_000,
  );
});
