/**
 * The queue's parts without a mail server: the spool's files (mode, durability, order), the
 * runner with an injected clock and a fake delivery (oldest first, backoff, maximum age, dead
 * letters, one runner at a time), which failures are queued, the passphrase sources, and the
 * "sign-in ended" rule of token health.
 */
import { describe, it, expect, beforeEach } from 'vitest';
import {
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
  mkdirSync,
  utimesSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Spool, queueStats } from '../../src/mail/queue/spool.js';
import { runQueue, type RunEvent } from '../../src/mail/queue/runner.js';
import { tryQueueLock, queueLockHolder } from '../../src/mail/queue/lock.js';
import { queueDecision, queuedLine } from '../../src/mail/queue/policy.js';
import {
  AuthError,
  ConfigError,
  MailServerError,
  TransientError,
  UsageError,
} from '../../src/errors/index.js';
import { DEFAULT_RETRY } from '../../src/config/schema.js';
import { passphraseFrom } from '../../src/secrets/open.js';
import { applyEvent, refusedSignIn } from '../../src/auth/health.js';

let dir: string;
let spool: Spool;
let locks: string;
const env = { from: 'a@x.test', to: ['b@x.test'] };
const raw = (n: number) => `Message-ID: <m${n}@x.test>\r\nSubject: ${n}\r\n\r\nbody ${n}\r\n`;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'queue-unit-'));
  spool = new Spool(dir);
  locks = path.join(dir, 'locks');
});

/** A clock the test moves. */
function clock(start = Date.parse('2026-11-01T00:00:00Z')) {
  let t = start;
  return { now: () => new Date(t), advance: (ms: number) => (t += ms) };
}

describe('spool', () => {
  it('one 0600 file per message in a 0700 folder, header line then the exact bytes; ids sort oldest first', async () => {
    const c = clock();
    const a = await spool.add({ profile: 'work', envelope: env, raw: raw(1), reason: 'r' }, c.now());
    c.advance(1);
    const b = await spool.add({ profile: 'work', envelope: env, raw: raw(2), reason: 'r' }, c.now());
    expect(await spool.ids()).toEqual([a.id, b.id]);
    const file = spool.fileOf(a.id);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(spool.dirs.root).mode & 0o777).toBe(0o700);
    const text = readFileSync(file, 'utf8');
    expect(text.slice(text.indexOf('\n') + 1)).toBe(raw(1));
    expect(a.messageId).toBe('<m1@x.test>');
    expect(readdirSync(spool.dirs.tmp)).toEqual([]); // nothing left behind
    const e = await spool.read(a.id);
    expect(e!.raw.toString()).toBe(raw(1));
    expect(e!.meta).toMatchObject({ profile: 'work', envelope: env, attempts: 1, reason: 'r' });
  });

  it('stats per profile: waiting, oldest age, dead', async () => {
    const c = clock();
    await spool.add({ profile: 'work', envelope: env, raw: raw(1), reason: 'r' }, c.now());
    c.advance(90_000);
    await spool.add({ profile: 'other', envelope: env, raw: raw(2), reason: 'r' }, c.now());
    const st = queueStats(
      await spool.list(),
      await spool.list(true),
      'work',
      new Date(c.now().getTime() + 10_000),
    );
    expect(st).toEqual({
      waiting: 1,
      oldestQueuedAt: '2026-11-01T00:00:00.000Z',
      oldestAgeSeconds: 100,
      dead: 0,
    });
  });
});

describe('runner (injected clock, fake delivery)', () => {
  it('delivers oldest first and removes each file after its delivery', async () => {
    const c = clock();
    for (let i = 1; i <= 3; i++) {
      await spool.add({ profile: 'work', envelope: env, raw: raw(i), reason: 'r' }, c.now());
      c.advance(1000);
    }
    const order: string[] = [];
    const r = await runQueue({
      spool,
      locksDir: locks,
      now: c.now,
      deliver: async (e) => {
        order.push(e.raw.toString().split('\r\n')[1]!);
        // the file is still there while it is being sent: a kill now loses nothing
        expect(await spool.read(e.meta.id)).toBeDefined();
        return { response: '250 ok' };
      },
    });
    expect(order).toEqual(['Subject: 1', 'Subject: 2', 'Subject: 3']);
    expect(r).toMatchObject({ delivered: 3, deferred: 0, dead: 0 });
    expect(await spool.ids()).toEqual([]);
  });

  it('a temporary failure: attempts, last error and a next attempt time from the retry policy; not tried again before it', async () => {
    const c = clock();
    const m = await spool.add({ profile: 'work', envelope: env, raw: raw(1), reason: 'r' }, c.now());
    const policy = { ...DEFAULT_RETRY, initialDelayMs: 60_000, maxDelayMs: 600_000, multiplier: 2 };
    let calls = 0;
    const fail = () => {
      calls++;
      return Promise.reject(new TransientError('451 4.3.0 try later', { code: 'smtp_temporary' }));
    };
    const r1 = await runQueue({ spool, locksDir: locks, now: c.now, deliver: fail, policyFor: () => policy });
    expect(r1.deferred).toBe(1);
    const after = (await spool.read(m.id))!.meta;
    expect(after.attempts).toBe(2);
    expect(after.lastError).toBe('451 4.3.0 try later');
    const wait = Date.parse(after.nextAttemptAt!) - c.now().getTime();
    // backoff for the 2nd attempt: between half and all of 60 s × 2
    expect(wait).toBeGreaterThanOrEqual(60_000);
    expect(wait).toBeLessThanOrEqual(120_000);
    const r2 = await runQueue({ spool, locksDir: locks, now: c.now, deliver: fail, policyFor: () => policy });
    expect(r2).toMatchObject({ skipped: 1, deferred: 0 });
    expect(calls).toBe(1);
    c.advance(wait + 1);
    await runQueue({ spool, locksDir: locks, now: c.now, deliver: fail, policyFor: () => policy });
    expect(calls).toBe(2);
    // --force ignores the next attempt time
    await runQueue({
      spool,
      locksDir: locks,
      now: c.now,
      deliver: fail,
      policyFor: () => policy,
      force: true,
    });
    expect(calls).toBe(3);
  });

  it('older than the maximum age: a dead letter with the reason, reported; a permanent refusal too', async () => {
    const c = clock();
    const old = await spool.add(
      { profile: 'work', envelope: env, raw: raw(1), reason: 'r', lastError: 'x' },
      c.now(),
    );
    c.advance(5 * 86_400_000 + 1);
    const young = await spool.add({ profile: 'work', envelope: env, raw: raw(2), reason: 'r' }, c.now());
    const events: RunEvent[] = [];
    const r = await runQueue({
      spool,
      locksDir: locks,
      now: c.now,
      onEvent: (e) => events.push(e),
      deliver: () =>
        Promise.reject(
          new MailServerError('550 5.1.1 no such user', { code: 'smtp_refused', serverCode: 550 }),
        ),
    });
    expect(r).toMatchObject({ dead: 2, delivered: 0 });
    expect(events.map((e) => e.kind)).toEqual(['dead', 'dead']);
    const dead = await spool.list(true);
    expect(dead.map((d) => d.id)).toEqual([old.id, young.id]);
    expect(dead[0]!.deadReason).toMatch(/^expired: waited 5 days \(maximum 5 days\); last error: x/);
    expect(dead[1]!.deadReason).toBe('refused: 550 5.1.1 no such user');
    expect(await spool.ids()).toEqual([]);
    // the bytes survive into dead/
    expect((await spool.read(old.id, true))!.raw.toString()).toBe(raw(1));
  });

  it('a failure that is not about the message (sign-in) stops this run for that profile only', async () => {
    const c = clock();
    // queued one after the other (ids made in the same millisecond have no defined order)
    await spool.add({ profile: 'dead', envelope: env, raw: raw(1), reason: 'r' }, c.now());
    c.advance(1);
    await spool.add({ profile: 'dead', envelope: env, raw: raw(2), reason: 'r' }, c.now());
    c.advance(1);
    await spool.add({ profile: 'ok', envelope: env, raw: raw(3), reason: 'r' }, c.now());
    const tried: string[] = [];
    const r = await runQueue({
      spool,
      locksDir: locks,
      now: c.now,
      deliver: (e) => {
        tried.push(e.meta.profile);
        if (e.meta.profile === 'dead')
          return Promise.reject(new AuthError('not signed in', { code: 'not_signed_in' }));
        return Promise.resolve({ response: '250' });
      },
    });
    expect(tried).toEqual(['dead', 'ok']);
    expect(r).toMatchObject({ delivered: 1, deferred: 1, skipped: 1 });
    expect(r.events.find((e) => e.kind === 'deferred')).toMatchObject({ exitCode: 4 });
  });

  it('one runner at a time: a second one finds the lock held and does nothing; a dead holder is taken over at once', async () => {
    await spool.add({ profile: 'work', envelope: env, raw: raw(1), reason: 'r' });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let sends = 0;
    const first = runQueue({
      spool,
      locksDir: locks,
      deliver: async () => {
        sends++;
        await gate;
        return { response: '250' };
      },
    });
    await new Promise((r) => setTimeout(r, 50));
    const second = await runQueue({
      spool,
      locksDir: locks,
      deliver: () => ((sends += 100), Promise.resolve({ response: '250' })),
    });
    expect(second.busy).toBe(process.pid);
    expect(await queueLockHolder(locks)).toBe(process.pid);
    release();
    await first;
    expect(sends).toBe(1);
    expect(await queueLockHolder(locks)).toBeUndefined();

    // a holder killed with SIGKILL: its lock folder and owner file stay; the next runner goes ahead
    mkdirSync(path.join(locks, 'queue-run.lock'));
    writeFileSync(path.join(locks, 'queue-run.owner'), '999999\n'); // no such process
    const lock = await tryQueueLock(locks);
    expect(lock).toBeDefined();
    await lock!.release();
  });

  it('temp files a killed writer left are swept after an hour, not before', async () => {
    await spool.add({ profile: 'work', envelope: env, raw: raw(1), reason: 'r' });
    const fresh = path.join(spool.dirs.tmp, 'fresh.tmp');
    const stale = path.join(spool.dirs.tmp, 'stale.tmp');
    writeFileSync(fresh, 'x');
    writeFileSync(stale, 'x');
    const old = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(stale, old, old);
    await runQueue({ spool, locksDir: locks, deliver: () => Promise.resolve({ response: '250' }) });
    expect(readdirSync(spool.dirs.tmp)).toEqual(['fresh.tmp']);
  });
});

describe('which failures are queued', () => {
  it('queued: temporary, sign-in, keychain, unreadable secrets, token refused by the server; not: the message refused, bad input', () => {
    expect(queueDecision(new TransientError('x', { code: 'smtp_network' }))).toMatchObject({ queue: true });
    expect(queueDecision(new AuthError('x', { code: 'not_signed_in' }))).toEqual({
      queue: true,
      why: 'a sign-in is needed',
    });
    expect(queueDecision(new ConfigError('x', { code: 'keychain_unavailable' }))).toMatchObject({
      queue: true,
    });
    expect(queueDecision(new ConfigError('x', { code: 'secret_decrypt_failed' }))).toMatchObject({
      queue: true,
    });
    expect(queueDecision(new MailServerError('x', { code: 'smtp_auth_refused' }))).toMatchObject({
      queue: true,
    });
    expect(queueDecision(new MailServerError('550', { code: 'smtp_refused' }))).toEqual({ queue: false });
    expect(queueDecision(new UsageError('x', { code: 'bad_address' }))).toEqual({ queue: false });
    expect(queueDecision(new ConfigError('x', { code: 'profile_not_found' }))).toEqual({ queue: false });
  });

  it('the stderr line: one line with the id, why, the error, what delivers it and the fix', () => {
    const line = queuedLine(
      'abc',
      'a sign-in is needed',
      new AuthError('the sign-in has ended (AADSTS50173)', {
        code: 'AADSTS50173',
        hint: 'run: oauthmail login work',
      }),
    );
    expect(line).not.toContain('\n');
    expect(line).toMatch(
      /^oauthmail: queued abc \(a sign-in is needed: the sign-in has ended \(AADSTS50173\)\); /,
    );
    expect(line).toMatch(/oauthmail queue run/);
    expect(line).toMatch(/to fix the cause: oauthmail login work$/);
  });
});

describe('passphrase sources', () => {
  it('OAUTHMAIL_PASSPHRASE, then OAUTHMAIL_PASSPHRASE_FILE, then $CREDENTIALS_DIRECTORY/oauthmail-passphrase', () => {
    const f = path.join(dir, 'pp');
    writeFileSync(f, 'from-file\n');
    const cred = path.join(dir, 'creds');
    mkdirSync(cred);
    writeFileSync(path.join(cred, 'oauthmail-passphrase'), 'from-systemd');
    expect(passphraseFrom({ OAUTHMAIL_PASSPHRASE: 'env', OAUTHMAIL_PASSPHRASE_FILE: f })).toBe('env');
    expect(passphraseFrom({ OAUTHMAIL_PASSPHRASE_FILE: f, CREDENTIALS_DIRECTORY: cred })).toBe('from-file');
    expect(passphraseFrom({ CREDENTIALS_DIRECTORY: cred })).toBe('from-systemd');
    expect(passphraseFrom({ CREDENTIALS_DIRECTORY: path.join(dir, 'none') })).toBeUndefined();
    expect(passphraseFrom({})).toBeUndefined();
    expect(() => passphraseFrom({ OAUTHMAIL_PASSPHRASE_FILE: path.join(dir, 'missing') })).toThrow(
      /cannot read the passphrase file .*missing: ENOENT/,
    );
    writeFileSync(f, '\n');
    expect(() => passphraseFrom({ OAUTHMAIL_PASSPHRASE_FILE: f })).toThrow(/is empty/);
  });
});

describe('token health: the sign-in has ended', () => {
  it('a refused refresh after the last working one ends it; a new sign-in or a later working refresh does not', () => {
    const t0 = new Date('2026-11-01T00:00:00Z');
    const t1 = new Date('2026-11-02T00:00:00Z');
    const t2 = new Date('2026-11-03T00:00:00Z');
    const t3 = new Date('2026-11-04T00:00:00Z');
    let r = applyEvent(undefined, 'microsoft', { kind: 'sign-in' }, t0);
    expect(refusedSignIn(r)).toBeUndefined();
    r = applyEvent(r, 'microsoft', { kind: 'refresh-refused', code: 'AADSTS50173' }, t1);
    expect(refusedSignIn(r)).toEqual({ at: t1.toISOString(), code: 'AADSTS50173' });
    r = applyEvent(r, 'microsoft', { kind: 'refresh', rotated: true }, t2);
    expect(refusedSignIn(r)).toBeUndefined();
    // refused again after a refresh that worked: a new end, with its own date
    r = applyEvent(r, 'microsoft', { kind: 'refresh-refused', code: 'AADSTS70008' }, t3);
    expect(refusedSignIn(r)).toEqual({ at: t3.toISOString(), code: 'AADSTS70008' });
    r = applyEvent(r, 'microsoft', { kind: 'sign-in' }, t3);
    expect(refusedSignIn(r)).toBeUndefined();
  });
});
