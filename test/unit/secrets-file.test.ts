import { promises as fsp } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSecretStore, isEncryptedContent } from '../../src/secrets/file.js';
import { ExitCode } from '../../src/errors/index.js';

let root: string;
let secretsDir: string;
// cheaper scrypt for most tests; one test below uses the real defaults
const kdf = { N: 1 << 10, r: 8, p: 1 };

beforeEach(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'oauthmail-file-'));
  secretsDir = path.join(root, 'data', 'oauthmail', 'secrets');
});
afterEach(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

const mode = async (p: string) => (await fsp.stat(p)).mode & 0o777;
const SECRET = 'rt.0AX~refresh-token-ÄÖÜ-€-😀-value';

describe('file store, plain', () => {
  it('round-trips, replaces and deletes, one file per profile and kind', async () => {
    const s = new FileSecretStore({ secretsDir });
    expect(s.kind).toBe('file');
    expect(s.location).toBe(secretsDir);
    expect(await s.get('work', 'token-cache')).toBeUndefined();
    await s.set('work', 'token-cache', SECRET);
    await s.set('work', 'client-secret', 'cs-1234567890');
    expect(await s.get('work', 'token-cache')).toBe(SECRET);
    expect(await fsp.readFile(path.join(secretsDir, 'work', 'token-cache'), 'utf8')).toBe(SECRET);
    await s.set('work', 'token-cache', 'replaced-value');
    expect(await s.get('work', 'token-cache')).toBe('replaced-value');
    expect(await s.has('work', 'token-cache')).toBe(true);
    expect(await s.delete('work', 'token-cache')).toBe(true);
    expect(await s.delete('work', 'token-cache')).toBe(false);
    expect(await s.get('work', 'token-cache')).toBeUndefined();
    expect(await s.get('work', 'client-secret')).toBe('cs-1234567890');
    // no temp files left behind by the atomic writes
    expect(await fsp.readdir(path.join(secretsDir, 'work'))).toEqual(['client-secret']);
  });

  it('writes files 0600 in 0700 folders', async () => {
    const old = process.umask(0o022);
    try {
      const s = new FileSecretStore({ secretsDir });
      await s.set('work', 'client-secret', 'cs-1234567890');
      expect(await mode(path.join(secretsDir, 'work', 'client-secret'))).toBe(0o600);
      expect(await mode(path.join(secretsDir, 'work'))).toBe(0o700);
      expect(await mode(secretsDir)).toBe(0o700);
    } finally {
      process.umask(old);
    }
  });

  it('refuses a secret file that others can read, with the chmod that fixes it', async () => {
    const s = new FileSecretStore({ secretsDir });
    await s.set('work', 'client-secret', 'cs-1234567890');
    const file = path.join(secretsDir, 'work', 'client-secret');
    await fsp.chmod(file, 0o644);
    await expect(s.get('work', 'client-secret')).rejects.toMatchObject({
      code: 'secret_file_insecure',
      exitCode: ExitCode.CONFIG,
      hint: expect.stringContaining(`chmod 600 ${file}`),
    });
    await fsp.chmod(file, 0o600);
    expect(await s.get('work', 'client-secret')).toBe('cs-1234567890');
  });

  it('never builds a path from an unsafe name', async () => {
    const s = new FileSecretStore({ secretsDir });
    for (const bad of ['../evil', 'a/b', '..', '.', '', 'a\0b', 'a\\b', 'x..y']) {
      await expect(s.set(bad, 'client-secret', 'v-1234567890')).rejects.toMatchObject({
        code: 'invalid_name',
      });
      await expect(s.get(bad, 'client-secret')).rejects.toMatchObject({ code: 'invalid_name' });
    }
    await expect(fsp.readdir(root)).resolves.toEqual([]);
  });
});

describe('file store, encrypted with OAUTHMAIL_PASSPHRASE', () => {
  it('round-trips, and the file holds a versioned envelope without the plaintext', async () => {
    const s = new FileSecretStore({ secretsDir, passphrase: 'correct horse battery', kdf });
    expect(s.encrypted).toBe(true);
    await s.set('work', 'token-cache', SECRET);
    const file = path.join(secretsDir, 'work', 'token-cache');
    const raw = await fsp.readFile(file, 'utf8');
    expect(isEncryptedContent(raw)).toBe(true);
    const env = JSON.parse(raw);
    expect(env).toMatchObject({ v: 2, alg: 'aes-256-gcm', kdf: 'scrypt', r: 8, p: 1 });
    expect(Buffer.from(env.salt, 'base64')).toHaveLength(16);
    expect(Buffer.from(env.kcv, 'base64')).toHaveLength(16);
    expect(Buffer.from(env.hc, 'base64')).toHaveLength(12);
    expect(Buffer.from(env.iv, 'base64')).toHaveLength(12);
    expect(Buffer.from(env.tag, 'base64')).toHaveLength(16);
    expect(raw).not.toContain(SECRET);
    expect(raw).not.toContain('refresh-token');
    expect(await mode(file)).toBe(0o600);
    expect(await s.get('work', 'token-cache')).toBe(SECRET);
    // a fresh salt and IV each write
    await s.set('work', 'token-cache', SECRET);
    const raw2 = JSON.parse(await fsp.readFile(file, 'utf8'));
    expect(raw2.salt).not.toBe(env.salt);
    expect(raw2.iv).not.toBe(env.iv);
  });

  it('uses scrypt N=2^15, r=8, p=1 by default', async () => {
    const s = new FileSecretStore({ secretsDir, passphrase: 'pw-default-params' });
    await s.set('work', 'client-secret', 'cs-1234567890');
    const env = JSON.parse(await fsp.readFile(path.join(secretsDir, 'work', 'client-secret'), 'utf8'));
    expect(env).toMatchObject({ N: 32768, r: 8, p: 1 });
    expect(await s.get('work', 'client-secret')).toBe('cs-1234567890');
  });

  it('without the passphrase or with a wrong one: a clear error, and the file unchanged byte for byte', async () => {
    await new FileSecretStore({ secretsDir, passphrase: 'right-passphrase', kdf }).set(
      'work',
      'token-cache',
      SECRET,
    );
    const file = path.join(secretsDir, 'work', 'token-cache');
    const before = await fsp.readFile(file);
    for (const [s, message] of [
      [
        new FileSecretStore({ secretsDir }),
        `cannot decrypt ${file}: it is encrypted and OAUTHMAIL_PASSPHRASE is not set.`,
      ],
      [
        new FileSecretStore({ secretsDir, passphrase: 'wrong-passphrase', kdf }),
        `cannot decrypt ${file}: wrong OAUTHMAIL_PASSPHRASE.`,
      ],
    ] as const) {
      await expect(s.get('work', 'token-cache')).rejects.toMatchObject({
        code: 'secret_decrypt_failed',
        exitCode: ExitCode.CONFIG,
        message,
      });
      // a write must not re-key or downgrade a file it cannot read
      await expect(s.set('work', 'token-cache', 'overwrite-attempt')).rejects.toMatchObject({
        code: 'secret_decrypt_failed',
      });
      expect((await fsp.readFile(file)).equals(before)).toBe(true);
    }
    expect(
      await new FileSecretStore({ secretsDir, passphrase: 'right-passphrase', kdf }).get(
        'work',
        'token-cache',
      ),
    ).toBe(SECRET);
  });

  it('detects a tampered ciphertext or header', async () => {
    const s = new FileSecretStore({ secretsDir, passphrase: 'pw-1234567890', kdf });
    await s.set('work', 'token-cache', SECRET);
    const file = path.join(secretsDir, 'work', 'token-cache');
    const env = JSON.parse(await fsp.readFile(file, 'utf8'));
    const ct = Buffer.from(env.ct, 'base64');
    ct[0] = ct[0]! ^ 1;
    // with the right passphrase, a change is reported as damage, not as a wrong passphrase
    await fsp.writeFile(file, JSON.stringify({ ...env, ct: ct.toString('base64') }), { mode: 0o600 });
    await expect(s.get('work', 'token-cache')).rejects.toMatchObject({ code: 'secret_file_corrupt' });
    await fsp.writeFile(file, JSON.stringify({ ...env, r: 4 }), { mode: 0o600 });
    await expect(s.get('work', 'token-cache')).rejects.toMatchObject({ code: 'secret_file_corrupt' });
  });

  it('reads a plain file written before the passphrase was set, and encrypts it on the next write', async () => {
    await new FileSecretStore({ secretsDir }).set('work', 'client-secret', 'cs-1234567890');
    const s = new FileSecretStore({ secretsDir, passphrase: 'pw-1234567890', kdf });
    expect(await s.get('work', 'client-secret')).toBe('cs-1234567890');
    await s.set('work', 'client-secret', 'cs-1234567890');
    expect(
      isEncryptedContent(await fsp.readFile(path.join(secretsDir, 'work', 'client-secret'), 'utf8')),
    ).toBe(true);
  });

  it('prepare, then set: a fresh salt made ahead, the file readable; prepare refuses a file of another passphrase', async () => {
    const s = new FileSecretStore({ secretsDir, passphrase: 'correct horse battery', kdf });
    // the first write of a profile (no folder, no file yet)
    await s.prepare('work', 'token-cache');
    await s.set('work', 'token-cache', SECRET);
    const file = path.join(secretsDir, 'work', 'token-cache');
    const first = JSON.parse(await fsp.readFile(file, 'utf8'));
    expect(await mode(file)).toBe(0o600);
    expect(await s.get('work', 'token-cache')).toBe(SECRET);
    // a rewrite: prepared keys are used once, so each write still has its own salt and IV
    await s.prepare('work', 'token-cache');
    await s.set('work', 'token-cache', `${SECRET}-2`);
    const second = JSON.parse(await fsp.readFile(file, 'utf8'));
    expect(second.salt).not.toBe(first.salt);
    expect(second.iv).not.toBe(first.iv);
    expect(
      await new FileSecretStore({ secretsDir, passphrase: 'correct horse battery' }).get(
        'work',
        'token-cache',
      ),
    ).toBe(`${SECRET}-2`);
    const before = await fsp.readFile(file, 'utf8');
    const other = new FileSecretStore({ secretsDir, passphrase: 'another one', kdf });
    await expect(other.prepare('work', 'token-cache')).rejects.toMatchObject({
      code: 'secret_decrypt_failed',
    });
    expect(await fsp.readFile(file, 'utf8')).toBe(before);
  });
});

describe('file store: damaged files, scrypt cost and old formats', () => {
  const file = () => path.join(secretsDir, 'work', 'token-cache');
  const store = (passphrase?: string) => new FileSecretStore({ secretsDir, passphrase, kdf });
  const envelope = async () => JSON.parse(await fsp.readFile(file(), 'utf8')) as Record<string, unknown>;
  const plant = async (e: Record<string, unknown>) => {
    await fsp.mkdir(path.dirname(file()), { recursive: true, mode: 0o700 });
    await fsp.writeFile(file(), JSON.stringify(e) + '\n', { mode: 0o600 });
  };
  const damaged = { code: 'secret_file_corrupt', exitCode: ExitCode.CONFIG };

  it('scrypt parameters above the defaults range are refused as damaged, before running scrypt', async () => {
    await store('pw-1234567890').set('work', 'token-cache', SECRET);
    const env = await envelope();
    // (N = 2^17 or r = 16 costs 4 times the default's memory; the report's N = 2^20, r = 32 costs 4 GB)
    for (const bad of [{ N: 1 << 17 }, { r: 16 }, { p: 4 }, { N: 1 << 20, r: 32 }, { N: 1000 }, { N: 'x' }]) {
      await plant({ ...env, ...bad });
      const t0 = Date.now();
      const err = await store('pw-1234567890')
        .get('work', 'token-cache')
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err, JSON.stringify(bad)).toMatchObject(damaged);
      expect((err as Error).message).toMatch(/damaged/);
      expect((err as Error).message).toContain(file());
      expect(Date.now() - t0).toBeLessThan(1000);
      // without a passphrase too: the file is damaged whatever the passphrase
      await expect(store().get('work', 'token-cache')).rejects.toMatchObject(damaged);
    }
  });

  it('a changed file with the right passphrase says damaged; a wrong or missing passphrase says so', async () => {
    await store('right-passphrase').set('work', 'token-cache', SECRET);
    const env = await envelope();
    const flip = (b64: unknown) => {
      const b = Buffer.from(String(b64), 'base64');
      b[0] = b[0]! ^ 1;
      return b.toString('base64');
    };
    for (const changed of [
      { ct: flip(env.ct) },
      { tag: flip(env.tag) },
      { iv: flip(env.iv) },
      { salt: flip(env.salt) },
      { N: (env.N as number) * 2 },
      { r: 4 },
      { salt: 'not base64!' },
      { iv: Buffer.alloc(5).toString('base64') },
    ]) {
      await plant({ ...env, ...changed });
      const err = await store('right-passphrase')
        .get('work', 'token-cache')
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err, JSON.stringify(changed)).toMatchObject(damaged);
      expect((err as Error).message, JSON.stringify(changed)).toMatch(/is damaged/);
      expect((err as Error).message).not.toMatch(/passphrase/i);
    }
    await plant(env);
    await expect(store('wrong-passphrase').get('work', 'token-cache')).rejects.toMatchObject({
      code: 'secret_decrypt_failed',
      message: `cannot decrypt ${file()}: wrong OAUTHMAIL_PASSPHRASE.`,
    });
    await expect(store().get('work', 'token-cache')).rejects.toMatchObject({
      code: 'secret_decrypt_failed',
      message: `cannot decrypt ${file()}: it is encrypted and OAUTHMAIL_PASSPHRASE is not set.`,
    });
    await fsp.writeFile(file(), '{"oauthmail":"secret","v":2,', { mode: 0o600 });
    await expect(store('right-passphrase').get('work', 'token-cache')).rejects.toMatchObject(damaged);
    expect(await (await import('node:fs/promises')).readFile(file(), 'utf8')).toContain('"v":2');
  });

  it('reads a version 1 file (written before the key check existed) and writes version 2 next time', async () => {
    // the v1 envelope, built here as earlier versions wrote it
    const { createCipheriv, randomBytes, scryptSync } = await import('node:crypto');
    const salt = randomBytes(16);
    const iv = randomBytes(12);
    const key = scryptSync('pw-old-file', salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p });
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(Buffer.from(JSON.stringify([1, 'aes-256-gcm', 'scrypt', kdf.N, kdf.r, kdf.p])));
    const ct = Buffer.concat([c.update(SECRET, 'utf8'), c.final()]);
    const v1 = {
      oauthmail: 'secret',
      v: 1,
      alg: 'aes-256-gcm',
      kdf: 'scrypt',
      ...kdf,
      salt: salt.toString('base64'),
      iv: iv.toString('base64'),
      tag: c.getAuthTag().toString('base64'),
      ct: ct.toString('base64'),
    };
    await plant(v1);
    expect(await store('pw-old-file').get('work', 'token-cache')).toBe(SECRET);
    // a v1 file has no key check: a failure cannot tell a wrong passphrase from a change
    await expect(store('another-passphrase').get('work', 'token-cache')).rejects.toMatchObject({
      code: 'secret_decrypt_failed',
      message: `cannot decrypt ${file()}: wrong OAUTHMAIL_PASSPHRASE, or the file was changed.`,
    });
    await store('pw-old-file').set('work', 'token-cache', SECRET);
    expect(await envelope()).toMatchObject({ v: 2 });
    expect(await store('pw-old-file').get('work', 'token-cache')).toBe(SECRET);
  });
});

describe('file store: temp files left by a crash', () => {
  const deadPid = () => {
    const r = spawnSync(process.execPath, ['-e', '0']);
    return r.pid;
  };
  const dirOf = () => path.join(secretsDir, 'work');
  const tmpName = (pid: number) => `.token-cache.${pid}.${'a1b2c3d4e5f6'}.tmp`;
  const plantTemp = async (pid: number, ageMs = 0) => {
    await fsp.mkdir(dirOf(), { recursive: true, mode: 0o700 });
    const f = path.join(dirOf(), tmpName(pid));
    await fsp.writeFile(f, SECRET, { mode: 0o600 });
    if (ageMs) {
      const t = new Date(Date.now() - ageMs);
      await fsp.utimes(f, t, t);
    }
    return f;
  };

  it('the next write removes temps of crashed writers (dead pid, or older than 10 minutes), not a live fresh one', async () => {
    const s = new FileSecretStore({ secretsDir });
    await s.set('work', 'token-cache', 'v1');
    const dead = await plantTemp(deadPid());
    const old = await plantTemp(1, 11 * 60_000); // pid 1 is alive, but nobody writes for 11 minutes
    const live = await plantTemp(process.pid); // a write in flight in a live process
    await s.set('work', 'token-cache', 'v2');
    const left = await fsp.readdir(dirOf());
    expect(left).not.toContain(path.basename(dead));
    expect(left).not.toContain(path.basename(old));
    expect(left).toContain(path.basename(live));
    expect(await s.get('work', 'token-cache')).toBe('v2');
  });

  it('delete (logout) removes them too, and with them the profile folder', async () => {
    const s = new FileSecretStore({ secretsDir });
    await s.set('work', 'token-cache', SECRET);
    await plantTemp(deadPid());
    expect(await s.delete('work', 'token-cache')).toBe(true);
    await expect(fsp.readdir(dirOf())).rejects.toMatchObject({ code: 'ENOENT' });
    // also when the token file itself is already gone
    await plantTemp(deadPid());
    expect(await s.delete('work', 'token-cache')).toBe(false);
    await expect(fsp.readdir(dirOf())).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
