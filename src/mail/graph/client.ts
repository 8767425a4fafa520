/**
 * A Microsoft Graph mail client on Node's fetch: send a MIME message (sendMail, or a draft plus
 * upload sessions over Graph's 4 MB request limit), list folders and messages, delta rounds,
 * download a message's MIME ($value), delete and move.
 *
 * Graph pages used ("learn.microsoft.com/graph/api/…"): user-sendmail (MIME as base64 text/plain,
 * 202), user-post-messages (draft from MIME, 201), message-post-attachments (under 3 MB),
 * attachment-createuploadsession + "Attach large files to Outlook messages or events" (3–150 MB,
 * ranges of at most 4 MB, no Authorization header on the upload URL), message-send (202),
 * user-list-mailfolders, user-list-messages, message-delta, "Get MIME content of a message",
 * message-delete, message-move. Retries: http.ts; errors: graph-errors.ts.
 */
import type { TokenSource } from '../token-source.js';
import { MailServerError } from '../../errors/index.js';
import { DEFAULT_HTTP, checkLink, graphRequest, type GraphHttpOptions, type GraphRequest } from './http.js';
import type { GraphRequestContext } from './graph-errors.js';
import { cutAttachments, withEnvelopeBcc, type CutAttachment } from './mime.js';

export const GRAPH_BASE_URL = 'https://graph.microsoft.com/v1.0';
/** "Outlook service limits": 4 MB per request. */
export const GRAPH_REQUEST_LIMIT = 4 * 1024 * 1024;
/** Attachments from this size go through an upload session (smaller ones are refused there). */
export const UPLOAD_SESSION_MIN = 3 * 1024 * 1024;
/** Upload ranges: a multiple of 320 KiB under the 4 MB request limit. */
export const UPLOAD_CHUNK = 12 * 320 * 1024;

export interface GraphClientOptions extends Partial<Omit<GraphHttpOptions, 'token'>> {
  tokens: Pick<TokenSource, 'user' | 'getAccessToken' | 'profile'>;
  /** default https://graph.microsoft.com/v1.0; tests point it at the local endpoint */
  baseUrl?: string;
  /** the mailbox (/users/{mailbox}); default tokens.user. `me: true` uses /me instead. */
  mailbox?: string;
  me?: boolean;
}

export interface SendResult {
  /** Graph answered 202 Accepted: accepted for delivery, not delivered. */
  status: 202;
  accepted: true;
  /** sendMail in one request, or a draft with attachments uploaded separately */
  method: 'sendMail' | 'draft';
  uploadSessions: number;
  requestId: string | null;
}

export interface GraphFolder {
  id: string;
  displayName: string;
  totalItemCount?: number;
  unreadItemCount?: number;
  parentFolderId?: string;
}

export interface GraphMessage {
  id: string;
  subject?: string;
  internetMessageId?: string | null;
  receivedDateTime?: string;
  isRead?: boolean;
  parentFolderId?: string;
  from?: { emailAddress: { name?: string; address?: string } } | null;
  [k: string]: unknown;
}

export interface DeltaRound {
  /** new or changed messages of this round */
  messages: GraphMessage[];
  /** IDs Graph reports as removed */
  removed: string[];
  /** keep it for the next round */
  deltaLink: string;
  /** the delta link given was refused (410 SyncStateNotFound): this round started from scratch */
  restarted: boolean;
}

interface Page<T> {
  value: T[];
  '@odata.nextLink'?: string;
  '@odata.deltaLink'?: string;
}

export class GraphClient {
  readonly baseUrl: string;
  readonly mailbox: string;
  private readonly http: GraphHttpOptions;
  private readonly root: string;
  private readonly profile: string | undefined;

  constructor(o: GraphClientOptions) {
    this.baseUrl = (o.baseUrl ?? GRAPH_BASE_URL).replace(/\/+$/, '');
    this.mailbox = (o.mailbox ?? o.tokens.user).toLowerCase();
    this.root = o.me ? `${this.baseUrl}/me` : `${this.baseUrl}/users/${encodeURIComponent(this.mailbox)}`;
    this.profile = o.tokens.profile;
    const { tokens: _t, baseUrl: _b, mailbox: _m, me: _me, ...rest } = o;
    this.http = {
      ...DEFAULT_HTTP,
      ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
      token: (opts) => o.tokens.getAccessToken(opts),
    };
  }

  private ctx(action: string, idempotent: boolean, from?: string): GraphRequestContext {
    return {
      action,
      mailbox: this.mailbox,
      idempotent,
      ...(from ? { from } : {}),
      ...(this.profile ? { profile: this.profile } : {}),
    };
  }

  private req(r: GraphRequest) {
    return graphRequest(this.http, r);
  }

  private async json<T>(action: string, url: string): Promise<T> {
    const res = await this.req({ method: 'GET', url, ctx: this.ctx(action, true) });
    return res.json<T>();
  }

  /**
   * Send a whole MIME message unchanged but for the Bcc field Graph needs (envelope recipients not
   * in To/Cc). Up to 4 MB of base64 in one sendMail; larger through a draft, its big attachments
   * uploaded on their own, then send.
   */
  async sendMime(raw: Buffer, envelope: { from?: string; to: string[] }): Promise<SendResult> {
    const mime = withEnvelopeBcc(raw, envelope.to);
    const from = envelope.from;
    const b64 = mime.toString('base64');
    if (b64.length <= GRAPH_REQUEST_LIMIT) {
      const res = await this.req({
        method: 'POST',
        url: `${this.root}/sendMail`,
        body: b64,
        contentType: 'text/plain',
        ctx: this.ctx('send', false, from),
      });
      return {
        status: 202,
        accepted: true,
        method: 'sendMail',
        uploadSessions: 0,
        requestId: res.headers.get('request-id'),
      };
    }
    // base64 of the draft must fit one request: 3 bytes become 4, and leave room for headers
    const cut = cutAttachments(mime, Math.floor((GRAPH_REQUEST_LIMIT * 3) / 4) - 64 * 1024);
    if (!cut)
      throw new MailServerError(
        `The message is ${mime.length} bytes, over Microsoft Graph's 4 MB request limit, and has no attachments that can be uploaded separately.`,
        {
          code: 'graph_message_too_large',
          hint: 'Put large content in attachments (multipart/mixed), or use the SMTP transport.',
        },
      );
    const draft = await this.req({
      method: 'POST',
      url: `${this.root}/messages`,
      body: cut.rest.toString('base64'),
      contentType: 'text/plain',
      ctx: this.ctx('create draft', false, from),
    });
    const draftId = draft.json<{ id: string }>().id;
    const msgUrl = `${this.root}/messages/${encodeURIComponent(draftId)}`;
    let sessions = 0;
    try {
      for (const a of cut.attachments) {
        if (a.bytes.length >= UPLOAD_SESSION_MIN) {
          await this.upload(msgUrl, a, from);
          sessions++;
        } else {
          await this.req({
            method: 'POST',
            url: `${msgUrl}/attachments`,
            body: JSON.stringify({
              '@odata.type': '#microsoft.graph.fileAttachment',
              name: a.name,
              contentType: a.contentType,
              isInline: a.isInline,
              ...(a.contentId ? { contentId: a.contentId } : {}),
              contentBytes: a.bytes.toString('base64'),
            }),
            contentType: 'application/json',
            ctx: this.ctx('add attachment', false, from),
          });
        }
      }
    } catch (e) {
      // leave no half-built draft behind
      await this.req({ method: 'DELETE', url: msgUrl, ctx: this.ctx('delete draft', true) }).catch(
        () => undefined,
      );
      throw e;
    }
    const sent = await this.req({
      method: 'POST',
      url: `${msgUrl}/send`,
      ctx: this.ctx('send', false, from),
    });
    return {
      status: 202,
      accepted: true,
      method: 'draft',
      uploadSessions: sessions,
      requestId: sent.headers.get('request-id'),
    };
  }

  private async upload(msgUrl: string, a: CutAttachment, from?: string): Promise<void> {
    const session = await this.req({
      method: 'POST',
      url: `${msgUrl}/attachments/createUploadSession`,
      body: JSON.stringify({
        AttachmentItem: {
          attachmentType: 'file',
          name: a.name,
          size: a.bytes.length,
          contentType: a.contentType,
          isInline: a.isInline,
          ...(a.contentId ? { contentId: a.contentId } : {}),
        },
      }),
      contentType: 'application/json',
      ctx: this.ctx('create upload session', false, from),
    });
    const { uploadUrl } = session.json<{ uploadUrl: string }>();
    for (let off = 0; off < a.bytes.length; off += UPLOAD_CHUNK) {
      const chunk = a.bytes.subarray(off, Math.min(off + UPLOAD_CHUNK, a.bytes.length));
      await this.req({
        method: 'PUT',
        url: uploadUrl,
        auth: false,
        body: chunk,
        contentType: 'application/octet-stream',
        headers: { 'Content-Range': `bytes ${off}-${off + chunk.length - 1}/${a.bytes.length}` },
        ctx: this.ctx('upload attachment', true, from),
      });
    }
  }

  /** Every folder of the mailbox (following @odata.nextLink). */
  async listFolders(): Promise<GraphFolder[]> {
    const out: GraphFolder[] = [];
    for await (const f of this.pages<GraphFolder>('list folders', `${this.root}/mailFolders?$top=100`))
      out.push(...f.value);
    return out;
  }

  /** Messages of a folder (ID or well-known name such as "inbox"), newest first, page by page. */
  async *listMessages(folder: string, top = 50): AsyncGenerator<GraphMessage[]> {
    const url = `${this.root}/mailFolders/${encodeURIComponent(folder)}/messages?$top=${top}`;
    for await (const p of this.pages<GraphMessage>('list messages', url)) yield p.value;
  }

  private async *pages<T>(
    action: string,
    first: string,
    headers?: Record<string, string>,
  ): AsyncGenerator<Page<T>> {
    let url: string | undefined = first;
    while (url) {
      const res = await this.req({
        method: 'GET',
        url,
        ...(headers ? { headers } : {}),
        ctx: this.ctx(action, true),
      });
      const page = res.json<Page<T>>();
      yield page;
      url = page['@odata.nextLink']
        ? checkLink(page['@odata.nextLink'], this.baseUrl, this.ctx(action, true))
        : undefined;
    }
  }

  /**
   * One delta round of a folder: everything the first time (no link), then what changed since
   * `deltaLink`. A link Graph no longer knows (410 SyncStateNotFound, also mid-round) starts a
   * round from scratch, flagged `restarted`: the caller skips what it already saved by ID.
   */
  async delta(folder: string, deltaLink?: string, pageSize = 50): Promise<DeltaRound> {
    const first = `${this.root}/mailFolders/${encodeURIComponent(folder)}/messages/delta`;
    const headers = { Prefer: `odata.maxpagesize=${pageSize}` };
    const round = async (start: string): Promise<Omit<DeltaRound, 'restarted'>> => {
      const messages: GraphMessage[] = [];
      const removed: string[] = [];
      let link: string | undefined;
      for await (const p of this.pages<GraphMessage & { '@removed'?: unknown }>('delta', start, headers)) {
        for (const m of p.value) {
          if (m['@removed']) removed.push(m.id);
          else messages.push(m);
        }
        if (p['@odata.deltaLink']) link = p['@odata.deltaLink'];
      }
      if (!link)
        throw new MailServerError('Microsoft Graph (delta) ended a round without a deltaLink.', {
          code: 'graph_bad_answer',
        });
      return { messages, removed, deltaLink: checkLink(link, this.baseUrl, this.ctx('delta', true)) };
    };
    const start = deltaLink ? checkLink(deltaLink, this.baseUrl, this.ctx('delta', true)) : first;
    try {
      return { ...(await round(start)), restarted: false };
    } catch (e) {
      if ((e as { code?: string }).code !== 'graph_sync_state_not_found') throw e;
      return { ...(await round(first)), restarted: true };
    }
  }

  /** The message's MIME bytes as Exchange stores them ("Get MIME content of a message"). */
  async getMime(messageId: string): Promise<Buffer> {
    const res = await this.req({
      method: 'GET',
      url: `${this.root}/messages/${encodeURIComponent(messageId)}/$value`,
      ctx: this.ctx('download message', true),
    });
    return res.body;
  }

  async deleteMessage(messageId: string): Promise<void> {
    await this.req({
      method: 'DELETE',
      url: `${this.root}/messages/${encodeURIComponent(messageId)}`,
      ctx: this.ctx('delete message', true),
    });
  }

  /** Move a message; Graph gives the moved message a new ID, which is returned. */
  async moveMessage(messageId: string, destinationFolder: string): Promise<string> {
    const res = await this.req({
      method: 'POST',
      url: `${this.root}/messages/${encodeURIComponent(messageId)}/move`,
      body: JSON.stringify({ destinationId: destinationFolder }),
      contentType: 'application/json',
      ctx: this.ctx('move message', false),
    });
    return res.json<{ id: string }>().id;
  }

  /** GET /users/{id} (or /me): the mailbox answers (for `test`). */
  async getUser(): Promise<{ id: string; userPrincipalName?: string; mail?: string; displayName?: string }> {
    return this.json('get user', this.root);
  }
}
