/**
 * Issue 12 item 6: a refresh stopped at a random moment, against a provider that rotates refresh
 * tokens and burns the old one at once (the fake Entra ID's default; custom providers always).
 * SIGTERM and SIGINT must never lose the sign-in (they wait for the write, then exit 130/143);
 * SIGKILL may only hit the moment from the provider's answer to the rescue file (a fraction of a
 * millisecond, src/secrets/rescue.ts): at most 1 loss in 50.
 *
 * For each store, RUNS kills per signal, spread over LANES signed-in config folders that are
 * killed in parallel, each at a random moment of a `token --force-refresh` run (seeded:
 * OAUTHMAIL_KILL_SEED explores other moments, OAUTHMAIL_KILL_RUNS sets the count). For SIGTERM
 * and SIGINT the token endpoint answers 150 ms late, so that many land while the request is in
 * flight. After
 * each kill the stored refresh token is read (as the CLI would) and checked at the IdP without
 * redeeming it: a burned one is a lost sign-in (counted, printed, and the lane signs in again).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, cliHome, type CliHome } from '../support/cli.js';
import {
  addCustomProfile,
  addMicrosoftProfile,
  CAROL,
  CUSTOM_CLIENT,
  signInDevice,
  usePrivateIdp,
} from '../support/signin.js';
import { decryptSecret, isEncryptedContent } from '../../src/secrets/file.js';
import { KeychainStore } from '../../src/secrets/keychain.js';
import { applyRescue } from '../../src/secrets/rescue.js';

const SEED = Number(process.env.OAUTHMAIL_KILL_SEED || 12);
const RUNS = Number(process.env.OAUTHMAIL_KILL_RUNS || 50);
const LANES = 6;
const PASSPHRASE = 'kill-test-passphrase';
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGKILL'] as const;
type Sig = (typeof SIGNALS)[number];

interface StoreCase {
  name: string;
  provider: 'microsoft' | 'custom';
  storage: 'file' | 'keychain';
  passphrase: boolean;
}
const CASES: StoreCase[] = [
  { name: 'file store with passphrase', provider: 'microsoft', storage: 'file', passphrase: true },
  { name: 'plain file store', provider: 'microsoft', storage: 'file', passphrase: false },
  { name: 'keychain', provider: 'microsoft', storage: 'keychain', passphrase: false },
  {
    name: 'custom provider, file store with passphrase',
    provider: 'custom',
    storage: 'file',
    passphrase: true,
  },
];

const idp = usePrivateIdp();
beforeAll(() => {
  if (!process.env.DBUS_SESSION_BUS_ADDRESS || process.env.OAUTHMAIL_STACK !== '1')
    throw new Error('these tests need the stack and its keyring: run through test/support/with-stack.sh');
});

/** mulberry32: a small seeded generator, so that a failing run can be repeated. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface Lane {
  h: CliHome;
  profile: string;
}

async function signIn(c: StoreCase, lane: Lane): Promise<void> {
  if (c.provider === 'microsoft') {
    const r = await signInDevice(lane.h, lane.profile, idp());
    expect(r.code, r.stderr).toBe(0);
    return;
  }
  const minted = await idp().admin('mint', {
    provider: 'custom',
    user: CAROL.email,
    clientId: CUSTOM_CLIENT.clientId,
    scopes: ['mail'],
  });
  expect(minted.status).toBe(200);
  const r = await lane.h.run(['import', lane.profile, '--file', '-'], { input: JSON.stringify(minted.json) });
  expect(r.code, r.stderr).toBe(0);
}

async function makeLane(c: StoreCase, i: number): Promise<Lane> {
  const h = cliHome({
    DISPLAY: '',
    WAYLAND_DISPLAY: '',
    BROWSER: '',
    ...(c.passphrase ? { OAUTHMAIL_PASSPHRASE: PASSPHRASE } : {}),
  });
  const profile = `k${i}x${Date.now().toString(36)}`;
  if (c.provider === 'microsoft') {
    const add = await addMicrosoftProfile(h, profile, idp().url, ['--storage', c.storage]);
    expect(add.code, add.stderr).toBe(0);
  } else {
    const add = await addCustomProfile(h, profile, `${idp().url}/custom`, ['--storage', c.storage]);
    expect(add.code, add.stderr).toBe(0);
  }
  const lane = { h, profile };
  await signIn(c, lane);
  return lane;
}

/** The refresh token the profile's store holds now, read the way the CLI reads it. */
async function storedRefreshToken(c: StoreCase, lane: Lane): Promise<string | undefined> {
  let text: string | undefined;
  if (c.storage === 'file') {
    const file = join(lane.h.dir, 'data', 'secrets', lane.profile, 'token-cache');
    let raw: string;
    try {
      raw = readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    text = isEncryptedContent(raw) ? await decryptSecret(raw, PASSPHRASE, file) : raw;
  } else {
    const config = JSON.parse(readFileSync(lane.h.configFile, 'utf8')) as { id?: string };
    text = await new KeychainStore({ namespace: config.id }).get(lane.profile, 'token-cache');
  }
  if (!text) return undefined;
  // what a kill left in the rescue file (src/secrets/rescue.ts) the store's read puts in place
  try {
    text = applyRescue(
      text,
      readFileSync(join(lane.h.dir, 'data', 'rescue', `${lane.profile}.token-cache`), 'utf8'),
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const j = JSON.parse(text) as {
    refresh_token?: string;
    RefreshToken?: Record<string, { secret?: string }>;
  };
  return c.provider === 'custom' ? j.refresh_token : Object.values(j.RefreshToken ?? {})[0]?.secret;
}

/**
 * Whether the IdP still accepts `rt`. A killed client's request may still be at the IdP (held by
 * the delay fault, or not read yet): it burns the token when it is handled, so wait for that.
 */
async function live(rt: string | undefined): Promise<{ live: boolean; answeredAt?: number }> {
  if (!rt) return { live: false };
  for (let i = 0; ; i++) {
    const r = await idp().admin('refresh-token', { token: rt });
    expect(r.status).toBe(200);
    if (!r.json.pending) return { live: r.json.live === true, answeredAt: r.json.answeredAt ?? undefined };
    expect(i, 'a refresh request stays pending at the IdP').toBeLessThan(500);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
  /** Date.now() when the signal was sent (the IdP runs in this process: same clock) */
  signalledAt?: number;
}

/** `token PROFILE --force-refresh --verbose`, sent `sig` after `afterMs` (never, when undefined). */
function refresh(lane: Lane, sig: Sig | undefined, afterMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [BIN, 'token', lane.profile, '--force-refresh', '--verbose'], {
      env: lane.h.env,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    child.stdin.end();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let signalledAt: number | undefined;
    const timer = sig
      ? setTimeout(() => {
          signalledAt = Date.now();
          child.kill(sig);
        }, afterMs)
      : undefined;
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(guard);
      resolve({ code, signal, stderr, ms: performance.now() - t0, signalledAt });
    });
  });
}

/** The window from the provider's answer to the store's write, as --verbose reports it. */
function windowMs(stderr: string): number | undefined {
  const m = /token cache stored ([\d.]+) ms after the provider's answer/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

/** The window from the provider's answer to the rescue file (src/secrets/rescue.ts), as --verbose reports it. */
function rescueMs(stderr: string): number | undefined {
  const m = /kept in the rescue file ([\d.]+) ms after the provider's answer/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

describe.each(CASES)('a refresh stopped at random moments: $name', (c) => {
  it(`SIGTERM, SIGINT and SIGKILL, ${RUNS} each: no sign-in lost to SIGTERM/SIGINT; at most 1 in 50 to SIGKILL`, async () => {
    const wall0 = performance.now();
    const random = rng(SEED + CASES.indexOf(c) * 1000);
    const lanes = await Promise.all(Array.from({ length: LANES }, (_, i) => makeLane(c, i)));

    // the window the --verbose line reports, from refreshes one at a time (as a cron job runs)
    const quiet: Run[] = [];
    for (let i = 0; i < 5; i++) quiet.push(await refresh(lanes[0]!, undefined, 0));
    for (const r of quiet) expect(r.code, r.stderr).toBe(0);
    const windows = quiet.map((r) => windowMs(r.stderr)).filter((x): x is number => x !== undefined);
    expect(windows.length).toBe(quiet.length);
    // every rotated token went to the rescue file first, within a fraction of the store's window
    const rescues = quiet.map((r) => rescueMs(r.stderr)).filter((x): x is number => x !== undefined);
    expect(rescues.length, quiet.map((r) => r.stderr).join('\n')).toBe(quiet.length);
    // how long a refresh takes with all lanes at once and the token endpoint slowed, to spread
    // the signals over it
    const endpoint = c.provider === 'custom' ? 'custom.token' : 'token';
    expect(
      (await idp().admin('faults', { endpoint, grantType: 'refresh_token', delayMs: 150, times: -1 })).status,
    ).toBe(200);
    const busy = await Promise.all(lanes.map((l) => refresh(l, undefined, 0)));
    for (const r of busy) expect(r.code, r.stderr).toBe(0);
    const span = median(busy.map((r) => r.ms));

    const lost: Array<{ sig: Sig; afterMs: number; exit: string; inFlight: boolean }> = [];
    const stopped: Record<Sig, number> = { SIGTERM: 0, SIGINT: 0, SIGKILL: 0 };
    const exits: string[] = [];
    for (const phase of [['SIGTERM', 'SIGINT'], ['SIGKILL']] as Sig[][]) {
      // SIGTERM/SIGINT: the token endpoint answers 150 ms late, so that many signals land while
      // the request is in flight (they must wait for the answer and the write). SIGKILL: no
      // delay, because a process killed while its request is in flight loses a token the
      // provider burns at once whatever the client does; the window measured is the client's own.
      await idp().admin('faults', {}, 'DELETE');
      if (phase[0] !== 'SIGKILL')
        expect(
          (await idp().admin('faults', { endpoint, grantType: 'refresh_token', delayMs: 150, times: -1 }))
            .status,
        ).toBe(200);
      const jobs: Array<{ sig: Sig; afterMs: number }> = [];
      for (let i = 0; i < RUNS; i++)
        for (const sig of phase) jobs.push({ sig, afterMs: Math.floor(random() * span * 1.1) });
      let next = 0;
      await Promise.all(
        lanes.map(async (lane) => {
          for (let j = next++; j < jobs.length; j = next++) {
            const { sig, afterMs } = jobs[j]!;
            const r = await refresh(lane, sig, afterMs);
            const exit = r.signal ?? String(r.code);
            if (r.signal === sig) stopped[sig]++;
            if (sig !== 'SIGKILL' && r.code !== null) {
              // done before the signal (0), or stopped once the write was done (130/143)
              if (![0, 130, 143].includes(r.code))
                exits.push(`${sig} after ${afterMs} ms: exit ${exit}: ${r.stderr}`);
              if (r.code !== 0) stopped[sig]++;
            }
            // a killed holder leaves its lock for the stale timeout (10 s, tested elsewhere): the
            // process is gone, so clear it rather than wait
            if (r.signal === 'SIGKILL')
              rmSync(join(lane.h.dir, 'data', 'locks', `token-${lane.profile}.lock`), {
                recursive: true,
                force: true,
              });
            const rt = await storedRefreshToken(c, lane);
            const state = await live(rt);
            if (!state.live) {
              // killed before the provider had sent its answer: no client can keep a token the
              // provider burns at once and never delivers; counted apart from the window this
              // is about (the provider's answer to the durable write)
              const inFlight =
                sig === 'SIGKILL' &&
                r.signalledAt !== undefined &&
                (state.answeredAt === undefined || r.signalledAt < state.answeredAt);
              lost.push({
                sig,
                afterMs,
                inFlight,
                exit: `${exit}, ${rt === undefined ? 'nothing stored' : inFlight ? 'burned before the answer left the provider' : 'burned'}: ${r.stderr
                  .split('\n')
                  .filter((l) => /stored|oauthmail:|refreshing/.test(l))
                  .join(' | ')}`,
              });
              await signIn(c, lane);
            }
          }
        }),
      );
    }
    const wall = (performance.now() - wall0) / 1000;
    const count = (s: Sig) => lost.filter((l) => l.sig === s && !l.inFlight).length;
    const inFlight = lost.filter((l) => l.inFlight).length;
    console.log(
      `[refresh-kill] ${c.name} (seed ${SEED}, ${RUNS} per signal, ${LANES} lanes): ` +
        `window from answer to rescue file: median ${median(rescues).toFixed(2)} ms, max ${Math.max(...rescues).toFixed(2)} ms; ` +
        `to the store's write: median ${median(windows).toFixed(1)} ms, max ${Math.max(...windows).toFixed(1)} ms ` +
        `(${windows.length} runs one at a time); a refresh takes ${span.toFixed(0)} ms with ${LANES} at once; ` +
        `stopped by the signal: ${SIGNALS.map((s) => `${s} ${stopped[s]}`).join(', ')}; ` +
        `lost: ${SIGNALS.map((s) => `${s} ${count(s)}`).join(', ')}` +
        ` (and ${inFlight} to SIGKILL before the provider's answer); wall ${wall.toFixed(1)} s` +
        (lost.length
          ? `\n  lost at: ${lost.map((l) => `${l.sig}@${l.afterMs}ms(${l.exit})`).join(' ')}`
          : ''),
    );
    expect(exits).toEqual([]);
    expect(count('SIGTERM')).toBe(0);
    expect(count('SIGINT')).toBe(0);
    // SIGKILL: the issue's target, at most 1 loss in 50. The rotated token is in the rescue file
    // a fraction of a millisecond after the answer has been read (the store's own write takes
    // 10-90 ms with a keychain on a loaded machine); a kill before the answer left the provider is
    // counted apart (no client can keep a token the provider burns and never delivers).
    expect(count('SIGKILL')).toBeLessThanOrEqual(Math.max(1, Math.floor(RUNS / 50)));
    // the signals did land in the middle of refreshes, not only before or after them
    expect(stopped.SIGTERM + stopped.SIGINT + stopped.SIGKILL).toBeGreaterThan(RUNS);
  }, 900_000);
});

describe('a stop asked for during the refresh request', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s while the token request is at the provider: the answer is stored, then exit 130/143 (not 0, and not a lost sign-in)',
    async (sig) => {
      const c = CASES[1]!; // plain file store
      const lane = await makeLane(c, 0);
      expect(
        (
          await idp().admin('faults', {
            endpoint: 'token',
            grantType: 'refresh_token',
            delayMs: 1500,
            times: 1,
          })
        ).status,
      ).toBe(200);
      const before = await storedRefreshToken(c, lane);
      const child = spawn(process.execPath, [BIN, 'token', lane.profile, '--force-refresh', '--verbose'], {
        env: lane.h.env,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child.stdin.end();
      let stderr = '';
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      // the IdP holds the request 1.5 s: signal once it is there
      for (let i = 0; !(await idp().admin('refresh-token', { token: before })).json.pending; i++) {
        expect(i, `the refresh request did not reach the IdP\n${stderr}`).toBeLessThan(1000);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      child.kill(sig);
      const code = await exited;
      expect(code, stderr).toBe(sig === 'SIGTERM' ? 143 : 130);
      expect(stdout).toBe(''); // stopped: no token printed
      const after = await storedRefreshToken(c, lane);
      expect(after).not.toBe(before); // the rotated token was stored
      expect((await live(after)).live).toBe(true);
    },
    120_000,
  );
});
