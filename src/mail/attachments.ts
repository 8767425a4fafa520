/**
 * Attachments: safe file names, and saving without ever overwriting.
 *
 * A name in a message is attacker-controlled. It becomes a plain file name inside --attachments DIR:
 * no folder parts (a name like ../../etc/passwd keeps only "passwd"), no control or bidi characters,
 * none of the characters Windows forbids (<>:"/\|?*), no leading dots (hidden files, "..") and no
 * trailing dots or spaces (Windows drops them), no device names (CON, NUL, COM1, LPT1..., with or
 * without an extension: Windows opens the device), never empty, and at most 200 bytes of UTF-8 with
 * the extension kept. A name already taken gets " (1)", " (2)"... before the extension.
 *
 * Saving is crash-safe and race-free: content goes to a temp file in DIR, is fsynced, and then
 * hard-linked to the final name (link() fails with EEXIST instead of replacing, unlike rename()),
 * then the temp file is removed. A half-written attachment never appears under its final name.
 */
import { promises as fsp } from 'node:fs';
import { fsyncDir, writeTempFile } from '../util/fs.js';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ImapFlow, MessageStructureObject } from 'imapflow';

/** Longest file name we produce, in UTF-8 bytes (most file systems allow 255). */
export const MAX_NAME_BYTES = 200;

// CON, PRN, AUX, NUL, COM0-9, LPT0-9 (and the superscript digits Windows also reserves)
const DEVICE_RE = /^(con|prn|aux|nul|conin\$|conout\$|clock\$|com[0-9¹²³]|lpt[0-9¹²³])$/i;
// C0/C1 controls, DEL, bidi overrides and isolates, zero-width characters, BOM
// eslint-disable-next-line no-control-regex -- control characters are what this removes from file names
const BAD_CHARS_RE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;
const WINDOWS_FORBIDDEN_RE = /[<>:"|?*]/g;

function utf8Truncate(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > maxBytes) break;
    out += ch;
    bytes += b;
  }
  return out;
}

/** Split "name.ext" (a short, plain extension only) so that truncation and suffixes keep ".ext". */
export function splitExt(name: string): [stem: string, ext: string] {
  const m = /^(.+?)(\.[A-Za-z0-9]{1,10})$/.exec(name);
  return m ? [m[1]!, m[2]!] : [name, ''];
}

/**
 * A file name that is safe on every OS for a name taken from a message.
 * `fallback` is used when nothing usable is left (it is sanitised too).
 */
export function sanitizeFilename(
  raw: string | undefined | null,
  fallback = 'attachment',
  maxBytes = MAX_NAME_BYTES,
): string {
  let s = typeof raw === 'string' ? raw.normalize('NFC') : '';
  // keep the last path component: "../../etc/passwd" -> "passwd", "C:\\x\\y.txt" -> "y.txt"
  const parts = s.split(/[/\\]+/);
  s = parts[parts.length - 1] ?? '';
  s = s.replace(BAD_CHARS_RE, '').replace(WINDOWS_FORBIDDEN_RE, '_');
  s = s.replace(/\s+/g, ' ').trim();
  // no leading dots (hidden, "." and ".."), no trailing dots or spaces (Windows strips them)
  s = s.replace(/^[.\s]+/, '').replace(/[.\s]+$/, '');
  if (!s) return fallback === raw ? 'attachment' : sanitizeFilename(fallback, 'attachment', maxBytes);
  // device names are reserved with any extension: "CON", "con.txt", "Com1.tar.gz"
  const base = s.split('.')[0]!.trim();
  if (DEVICE_RE.test(base)) s = `_${s}`;
  if (Buffer.byteLength(s) > maxBytes) {
    const [stem, ext] = splitExt(s);
    s = utf8Truncate(stem, maxBytes - Buffer.byteLength(ext)).replace(/[.\s]+$/, '') + ext;
  }
  return s;
}

/** "name (n).ext", still within the byte limit. */
export function withSuffix(name: string, n: number, maxBytes = MAX_NAME_BYTES): string {
  if (n === 0) return name;
  const [stem, ext] = splitExt(name);
  const suffix = ` (${n})`;
  return utf8Truncate(stem, maxBytes - Buffer.byteLength(ext) - suffix.length) + suffix + ext;
}

/**
 * Write `content` into DIR under `name` (sanitised), never replacing a file: a taken name gets a
 * suffix. Returns the path written.
 */
export async function saveUnique(dir: string, name: string, content: Readable | Buffer): Promise<string> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const safe = sanitizeFilename(name);
  const tmp = path.join(dir, `.oauthmail-${process.pid}-${randomBytes(6).toString('hex')}.part`);
  await writeTempFile(tmp, content);
  try {
    for (let n = 0; ; n++) {
      const file = path.join(dir, withSuffix(safe, n));
      try {
        await fsp.link(tmp, file);
        await fsyncDir(dir);
        return file;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || n > 10_000) throw e;
      }
    }
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

export interface AttachmentPart {
  part: string;
  /** The name as the message gives it (undefined when it gives none). */
  filename: string | undefined;
  type: string;
  size: number | undefined;
}

/**
 * The attachments of a message from its BODYSTRUCTURE: parts with disposition "attachment", and
 * non-text parts that carry a file name (inline images with a name count too).
 */
export function findAttachments(node: MessageStructureObject | undefined): AttachmentPart[] {
  const out: AttachmentPart[] = [];
  const walk = (n: MessageStructureObject, depth: number) => {
    if (depth > 50) return;
    if (n.childNodes?.length) {
      for (const c of n.childNodes) walk(c, depth + 1);
      return;
    }
    const type = (n.type ?? '').toLowerCase();
    const dispo = (n.disposition ?? '').toLowerCase();
    const hasNameParam =
      (n.dispositionParameters && 'filename' in n.dispositionParameters) ||
      (n.parameters && 'name' in n.parameters);
    const filename = n.dispositionParameters?.filename ?? n.parameters?.name;
    const isAttachment =
      dispo === 'attachment' ||
      (hasNameParam && !type.startsWith('multipart/') && !(dispo === 'inline' && type.startsWith('text/')));
    if (!isAttachment || !n.part) return;
    out.push({ part: n.part, filename, type, size: n.size });
  };
  if (node) walk(node, 0);
  return out;
}

const EXT_BY_TYPE: Record<string, string> = {
  'text/plain': '.txt',
  'text/html': '.html',
  'text/calendar': '.ics',
  'application/pdf': '.pdf',
  'image/png': '.png',
  'image/jpeg': '.jpg',
  'image/gif': '.gif',
  'message/rfc822': '.eml',
  'application/zip': '.zip',
};

/**
 * Download each attachment of message `uid` (streamed, transfer encoding removed, text left in its
 * own charset) into DIR under a safe, unique name. Returns the paths written.
 */
export async function saveAttachments(
  client: ImapFlow,
  uid: number,
  structure: MessageStructureObject | undefined,
  dir: string,
  opts: { prefix?: string } = {},
): Promise<string[]> {
  const saved: string[] = [];
  for (const a of findAttachments(structure)) {
    const dl = await client.download(String(uid), a.part, {
      uid: true,
      decodeText: false,
      chunkSize: 1024 * 1024,
    });
    if (!dl.content) continue;
    const given = dl.meta.filename ?? a.filename;
    const fallback = `${opts.prefix ?? `message-${uid}`}-part-${a.part}${EXT_BY_TYPE[a.type] ?? '.bin'}`;
    const name = sanitizeFilename(given, fallback);
    saved.push(await saveUnique(dir, name, dl.content));
  }
  return saved;
}
