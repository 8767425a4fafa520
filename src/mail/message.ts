/**
 * Build a message from command-line style options, checking everything that can be checked
 * before a connection is opened: addresses (RFC 5322 addr-spec, strict), header values (no CR/LF:
 * a line break in a header value would let the caller inject headers, RFC 5322 §2.2), header
 * names (printable ASCII without a colon, RFC 5322 §2.2), files that must exist.
 *
 * nodemailer does the MIME work: UTF-8 subjects become RFC 2047 encoded words, text + HTML
 * become multipart/alternative, attachments multipart/mixed, and Bcc is kept in the envelope
 * only (never written into the message header).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { SendMailOptions } from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser';
import type { Profile } from '../config/schema.js';
import { isEmail } from '../config/schema.js';
import { ConfigError, UsageError } from '../errors/index.js';

export type Priority = 'high' | 'normal' | 'low';

export interface MessageOptions {
  from?: string;
  to?: string[];
  cc?: string[];
  bcc?: string[];
  replyTo?: string;
  subject?: string;
  /** Plain-text body. */
  text?: string;
  /** HTML body (already read). */
  html?: string;
  /** Attachment files, or in-memory attachments (batch templates). */
  attachments?: Array<string | { filename: string; content: string | Buffer; contentType?: string }>;
  /** Extra headers as "Name: value". */
  headers?: string[];
  /** Append the profile's signature (default true when the profile has one). */
  signature?: boolean;
  priority?: Priority;
  /** A fixed Message-ID (batches use a stable one so a receiver can spot a duplicate). */
  messageId?: string;
}

export interface BuiltMessage {
  mail: SendMailOptions;
  envelope: { from: string; to: string[] };
  /** Bcc recipients (in the envelope, not in the header). */
  bcc: string[];
}

const CRLF = /[\r\n\0]/;
// RFC 5322 §3.6.8 field-name: printable US-ASCII except colon
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;
// Headers that have a flag of their own (or that nodemailer must own for the MIME structure).
const RESERVED = new Map<string, string>([
  ['from', '--from'],
  ['to', '--to'],
  ['cc', '--cc'],
  ['bcc', '--bcc'],
  ['reply-to', '--reply-to'],
  ['subject', '--subject'],
  ['content-type', '--html / --attach'],
  ['content-transfer-encoding', ''],
  ['mime-version', ''],
]);

function noLineBreaks(what: string, value: string): void {
  if (CRLF.test(value)) {
    throw new UsageError(`${what} must not contain line breaks`, {
      code: 'header_injection',
      hint: 'a line break in a header value would start a new header; remove it',
    });
  }
}

export interface ParsedAddress {
  name: string;
  address: string;
}

/**
 * Parse one address argument. It may hold a list ("a@x, B <b@y>"), since that is what people
 * paste; every address in it must be a plain addr-spec (no quoted local parts, no groups).
 */
export function parseAddressList(what: string, value: string): ParsedAddress[] {
  noLineBreaks(what, value);
  const parsed = addressparser(value, { flatten: true });
  const out: ParsedAddress[] = [];
  for (const a of parsed) {
    const address = (a.address || '').trim();
    if (!isEmail(address)) {
      throw new UsageError(
        `${what}: ${JSON.stringify(a.address || a.name || value)} is not an email address`,
        {
          code: 'bad_address',
          hint: 'use name@example.com or "Name <name@example.com>"',
        },
      );
    }
    out.push({ name: a.name || '', address });
  }
  if (out.length === 0) {
    throw new UsageError(`${what}: ${JSON.stringify(value)} is not an email address`, {
      code: 'bad_address',
      hint: 'use name@example.com or "Name <name@example.com>"',
    });
  }
  return out;
}

function one(what: string, value: string): ParsedAddress {
  const list = parseAddressList(what, value);
  if (list.length !== 1)
    throw new UsageError(`${what} takes one address (got ${list.length})`, { code: 'bad_address' });
  return list[0]!;
}

const toNm = (a: ParsedAddress) => (a.name ? { name: a.name, address: a.address } : a.address);

function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

/** Parse "Name: value" extra headers; refuse line breaks, bad names and headers that have a flag. */
export function parseHeaders(headers: string[] = []): Array<{ key: string; value: string }> {
  return headers.map((h) => {
    noLineBreaks(`--header ${JSON.stringify(h.slice(0, 40))}`, h);
    const i = h.indexOf(':');
    const key = i > 0 ? h.slice(0, i).trim() : '';
    if (!key || !FIELD_NAME.test(key)) {
      throw new UsageError(`--header takes "Name: value" (got ${JSON.stringify(h)})`, {
        code: 'bad_header',
        hint: 'example: --header "X-Ticket: 1234"',
      });
    }
    const flag = RESERVED.get(key.toLowerCase());
    if (flag !== undefined) {
      throw new UsageError(`--header cannot set ${key}${flag ? `; use ${flag}` : ''}`, {
        code: 'bad_header',
      });
    }
    return { key, value: h.slice(i + 1).trim() };
  });
}

/**
 * Check and assemble a message. Throws UsageError (exit 2) for bad input and ConfigError (exit 3)
 * when there is no sender at all. Reads nothing from the network; attachment files must exist.
 */
export async function buildMessage(
  opts: MessageOptions,
  profile: Partial<Profile> = {},
): Promise<BuiltMessage> {
  const fromStr = opts.from ?? profile.from ?? profile.user;
  if (!fromStr) {
    throw new ConfigError("no sender: give --from or set the profile's from or user", {
      code: 'no_from',
      hint: 'oauthmail profile edit NAME --set from=you@example.com',
    });
  }
  const from = one('--from', fromStr);
  const to = (opts.to ?? []).flatMap((v) => parseAddressList('--to', v));
  const cc = (opts.cc ?? []).flatMap((v) => parseAddressList('--cc', v));
  const bcc = (opts.bcc ?? []).flatMap((v) => parseAddressList('--bcc', v));
  if (to.length + cc.length + bcc.length === 0) {
    throw new UsageError('no recipients: give at least one --to, --cc or --bcc', { code: 'no_recipients' });
  }
  const replyToStr = opts.replyTo ?? profile.replyTo;
  const replyTo = replyToStr ? one('--reply-to', replyToStr) : undefined;
  const subject = opts.subject ?? '';
  noLineBreaks('--subject', subject);
  if (opts.messageId !== undefined) noLineBreaks('Message-ID', opts.messageId);
  const headers = parseHeaders(opts.headers);

  let text = opts.text;
  let html = opts.html;
  const sig = opts.signature !== false ? profile.signature : undefined;
  if (sig) {
    // RFC 3676 §4.3: the signature separator is "-- " on a line of its own
    if (text !== undefined || html === undefined)
      text = `${(text ?? '').replace(/\s+$/, '')}\n\n-- \n${sig}\n`;
    if (html !== undefined) {
      const block = `<div class="signature">-- <br>${escapeHtml(sig).replace(/\r?\n/g, '<br>')}</div>`;
      html = /<\/body>/i.test(html) ? html.replace(/<\/body>/i, `${block}</body>`) : html + block;
    }
  }

  const attachments: NonNullable<SendMailOptions['attachments']> = [];
  for (const a of opts.attachments ?? []) {
    if (typeof a === 'string') {
      try {
        const st = await fsp.stat(a);
        if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      } catch (e) {
        throw new UsageError(
          `--attach ${a}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not a readable file'}`,
          {
            code: 'bad_attachment',
            cause: e,
          },
        );
      }
      attachments.push({ filename: path.basename(a), path: path.resolve(a) });
    } else {
      noLineBreaks('attachment file name', a.filename);
      attachments.push({
        filename: a.filename,
        content: a.content,
        ...(a.contentType ? { contentType: a.contentType } : {}),
      });
    }
  }

  const mail: SendMailOptions = {
    from: toNm(from),
    subject,
    ...(to.length ? { to: to.map(toNm) } : {}),
    ...(cc.length ? { cc: cc.map(toNm) } : {}),
    ...(bcc.length ? { bcc: bcc.map(toNm) } : {}),
    ...(replyTo ? { replyTo: toNm(replyTo) } : {}),
    ...(text !== undefined ? { text } : {}),
    ...(html !== undefined ? { html } : {}),
    ...(attachments.length ? { attachments } : {}),
    ...(headers.length ? { headers: headers.map((h) => ({ key: h.key, value: h.value })) } : {}),
    ...(opts.priority && opts.priority !== 'normal' ? { priority: opts.priority } : {}),
    ...(opts.messageId ? { messageId: opts.messageId } : {}),
  };
  const rcpt = [...to, ...cc, ...bcc].map((a) => a.address);
  return {
    mail,
    envelope: {
      from: from.address,
      to: [...new Set(rcpt.map((r) => r.toLowerCase()))].map((l) => rcpt.find((r) => r.toLowerCase() === l)!),
    },
    bcc: bcc.map((a) => a.address),
  };
}

/** Render the MIME message exactly as it would be sent (for --dry-run). Bcc is not in it. */
export async function renderMessage(built: BuiltMessage): Promise<Buffer> {
  const { default: nodemailer } = await import('nodemailer');
  const t = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  // the stream transport keeps Bcc in the output; the real send never writes it (RFC 5322 §3.6.3)
  const { bcc: _bcc, ...mail } = built.mail;
  const info = await t.sendMail({ ...mail, envelope: built.envelope });
  return info.message as Buffer;
}
