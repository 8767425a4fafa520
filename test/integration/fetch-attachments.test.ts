/**
 * Attachments through IMAP: messages whose attachments are named `../../etc/passwd`, `CON`, "" and
 * a 300-character name are put in place with APPEND, fetched with the real CLI
 * (`fetch --attachments DIR`, profile signed in by device code), and every attachment must land
 * inside DIR under a safe name with the right bytes, never overwriting another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { ImapFlow } from 'imapflow';
import { cliHome, type CliHome } from '../support/cli.js';
import { ALICE, addMicrosoftProfile, signInDevice, startTestIdp, type TestIdp } from '../support/signin.js';
import { adminClient, freshFolder, stack } from './fetch-support.js';

const s = stack();
let idp: TestIdp;
let h: CliHome;
let admin: ImapFlow;
let work: string;
const folders: string[] = [];

const LONG = 'L'.repeat(296) + '.pdf';
const NAMES = ['../../etc/passwd', 'CON', '', LONG];

interface Part {
  name: string;
  bytes: Buffer;
}

/** multipart/mixed with a text body and one base64 attachment per part (exact bytes known). */
function messageWith(parts: Part[], subject: string): Buffer {
  const b = `b-${randomBytes(8).toString('hex')}`;
  let m =
    'From: Sender <sender@fabrikam.test>\r\nTo: alice@contoso.test\r\n' +
    `Subject: ${subject}\r\nDate: Thu, 20 Nov 2025 10:00:00 +0000\r\n` +
    `Message-ID: <${randomBytes(6).toString('hex')}@oauthmail.test>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: multipart/mixed; boundary="${b}"\r\n\r\n` +
    `--${b}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nsee the attachments\r\n`;
  for (const p of parts) {
    const q = JSON.stringify(p.name); // a quoted-string: the names hold no quotes or backslashes
    m +=
      `--${b}\r\nContent-Type: application/octet-stream; name=${q}\r\n` +
      `Content-Disposition: attachment; filename=${q}\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
      p.bytes.toString('base64').replace(/.{76}/g, '$&\r\n').replace(/\r\n$/, '') +
      '\r\n';
  }
  return Buffer.from(m + `--${b}--\r\n`);
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-fetch-att-'));
  idp = await startTestIdp();
  expect((await idp.admin('config', { deviceCodeInterval: 1 })).status).toBe(200);
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
  const add = await addMicrosoftProfile(h, 'work', idp.url, [
    '--imap',
    `localhost:${s.imapsPort}`,
    '--imap-security',
    'tls',
  ]);
  expect(add.code, add.stderr).toBe(0);
  const login = await signInDevice(h, 'work', idp);
  expect(login.code, login.stderr).toBe(0);
  admin = await adminClient(s, ALICE.upn);
}, 120_000);

afterAll(async () => {
  for (const f of folders) await admin?.mailboxDelete(f).catch(() => undefined);
  await admin?.logout().catch(() => undefined);
  await idp?.close();
  if (work) rmSync(work, { recursive: true, force: true });
  if (h) rmSync(h.dir, { recursive: true, force: true });
});

describe('fetch --attachments with hostile names', () => {
  it('every attachment lands inside DIR under a safe name with its bytes; a second message never overwrites the first', async () => {
    const folder = await freshFolder(admin, 'att');
    folders.push(folder);
    const first = NAMES.map((name) => ({
      name,
      bytes: randomBytes(1000 + Math.floor(Math.random() * 5000)),
    }));
    const second = NAMES.map((name) => ({ name, bytes: randomBytes(700) }));
    await admin.append(folder, messageWith(first, 'hostile names 1'));
    await admin.append(folder, messageWith(second, 'hostile names 2'));

    // DIR two levels down, so that "../../etc/passwd" taken literally would land in work/etc/passwd
    const dir = path.join(work, 'a', 'b', 'att');
    mkdirSync(path.dirname(dir), { recursive: true });
    const out = path.join(work, 'mail');
    const r = await h.run(
      ['fetch', '-p', 'work', '--mailbox', folder, '--out', out, '--attachments', dir, '--json'],
      { timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);

    expect(existsSync(path.join(work, 'etc'))).toBe(false);
    expect(existsSync(path.join(work, 'a', 'etc'))).toBe(false);
    const real = realpathSync(dir);
    const files = readdirSync(dir);
    expect(files).toHaveLength(8);
    const byContent = new Map([...first, ...second].map((p) => [p.bytes.toString('hex'), p]));
    const seen = new Set<string>();
    for (const f of files) {
      const full = path.join(dir, f);
      expect(realpathSync(full).startsWith(real + path.sep)).toBe(true);
      expect(lstatSync(full).isFile()).toBe(true);
      // safe on every OS: no separators, no leading dot, no device name, no forbidden characters, short
      // eslint-disable-next-line no-control-regex -- control characters are exactly what must be absent
      expect(f).not.toMatch(/[/\\<>:"|?*\x00-\x1f]/);
      expect(f.startsWith('.')).toBe(false);
      expect(f).not.toMatch(/[. ]$/);
      expect(f.split('.')[0]!.trim()).not.toMatch(/^(con|prn|aux|nul|com\d|lpt\d)$/i);
      expect(Buffer.byteLength(f)).toBeLessThanOrEqual(200);
      // the right bytes: each file is exactly one of the attachments, each attachment exactly once
      const hex = readFileSync(full).toString('hex');
      expect(byContent.has(hex), `${f} holds bytes of no attachment`).toBe(true);
      expect(seen.has(hex)).toBe(false);
      seen.add(hex);
    }
    const nameOf = (p: Part) => files.find((f) => readFileSync(path.join(dir, f)).equals(p.bytes))!;
    // what each hostile name became
    expect(nameOf(first[0]!)).toBe('passwd');
    expect(nameOf(second[0]!)).toBe('passwd (1)');
    expect(nameOf(first[1]!)).toBe('_CON');
    expect(nameOf(second[1]!)).toBe('_CON (1)');
    expect(nameOf(first[2]!)).toMatch(/-part-\d+\.bin$/);
    expect(nameOf(first[3]!)).toMatch(/^L+\.pdf$/);
    expect(nameOf(second[3]!)).toMatch(/^L+ \(1\)\.pdf$/);
    // the JSON lines list the attachments of each message
    const saved = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { uid: number; attachments: string[] });
    expect(saved.map((x) => x.attachments.length)).toEqual([4, 4]);
    expect(saved.flatMap((x) => x.attachments.map((a) => path.basename(a))).sort()).toEqual(
      [...files].sort(),
    );
    // no temp files left behind
    expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });
});
