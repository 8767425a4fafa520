/**
 * The keychain store against a real Secret Service (gnome-keyring) on a D-Bus session.
 *
 * Run through the stack wrapper (which provides D-Bus + an unlocked gnome-keyring and sets
 * OAUTHMAIL_STACK=1), or by hand:
 *   HOME=/root dbus-run-session -- sh -c 'echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; npx vitest run test/integration/keychain.test.ts'
 * Without a reachable Secret Service these tests fail (never skip), saying how to run them.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolvePaths, type Paths } from '../../src/config/paths.js';
import { KeychainStore } from '../../src/secrets/keychain.js';
import { openSecretStore, resetFallbackWarnings } from '../../src/secrets/open.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HOW_TO_RUN =
  "no Secret Service is reachable on D-Bus, so the keychain integration tests cannot run. Run them through test/support/with-stack.sh, or: HOME=/root dbus-run-session -- sh -c 'echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; npx vitest run test/integration/keychain.test.ts'";

/** Transpile src files (following relative imports) so a child process can run them. */
async function transpileForChild(entry: string, out: string): Promise<string> {
  const seen = new Set<string>();
  const queue = [path.join(repo, entry)];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const src = await fsp.readFile(file, 'utf8');
    const js = ts.transpileModule(src, {
      compilerOptions: {
        module: ts.ModuleKind.ES2022,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
      fileName: file,
    }).outputText;
    const dest = path.join(out, path.relative(repo, file)).replace(/\.ts$/, '.js');
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await fsp.writeFile(dest, js);
    for (const m of src.matchAll(/(?:from\s+|import\()\s*'(\.{1,2}\/[^']+)\.js'/g)) {
      queue.push(path.resolve(path.dirname(file), `${m[1]}.ts`));
    }
  }
  await fsp.writeFile(path.join(out, 'package.json'), '{"type":"module"}');
  return path.join(out, entry.replace(/\.ts$/, '.js'));
}

/** Child: open the store and print what happened as JSON; exit explicitly unless told not to. */
const CHILD = `
const [openJs, keychainJs, storage, dataDir, noExit] = process.argv.slice(1);
const { openSecretStore } = await import(openJs);
const { pendingKeychainCalls } = await import(keychainJs);
const { resolvePaths } = await import(openJs.replace('/secrets/open.js', '/config/paths.js'));
const warnings = [];
const t0 = performance.now();
let result;
try {
  const s = await openSecretStore({ storage, paths: resolvePaths({ ...process.env, OAUTHMAIL_DATA_DIR: dataDir }), warn: (m) => warnings.push(m) });
  result = { kind: s.kind, location: s.location };
} catch (e) {
  result = { error: { code: e.code, message: e.message, hint: e.hint, exitCode: e.exitCode } };
}
result.ms = performance.now() - t0;
result.warnings = warnings;
result.pending = pendingKeychainCalls();
console.log(JSON.stringify(result));
if (noExit !== '1') process.exit(0);
`;

interface ChildResult {
  kind?: string;
  location?: string;
  error?: { code: string; message: string; hint: string; exitCode: number };
  ms: number;
  warnings: string[];
  pending: number;
}

function runChild(
  storage: string,
  env: NodeJS.ProcessEnv,
  opts: { noExit?: boolean } = {},
): Promise<{
  result: ChildResult;
  wallMs: number;
  child: ReturnType<typeof spawn>;
  exited: Promise<number | null>;
}> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        CHILD,
        openJs,
        keychainJs,
        storage,
        path.join(root, `data-${Math.random()}`),
        opts.noExit ? '1' : '0',
      ],
      { env, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line && out.includes('\n'))
        resolve({ result: JSON.parse(line) as ChildResult, wallMs: performance.now() - t0, child, exited });
    });
    child.on('error', reject);
    void exited.then((code) => {
      if (!out.includes('\n')) reject(new Error(`child exited with ${code} before reporting`));
    });
  });
}

let root: string;
let out: string;
let openJs: string;
let keychainJs: string;
let paths: Paths;
const profile = `it-${process.pid}`;
const keychain = new KeychainStore({ splitLimitBytes: 2560 });
const probeTimings: number[] = [];

beforeAll(async () => {
  const probe = await keychain.probe();
  if (!probe.ok) throw new Error(`${HOW_TO_RUN} (probe: ${probe.reason})`);
  probeTimings.push(probe.ms); // the first one includes loading keytar
  for (let i = 0; i < 3; i++) probeTimings.push((await keychain.probe()).ms);
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'oauthmail-kc-'));
  paths = resolvePaths({ HOME: root, OAUTHMAIL_DATA_DIR: path.join(root, 'data') });
  await fsp.mkdir(path.join(repo, 'node_modules', '.cache'), { recursive: true });
  out = await fsp.mkdtemp(path.join(repo, 'node_modules', '.cache', 'oauthmail-kc-test-'));
  openJs = await transpileForChild('src/secrets/open.ts', out);
  keychainJs = path.join(out, 'src/secrets/keychain.js');
  await transpileForChild('src/config/paths.ts', out);
});

afterAll(async () => {
  for (const kind of ['client-secret', 'token-cache'] as const)
    await keychain.delete(profile, kind).catch(() => undefined);
  if (root) await fsp.rm(root, { recursive: true, force: true });
  if (out) await fsp.rm(out, { recursive: true, force: true });
  console.log(
    `keychain probe with gnome-keyring present: ${probeTimings.map((t) => t.toFixed(1)).join(', ')} ms`,
  );
});

describe('keychain store against gnome-keyring', () => {
  it('stores, reads back, replaces and deletes a secret', async () => {
    expect(await keychain.get(profile, 'client-secret')).toBeUndefined();
    await keychain.set(profile, 'client-secret', 'cs-first-ÄÖÜ-€-1234');
    expect(await keychain.get(profile, 'client-secret')).toBe('cs-first-ÄÖÜ-€-1234');
    // a fresh store (no shared state) sees it too: it really is in the keyring
    expect(await new KeychainStore().get(profile, 'client-secret')).toBe('cs-first-ÄÖÜ-€-1234');
    await keychain.set(profile, 'client-secret', 'cs-second-5678');
    expect(await new KeychainStore().get(profile, 'client-secret')).toBe('cs-second-5678');
    expect(await keychain.delete(profile, 'client-secret')).toBe(true);
    expect(await keychain.get(profile, 'client-secret')).toBeUndefined();
    expect(await keychain.delete(profile, 'client-secret')).toBe(false);
  });

  it('splits a 12 KB token cache into 2,560-byte entries and leaves none behind', async () => {
    const keytar = (
      (await import('keytar')) as unknown as {
        default: { findCredentials(s: string): Promise<Array<{ account: string; password: string }>> };
      }
    ).default;
    // findCredentials lists every oauthmail item of the keyring, then reads each: another test file
    // deleting one of its own items in between makes it throw "No such secret item" (a race of
    // the listing, not of the items under test), so list again then
    const listMine = async () => {
      for (let i = 0; ; i++) {
        try {
          return (await keytar.findCredentials('oauthmail')).filter((c) =>
            c.account.startsWith(`${profile}/token-cache`),
          );
        } catch (e) {
          if (i >= 10 || !/No such secret item/.test(String(e))) throw e;
        }
      }
    };
    const big = JSON.stringify({ cache: 'é€日本😀-'.repeat(900) });
    expect(Buffer.byteLength(big)).toBeGreaterThan(12 * 1024);
    await keychain.set(profile, 'token-cache', big);
    expect(await new KeychainStore({ splitLimitBytes: 2560 }).get(profile, 'token-cache')).toBe(big);
    const mine = await listMine();
    expect(mine.length).toBeGreaterThan(5);
    for (const c of mine) expect(Buffer.byteLength(c.password)).toBeLessThanOrEqual(2560);
    await keychain.set(profile, 'token-cache', 'small');
    const after = await listMine();
    expect(after).toEqual([{ account: `${profile}/token-cache`, password: 'small' }]);
    await keychain.delete(profile, 'token-cache');
  });

  it('auto picks the keychain when the Secret Service answers', async () => {
    resetFallbackWarnings();
    const warnings: string[] = [];
    const s = await openSecretStore({
      storage: 'auto',
      paths,
      env: process.env,
      warn: (m) => warnings.push(m),
    });
    expect(s.kind).toBe('keychain');
    expect(s.location).toBe('keychain (Secret Service)');
    expect(warnings).toEqual([]);
  });
});

describe('without a Secret Service (child processes)', () => {
  const dead = () => ({
    ...process.env,
    DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(root, 'no-such-bus')}`,
    OAUTHMAIL_KEYCHAIN_TIMEOUT_MS: '1000',
  });

  it('auto falls back to the file store with the warning, within the timeout (dead bus socket)', async () => {
    const { result, wallMs } = await runChild('auto', dead());
    expect(result.kind).toBe('file');
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(
      /^no Secret Service on D-Bus \(cannot connect to the session bus at \S+\/no-such-bus \(ENOENT\)\); storing secrets in .*\/secrets \(mode 0600\)\. Set OAUTHMAIL_PASSPHRASE to encrypt them\.$/,
    );
    expect(result.ms).toBeLessThan(1000);
    console.log(
      `keychain probe, dead bus socket: ${result.ms.toFixed(1)} ms (child wall ${wallMs.toFixed(0)} ms)`,
    );
  });

  it('auto falls back with DBUS_SESSION_BUS_ADDRESS unset', async () => {
    const env: NodeJS.ProcessEnv = dead();
    delete env.DBUS_SESSION_BUS_ADDRESS;
    const { result } = await runChild('auto', env);
    expect(result.kind).toBe('file');
    expect(result.warnings[0]).toMatch(
      /^no Secret Service on D-Bus \(DBUS_SESSION_BUS_ADDRESS is not set\); storing secrets in /,
    );
    console.log(`keychain probe, no DBUS_SESSION_BUS_ADDRESS: ${result.ms.toFixed(1)} ms`);
  });

  it('a HOME that does not exist: no keytar call (it would hang 25 s), immediate fallback', async () => {
    const { result, exited } = await runChild('auto', {
      ...process.env,
      HOME: path.join(root, 'no-such-home'),
    });
    expect(result.kind).toBe('file');
    expect(result.pending).toBe(0);
    expect(result.ms).toBeLessThan(500);
    expect(result.warnings[0]).toContain(
      `HOME (${path.join(root, 'no-such-home')}) does not exist, so no keyring can start; storing secrets in `,
    );
    await exited;
  });

  it('keychain storage fails with the clear error and its fix', async () => {
    const { result } = await runChild('keychain', dead());
    expect(result.kind).toBeUndefined();
    expect(result.error).toMatchObject({ code: 'keychain_unavailable', exitCode: 3 });
    expect(result.error!.message).toBe(
      `the keychain is unavailable: no Secret Service on D-Bus (cannot connect to the session bus at ${path.join(root, 'no-such-bus')} (ENOENT)).`,
    );
    expect(result.error!.hint).toContain('--storage file');
    expect(result.warnings).toEqual([]);
  });

  it('a bus that never answers: falls back at the timeout, before any keytar call, so the process ends', async () => {
    const sock = path.join(root, 'black-hole.sock');
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => {
      sockets.push(s);
      s.on('data', () => undefined); // accept, read, never answer the D-Bus auth handshake
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const env = {
        ...process.env,
        DBUS_SESSION_BUS_ADDRESS: `unix:path=${sock}`,
        OAUTHMAIL_KEYCHAIN_TIMEOUT_MS: '500',
      };
      for (const noExit of [true, false]) {
        const { result, exited } = await runChild('auto', env, { noExit });
        expect(result.kind).toBe('file');
        expect(result.ms).toBeGreaterThanOrEqual(490);
        expect(result.ms).toBeLessThan(1500);
        expect(result.warnings[0]).toMatch(
          /^the D-Bus session bus did not answer within 500 ms; storing secrets in /,
        );
        // the handshake is checked on a socket of our own (cancellable), so no native keytar
        // call is left stuck, and the process ends by itself, with or without process.exit()
        expect(result.pending).toBe(0);
        expect(await exited).toBe(0);
      }
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});
