/**
 * What the Graph transport does to a MIME message before handing it over, and nothing more:
 * - Bcc: Graph takes the recipients from the To, Cc and Bcc header fields ("user: sendMail", MIME
 *   format; there is no envelope), so envelope recipients that are in neither To nor Cc are written
 *   into one Bcc field, for Graph only (Exchange removes it from the delivered copies). The
 *   message SMTP sends is never changed.
 * - Messages over Graph's 4 MB request limit: the large attachments of the top-level
 *   multipart/mixed are cut out (and uploaded separately, see client.ts); everything else
 *   stays byte for byte.
 * Work is done on latin1 strings, so every byte outside the changed parts is kept.
 */
import addressparser from 'nodemailer/lib/addressparser';
import { UsageError } from '../../errors/index.js';

interface Split {
  head: string;
  sep: string;
  body: string;
  eol: string;
}

function split(raw: Buffer): Split {
  const s = raw.toString('latin1');
  const crlf = s.indexOf('\r\n\r\n');
  const lf = s.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return { head: s, sep: '', body: '', eol: s.includes('\r\n') ? '\r\n' : '\n' };
  const useLf = crlf < 0 || (lf >= 0 && lf < crlf);
  const i = useLf ? lf : crlf;
  const sep = useLf ? '\n\n' : '\r\n\r\n';
  return { head: s.slice(0, i), sep, body: s.slice(i + sep.length), eol: useLf ? '\n' : '\r\n' };
}

interface Field {
  name: string;
  value: string;
  raw: string;
}

function fields(head: string): Field[] {
  const out: string[] = [];
  for (const line of head.split(/(?<=\n)/)) {
    if (/^[ \t]/.test(line) && out.length) out[out.length - 1] += line;
    else out.push(line);
  }
  return out
    .filter((l) => l.trim() !== '')
    .map((raw) => {
      const k = raw.indexOf(':');
      return {
        raw,
        name: k > 0 ? raw.slice(0, k).trim().toLowerCase() : '',
        value:
          k > 0
            ? raw
                .slice(k + 1)
                .replace(/\r?\n[ \t]/g, ' ')
                .trim()
            : '',
      };
    });
}

const addresses = (value: string): string[] =>
  addressparser(Buffer.from(value, 'latin1').toString('utf8'), { flatten: true })
    .map((a) => (a.address ?? '').toLowerCase())
    .filter(Boolean);

/**
 * The message as Graph must get it for these envelope recipients: a Bcc field with those not in
 * To or Cc (an existing Bcc field is replaced). Graph also sends to every To and Cc address, so
 * one the envelope leaves out cannot be honoured: that is refused (exit 2) rather than sent to.
 */
export function withEnvelopeBcc(raw: Buffer, envelopeTo: string[]): Buffer {
  const { head, sep, body, eol } = split(raw);
  const fs = fields(head);
  const visible = new Set(
    fs.filter((f) => f.name === 'to' || f.name === 'cc').flatMap((f) => addresses(f.value)),
  );
  const env = [...new Set(envelopeTo.map((a) => a.toLowerCase()))];
  const missing = [...visible].filter((a) => !env.includes(a));
  if (missing.length)
    throw new UsageError(
      `Microsoft Graph sends to every To and Cc address, but ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not among the recipients of this send.`,
      {
        code: 'graph_envelope_mismatch',
        hint: 'Send to every To/Cc address, or use the SMTP transport for envelopes that differ from the headers.',
      },
    );
  const bcc = env.filter((a) => !visible.has(a));
  const kept = fs.filter((f) => f.name !== 'bcc').map((f) => f.raw.replace(/\r?\n$/, ''));
  if (bcc.length) kept.push(`Bcc: ${bcc.join(`,${eol} `)}`);
  return Buffer.from(kept.join(eol) + (sep || eol + eol) + body, 'latin1');
}

export interface CutAttachment {
  name: string;
  contentType: string;
  isInline: boolean;
  contentId?: string;
  bytes: Buffer;
}

function param(value: string | undefined, name: string): string | undefined {
  if (!value) return undefined;
  const star = new RegExp(`;\\s*${name}\\*=(?:[^']*)'[^']*'([^;\\s]+)`, 'i').exec(value);
  if (star?.[1]) {
    try {
      return decodeURIComponent(star[1]);
    } catch {
      /* fall through */
    }
  }
  const m = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(value);
  const v = m?.[1] ?? m?.[2];
  return v === undefined ? undefined : Buffer.from(v, 'latin1').toString('utf8');
}

/**
 * Cut base64 attachments out of the top-level multipart/mixed, largest first, until the rest is
 * at most `maxRest` bytes. Returns the rest (a valid message) and the attachments cut out, or
 * undefined when the message has no such attachments.
 */
export function cutAttachments(
  raw: Buffer,
  maxRest: number,
): { rest: Buffer; attachments: CutAttachment[] } | undefined {
  const { head, sep, body } = split(raw);
  const ct = fields(head).find((f) => f.name === 'content-type')?.value ?? '';
  const boundary = param(ct, 'boundary');
  if (!/^multipart\/mixed\b/i.test(ct) || !boundary) return undefined;
  const esc = boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // delimiter lines (RFC 2046 §5.1.1): the line break before "--boundary" belongs to the delimiter
  const re = new RegExp(`(?:^|\\r?\\n)--${esc}(--)?[ \\t]*(?=\\r?\\n|$)`, 'g');
  const delims: Array<{ start: number; end: number; close: boolean }> = [];
  for (let m = re.exec(body); m; m = re.exec(body))
    delims.push({ start: m.index, end: m.index + m[0].length, close: !!m[1] });
  const parts: Array<{ start: number; end: number; att: CutAttachment }> = [];
  for (let i = 0; i + 1 < delims.length; i++) {
    const d = delims[i]!;
    if (d.close) break;
    const next = delims[i + 1]!;
    const text = body.slice(d.end, next.start).replace(/^\r?\n/, '');
    const p = split(Buffer.from(text, 'latin1'));
    const pf = fields(p.head);
    const get = (n: string) => pf.find((f) => f.name === n)?.value;
    const disp = get('content-disposition') ?? '';
    const cte = (get('content-transfer-encoding') ?? '').toLowerCase();
    const type = get('content-type') ?? 'application/octet-stream';
    if (cte !== 'base64' || /^multipart\//i.test(type) || (i === 0 && !/^attachment/i.test(disp))) continue;
    const name = param(disp, 'filename') ?? param(type, 'name') ?? 'attachment';
    const cid = get('content-id')?.replace(/^<|>$/g, '');
    parts.push({
      start: d.start,
      end: next.start,
      att: {
        name,
        contentType: type.split(';')[0]!.trim(),
        isInline: /^inline/i.test(disp),
        ...(cid ? { contentId: cid } : {}),
        bytes: Buffer.from(p.body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64'),
      },
    });
  }
  if (!parts.length) return undefined;
  const chosen = new Set<(typeof parts)[number]>();
  let size = raw.length;
  for (const p of [...parts].sort((a, b) => b.end - b.start - (a.end - a.start))) {
    if (size <= maxRest) break;
    chosen.add(p);
    size -= p.end - p.start;
  }
  let rest = body;
  for (const p of [...chosen].sort((a, b) => b.start - a.start))
    rest = rest.slice(0, p.start) + rest.slice(p.end);
  return {
    rest: Buffer.from(head + sep + rest, 'latin1'),
    attachments: parts.filter((p) => chosen.has(p)).map((p) => p.att),
  };
}
