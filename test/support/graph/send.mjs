// Sending through the local Microsoft Graph endpoint: sendMail (MIME and JSON), drafts, file
// attachments, upload sessions and draft send.
//
// What it copies (page names on learn.microsoft.com/graph):
// - "user: sendMail": POST /me/sendMail and /users/{id}/sendMail; JSON body {message,
//   saveToSentItems (default true)} or, with `Content-Type: text/plain`, the base64 MIME message
//   (Example 4); 202 Accepted with no body; a body that is not base64 is 400
//   ErrorMimeContentInvalidBase64String. The sent copy goes to Sent Items unless saveToSentItems is false.
// - 202 means accepted for delivery: a recipient the mail system later refuses produces a
//   non-delivery report, not an error of the request. Here Postfix's refusals are recorded
//   (GET /_admin/sent) and the request still answers 202.
// - "Send mail from another user" / "Send Outlook messages from another user": From other than the
//   mailbox without Send As permission is 403 ErrorSendAsDenied.
// - "Microsoft Graph service-specific throttling limits" / "Outlook service limits": a request
//   body over 4 MB is 413 ErrorRequestEntityTooLarge (enforced in index.mjs for every request);
//   larger messages go through a draft and upload sessions.
// - "Create message": POST /users/{id}/messages (JSON or base64 MIME) -> 201 with the draft.
// - "Add attachment" (message-post-attachments): POST .../messages/{id}/attachments with a
//   #microsoft.graph.fileAttachment (contentBytes base64) -> 201; for files under 3 MB.
// - "attachment: createUploadSession" and "Attach large files to Outlook messages or events": POST
//   .../messages/{id}/attachments/createUploadSession {AttachmentItem: {attachmentType: "file",
//   name, size, contentType?, isInline?, contentId?}} -> 201 {uploadUrl, expirationDateTime,
//   nextExpectedRanges: ["0-"]}; files of 3 MB to 150 MB (smaller: 400
//   ErrorAttachmentSizeShouldNotBeLessThanMinimumSize); PUT uploadUrl without Authorization, with
//   `Content-Range: bytes a-b/size` and at most 4 MB per request; 200 {nextExpectedRanges} until the
//   last range, then 201 Created with a Location header and no body. A range that does not
//   start at the next expected byte is 416. An unknown or finished session is 404.
// - "message: send": POST .../messages/{id}/send -> 202; the draft leaves Drafts.
// - "Exchange Online limits" (message limits): the message size limit applies at send, default
//   MaxSendSize 35 MB (admin `maxSendSize`): 400 ErrorMessageSizeExceeded.
// Departures: drafts live in this process's memory, not in the Drafts folder; the Location header
// points at this endpoint.
import { randomUUID } from 'node:crypto';
import { GraphError, MESSAGES } from './errors.mjs';
import { analyse, addAttachments, mimeFromJson } from './mime.mjs';
import { messageId } from './store.mjs';

const MB = 1024 * 1024;
export const UPLOAD_MIN = 3 * MB;
export const UPLOAD_MAX = 150 * MB;

export function createSender({ store, state, baseUrl }) {
  /** @type {Map<string, {mailbox: string, mime: Buffer, attachments: any[]}>} */
  const drafts = new Map();
  /** @type {Map<string, any>} */
  const sessions = new Map();
  let draftSeq = 0;

  /** Decode a sendMail / create-message body into MIME plus saveToSentItems. */
  async function bodyToMime(req, body, mailbox, { wrapped }) {
    const type = String(req.headers['content-type'] || '').toLowerCase();
    if (type.startsWith('text/plain')) {
      const text = body.toString('latin1').replace(/\s+/g, '');
      if (!text || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1)
        throw new GraphError(
          400,
          'ErrorMimeContentInvalidBase64String',
          'Invalid base64 string for MIME content.',
        );
      return { mime: Buffer.from(text, 'base64'), save: true };
    }
    let json;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new GraphError(
        400,
        'BadRequest',
        'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.',
      );
    }
    const message = wrapped ? json.message : json;
    if (!message || typeof message !== 'object')
      throw new GraphError(400, 'ErrorInvalidParameter', "The value of the parameter 'Message' is empty.");
    return { mime: await mimeFromJson(message, mailbox), save: json.saveToSentItems !== false };
  }

  /** The send itself: checks, delivery through Postfix, Sent Items. */
  async function submit(mailbox, mime, save) {
    const a = analyse(mime);
    const cfg = state.config;
    if (cfg.quotaExceeded.includes(mailbox))
      throw new GraphError(403, 'ErrorQuotaExceeded', MESSAGES.quotaExceeded);
    const refused =
      cfg.refuseSendAs === true || (Array.isArray(cfg.refuseSendAs) && cfg.refuseSendAs.includes(mailbox));
    if (refused || (a.from && a.from !== mailbox))
      throw new GraphError(403, 'ErrorSendAsDenied', MESSAGES.sendAsDenied);
    if (mime.length > cfg.maxSendSize)
      throw new GraphError(400, 'ErrorMessageSizeExceeded', MESSAGES.messageSizeExceeded);
    const rcpts = [...new Set([...a.to, ...a.cc, ...a.bcc])];
    if (!rcpts.length)
      throw new GraphError(
        400,
        'ErrorInvalidRecipients',
        "At least one recipient is not valid., A message can't be sent because it contains no recipients.",
      );
    const record = {
      mailbox,
      from: a.from || mailbox,
      to: a.to,
      cc: a.cc,
      bcc: a.bcc,
      size: mime.length,
      messageId: a.messageId,
      accepted: [],
      rejected: [],
    };
    try {
      const info = await store.deliver(mailbox, rcpts, a.delivered);
      record.accepted = info.accepted || [];
      record.rejected = info.rejected || [];
    } catch (e) {
      // 202 is "accepted for delivery": a refusal becomes a non-delivery report, not a request error
      record.rejected = rcpts;
      record.error = String(e?.response || e?.message || e);
    }
    state.sent.push(record);
    if (save) await store.append(mailbox, 'sentitems', mime);
  }

  function draftOf(mailbox, id) {
    const d = drafts.get(id);
    if (!d || d.mailbox !== mailbox) throw new GraphError(404, 'ErrorItemNotFound', MESSAGES.itemNotFound);
    return d;
  }

  return {
    drafts,
    async sendMail(req, body, mailbox) {
      const { mime, save } = await bodyToMime(req, body, mailbox, { wrapped: true });
      await submit(mailbox, mime, save);
    },

    async createDraft(req, body, mailbox) {
      const { mime } = await bodyToMime(req, body, mailbox, { wrapped: false });
      if (state.config.quotaExceeded.includes(mailbox))
        throw new GraphError(403, 'ErrorQuotaExceeded', MESSAGES.quotaExceeded);
      const id = messageId('#drafts', '0', ++draftSeq);
      drafts.set(id, { mailbox, mime, attachments: [] });
      const a = analyse(mime);
      const who = (x) => ({ emailAddress: { address: x, name: x } });
      return {
        id,
        isDraft: true,
        subject: a.subject,
        internetMessageId: a.messageId || null,
        from: who(a.from || mailbox),
        toRecipients: a.to.map(who),
        ccRecipients: a.cc.map(who),
        bccRecipients: a.bcc.map(who),
      };
    },

    isDraft: (id) => drafts.has(id),
    deleteDraft(mailbox, id) {
      draftOf(mailbox, id);
      drafts.delete(id);
    },

    addAttachment(body, mailbox, id) {
      const d = draftOf(mailbox, id);
      const a = JSON.parse(body.toString('utf8'));
      if (a['@odata.type'] !== '#microsoft.graph.fileAttachment')
        throw new GraphError(
          400,
          'ErrorInvalidParameter',
          'Only #microsoft.graph.fileAttachment is supported here.',
        );
      const bytes = Buffer.from(a.contentBytes || '', 'base64');
      const att = {
        id: randomUUID(),
        name: a.name,
        contentType: a.contentType,
        bytes,
        isInline: !!a.isInline,
        contentId: a.contentId,
      };
      d.attachments.push(att);
      return {
        '@odata.type': '#microsoft.graph.fileAttachment',
        id: att.id,
        name: att.name,
        contentType: att.contentType || 'application/octet-stream',
        size: bytes.length,
        isInline: att.isInline,
      };
    },

    createUploadSession(body, mailbox, id) {
      draftOf(mailbox, id);
      const item = JSON.parse(body.toString('utf8')).AttachmentItem;
      if (!item || item.attachmentType !== 'file' || !item.name || !Number.isInteger(item.size))
        throw new GraphError(
          400,
          'ErrorInvalidParameter',
          'AttachmentItem needs attachmentType "file", name and size.',
        );
      if (item.size < UPLOAD_MIN)
        throw new GraphError(
          400,
          'ErrorAttachmentSizeShouldNotBeLessThanMinimumSize',
          'Attachment size must be greater than the minimum size.',
        );
      if (item.size > UPLOAD_MAX)
        throw new GraphError(
          413,
          'ErrorRequestEntityTooLarge',
          'The attachment is larger than 150 MB, the limit of an upload session.',
        );
      const sid = randomUUID();
      const expires = new Date(Date.now() + 6 * 3600_000).toISOString();
      sessions.set(sid, { mailbox, draftId: id, item, chunks: [], next: 0, expires });
      return {
        '@odata.context': `${baseUrl()}/v1.0/$metadata#microsoft.graph.uploadSession`,
        uploadUrl: `${baseUrl()}/_upload/${sid}?authtoken=${randomUUID()}`,
        expirationDateTime: expires,
        nextExpectedRanges: ['0-'],
      };
    },

    /** PUT to an uploadUrl: returns [status, body, headers]. */
    uploadRange(req, body, sid) {
      const s = sessions.get(sid);
      if (!s) throw new GraphError(404, 'ErrorItemNotFound', 'The upload session was not found.');
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(req.headers['content-range'] || ''));
      if (!m)
        throw new GraphError(400, 'ErrorInvalidRequest', 'The Content-Range header is missing or malformed.');
      const [from, to, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (total !== s.item.size || to < from || to >= total || to - from + 1 !== body.length)
        throw new GraphError(
          400,
          'ErrorInvalidRequest',
          'The Content-Range header does not match the session or the body.',
        );
      if (from !== s.next)
        throw new GraphError(416, 'ErrorInvalidRange', `The next expected range starts at ${s.next}.`);
      s.chunks.push(body);
      s.next = to + 1;
      if (s.next < total)
        return [
          200,
          {
            '@odata.context': `${baseUrl()}/v1.0/$metadata#microsoft.graph.uploadSession`,
            expirationDateTime: s.expires,
            nextExpectedRanges: [`${s.next}-`],
          },
          {},
        ];
      sessions.delete(sid);
      const d = drafts.get(s.draftId);
      const attId = randomUUID();
      d?.attachments.push({
        id: attId,
        name: s.item.name,
        contentType: s.item.contentType,
        bytes: Buffer.concat(s.chunks),
        isInline: !!s.item.isInline,
        contentId: s.item.contentId,
      });
      return [
        201,
        null,
        {
          Location: `${baseUrl()}/v1.0/users('${s.mailbox}')/messages('${s.draftId}')/attachments('${attId}')`,
        },
      ];
    },

    async sendDraft(mailbox, id) {
      const d = draftOf(mailbox, id);
      const mime = addAttachments(d.mime, d.attachments);
      await submit(mailbox, mime, true);
      drafts.delete(id);
    },
  };
}
