// MIME handling of the local Microsoft Graph endpoint: recipients from the headers, the Bcc header
// taken out of what is delivered, attachments added to a draft, and JSON messages turned into MIME.
//
// What it copies:
// - "user: sendMail" / "Send Outlook messages from another user" and "Send mail in MIME format"
//   (Example 4 of user: sendMail): the request body is the whole RFC 5322 message, base64-encoded,
//   with `Content-Type: text/plain`; recipients come from the To, Cc and Bcc header fields (there is
//   no separate envelope), and Bcc recipients are not shown in the copies delivered.
// - "Create message" (user-post-messages) in MIME format: same body; the draft keeps the MIME.
// - "Attach large files to Outlook messages or events": an uploaded attachment becomes a file part
//   of the message (name, contentType, isInline, contentId of the AttachmentItem).
// Work is done on latin1 strings so that every byte outside the changed header fields is kept.
import addressparser from 'nodemailer/lib/addressparser/index.js';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { randomBytes } from 'node:crypto';

/** Split a message into its header block and body (the separator is kept with the header). */
export function splitMessage(buf) {
  const s = buf.toString('latin1');
  let i = s.indexOf('\r\n\r\n');
  let sepLen = 4;
  const j = s.indexOf('\n\n');
  if (i < 0 || (j >= 0 && j < i)) {
    i = j;
    sepLen = 2;
  }
  if (i < 0) return { head: s, body: '', eol: s.includes('\r\n') ? '\r\n' : '\n', sep: '' };
  return {
    head: s.slice(0, i),
    body: s.slice(i + sepLen),
    eol: sepLen === 4 ? '\r\n' : '\n',
    sep: s.slice(i, i + sepLen),
  };
}

/** Header fields with their folded continuation lines: [{name, value, raw}]. */
export function fields(head) {
  const out = [];
  for (const line of head.split(/(?<=\n)/)) {
    if (/^[ \t]/.test(line) && out.length) out[out.length - 1].raw += line;
    else out.push({ raw: line });
  }
  return out
    .filter((f) => f.raw.trim() !== '')
    .map((f) => {
      const k = f.raw.indexOf(':');
      return {
        raw: f.raw,
        name: k > 0 ? f.raw.slice(0, k).trim().toLowerCase() : '',
        value:
          k > 0
            ? f.raw
                .slice(k + 1)
                .replace(/\r?\n[ \t]/g, ' ')
                .trim()
            : '',
      };
    });
}

const flatten = (list) =>
  list.flatMap((a) => (a.group ? flatten(a.group) : a.address ? [a.address.toLowerCase()] : []));
export const addressesOf = (value) => flatten(addressparser(Buffer.from(value, 'latin1').toString('utf8')));

/**
 * Recipients and sender of a MIME message, and the bytes to deliver (Bcc fields removed).
 * @param {Buffer} mime
 */
export function analyse(mime) {
  const { head, body, sep } = splitMessage(mime);
  const fs = fields(head);
  const list = (name) => fs.filter((f) => f.name === name).flatMap((f) => addressesOf(f.value));
  const kept = fs
    .filter((f) => f.name !== 'bcc')
    .map((f) => f.raw)
    .join('');
  // the last kept field may have lost its line end if Bcc was the last field
  const keptHead = kept.replace(/\r?\n$/, '');
  const delivered = Buffer.from(keptHead + sep + body, 'latin1');
  const field = (name) => fs.find((f) => f.name === name)?.value;
  return {
    from: list('from')[0],
    sender: list('sender')[0],
    to: list('to'),
    cc: list('cc'),
    bcc: list('bcc'),
    subject: field('subject') ? Buffer.from(field('subject'), 'latin1').toString('utf8') : '',
    messageId: field('message-id'),
    date: field('date'),
    delivered,
  };
}

/** The Content-Type parameters of a header value: {type, params}. */
function contentType(value) {
  const [type, ...rest] = (value || 'text/plain').split(';');
  const params = {};
  for (const p of rest) {
    const m = /^\s*([^=\s]+)\s*=\s*"?([^"]*)"?\s*$/.exec(p);
    if (m) params[m[1].toLowerCase()] = m[2];
  }
  return { type: type.trim().toLowerCase(), params };
}

function attachmentPart(a, eol) {
  const b64 = Buffer.from(a.bytes)
    .toString('base64')
    .replace(/.{76}/g, `$&${eol}`)
    .replace(new RegExp(`${eol}$`), '');
  const name = String(a.name || 'attachment').replace(/["\\\r\n]/g, '_');
  const lines = [
    `Content-Type: ${a.contentType || 'application/octet-stream'}; name="${name}"`,
    `Content-Disposition: ${a.isInline ? 'inline' : 'attachment'}; filename="${name}"`,
    'Content-Transfer-Encoding: base64',
  ];
  if (a.contentId) lines.push(`Content-ID: <${a.contentId}>`);
  return lines.join(eol) + eol + eol + b64 + eol;
}

/**
 * The message with file attachments added: into its multipart/mixed, or wrapped into a new one.
 * @param {Buffer} mime
 * @param {{name: string, contentType?: string, bytes: Buffer, isInline?: boolean, contentId?: string}[]} attachments
 */
export function addAttachments(mime, attachments) {
  if (!attachments.length) return mime;
  const { head, body, eol } = splitMessage(mime);
  const fs = fields(head);
  const ct = contentType(fs.find((f) => f.name === 'content-type')?.value);
  const parts = attachments.map((a) => attachmentPart(a, eol));
  if (ct.type === 'multipart/mixed' && ct.params.boundary) {
    const close = `--${ct.params.boundary}--`;
    const at = body.lastIndexOf(close);
    if (at >= 0) {
      const add = parts.map((p) => `--${ct.params.boundary}${eol}${p}`).join('');
      return Buffer.from(head + eol + eol + body.slice(0, at) + add + body.slice(at), 'latin1');
    }
  }
  const boundary = `----=_graph_${randomBytes(12).toString('hex')}`;
  const isContent = (f) => f.name.startsWith('content-');
  const outer = fs
    .filter((f) => !isContent(f))
    .map((f) => f.raw.replace(/\r?\n$/, ''))
    .join(eol);
  const inner =
    fs
      .filter(isContent)
      .map((f) => f.raw.replace(/\r?\n$/, ''))
      .join(eol) || 'Content-Type: text/plain';
  const text = [
    outer,
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    inner,
    '',
    body.replace(/\r?\n$/, ''),
    ...parts.map((p) => `--${boundary}${eol}${p}`.replace(new RegExp(`${eol}$`), '')),
    `--${boundary}--`,
    '',
  ].join(eol);
  return Buffer.from(text, 'latin1');
}

const addr = (r) =>
  r?.emailAddress?.name
    ? { name: r.emailAddress.name, address: r.emailAddress.address }
    : r?.emailAddress?.address;

/**
 * A JSON message resource (user: sendMail JSON form, Create message) as MIME, Bcc kept (it is
 * removed at delivery like a MIME message's).
 */
export async function mimeFromJson(message, defaultFrom) {
  const mail = {
    from: addr(message.from) || defaultFrom,
    to: (message.toRecipients || []).map(addr),
    cc: (message.ccRecipients || []).map(addr),
    bcc: (message.bccRecipients || []).map(addr),
    replyTo: (message.replyTo || []).map(addr),
    subject: message.subject || '',
    headers: Object.fromEntries((message.internetMessageHeaders || []).map((h) => [h.name, h.value])),
    attachments: (message.attachments || []).map((a) => ({
      filename: a.name,
      contentType: a.contentType,
      content: Buffer.from(a.contentBytes || '', 'base64'),
      cid: a.isInline ? a.contentId : undefined,
    })),
  };
  const bodyType = String(message.body?.contentType || 'text').toLowerCase();
  if (bodyType === 'html') mail.html = message.body?.content || '';
  else mail.text = message.body?.content || '';
  const compiled = new MailComposer(mail).compile();
  compiled.keepBcc = true;
  return await new Promise((resolve, reject) =>
    compiled.build((err, buf) => (err ? reject(err) : resolve(buf))),
  );
}
