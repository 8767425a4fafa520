import { promises as fsp } from 'node:fs';
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
    expect(env).toMatchObject({ v: 1, alg: 'aes-256-gcm', kdf: 'scrypt', r: 8, p: 1 });
    expect(Buffer.from(env.salt, 'base64')).toHaveLength(16);
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
    const message = `cannot decrypt ${file}: wrong or missing OAUTHMAIL_PASSPHRASE.`;

    for (const s of [
      new FileSecretStore({ secretsDir }),
      new FileSecretStore({ secretsDir, passphrase: 'wrong-passphrase', kdf }),
    ]) {
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
    await fsp.writeFile(file, JSON.stringify({ ...env, ct: ct.toString('base64') }), { mode: 0o600 });
    await expect(s.get('work', 'token-cache')).rejects.toMatchObject({ code: 'secret_decrypt_failed' });
    await fsp.writeFile(file, JSON.stringify({ ...env, r: 9 }), { mode: 0o600 });
    await expect(s.get('work', 'token-cache')).rejects.toMatchObject({ code: 'secret_decrypt_failed' });
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
