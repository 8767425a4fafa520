// Where the local Microsoft Graph endpoint keeps mail: the stack's real Dovecot mailboxes (read
// over IMAPS, logging in as the mailbox with an Exchange-audience token this endpoint signs with the
// stack's JWT key, as Dovecot's oauth2 passdb wants), and delivery through the stack's Postfix
// (SMTP submission with STARTTLS and XOAUTH2), so that a message "sent through Graph" is in the
// recipient's Dovecot mailbox afterwards, exactly as SMTP delivers it.
//
// Identifiers are opaque to clients, as "Outlook mail API overview" and "Obtain immutable
// identifiers for Outlook resources" say: here a message ID encodes (folder, UIDVALIDITY, UID)
// and a folder ID the IMAP path. Moving a message gives it a new ID ("message: move": "the
// moved message" is returned, with its new id), as Graph does without ImmutableId.
// Well-known folder names ("mailFolder resource type": inbox, drafts, sentitems, deleteditems,
// junkemail, archive, outbox) are accepted wherever a folder ID is; the folder is created on first
// use (Exchange mailboxes always have them; Dovecot's are created lazily so that the listings
// other tests make of the same mailboxes do not change).
import { createPrivateKey, sign, randomUUID } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { GraphError, MESSAGES } from './errors.mjs';

export const WELL_KNOWN = {
  inbox: 'INBOX',
  drafts: 'Drafts',
  sentitems: 'Sent Items',
  deleteditems: 'Deleted Items',
  junkemail: 'Junk Email',
  archive: 'Archive',
  outbox: 'Outbox',
};

const b64u = (s) => Buffer.from(s, 'utf8').toString('base64url');
export const folderId = (path) => `AQMk${b64u(path)}`;
export const messageId = (path, uidValidity, uid) =>
  `AAMk${b64u(JSON.stringify([path, String(uidValidity), uid]))}`;

export function parseMessageId(id) {
  try {
    if (!id.startsWith('AAMk')) throw new Error();
    const [path, uidValidity, uid] = JSON.parse(Buffer.from(id.slice(4), 'base64url').toString('utf8'));
    if (typeof path !== 'string' || !Number.isInteger(uid)) throw new Error();
    return { path, uidValidity, uid };
  } catch {
    throw new GraphError(400, 'ErrorInvalidIdMalformed', 'Id is malformed.');
  }
}

/** The IMAP path of a folder ID or well-known name; `create` tells whether it may be created. */
export function parseFolderId(id) {
  const wk = WELL_KNOWN[String(id).toLowerCase()];
  if (wk) return { path: wk, wellKnown: true };
  if (!String(id).startsWith('AQMk'))
    throw new GraphError(400, 'ErrorInvalidIdMalformed', 'Id is malformed.');
  return { path: Buffer.from(id.slice(4), 'base64url').toString('utf8'), wellKnown: false };
}

/**
 * @param {{pki: {ca: string, jwtKey: string, kid: string}, issuer: string, tenantId: string, smtpPort: number, imapsPort: number}} o
 */
export function createStore(o) {
  const key = createPrivateKey(o.pki.jwtKey);
  function exchangeToken(mailbox) {
    const now = Math.floor(Date.now() / 1000);
    const head = b64u(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid: o.pki.kid }));
    const claims = b64u(
      JSON.stringify({
        aud: 'https://outlook.office.com',
        iss: o.issuer,
        tid: o.tenantId,
        iat: now - 5,
        nbf: now - 5,
        exp: now + 3600,
        sub: `graph-endpoint|${mailbox}`,
        upn: mailbox,
        email: mailbox,
        scope: 'IMAP.AccessAsUser.All SMTP.Send',
        scp: 'IMAP.AccessAsUser.All SMTP.Send',
        jti: randomUUID(),
      }),
    );
    return `${head}.${claims}.${sign('RSA-SHA256', Buffer.from(`${head}.${claims}`), key).toString('base64url')}`;
  }

  /** One IMAP connection per mailbox; operations on it run one at a time. */
  const conns = new Map();
  async function connect(mailbox) {
    const c = new ImapFlow({
      host: 'localhost',
      port: o.imapsPort,
      secure: true,
      tls: { ca: o.pki.ca },
      auth: { user: mailbox, accessToken: exchangeToken(mailbox) },
      logger: false,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 60_000,
    });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  }
  /** Run fn(imapClient) alone on the mailbox's connection. */
  function withImap(mailbox, fn) {
    let e = conns.get(mailbox);
    if (!e) conns.set(mailbox, (e = { client: null, chain: Promise.resolve() }));
    const run = e.chain.then(async () => {
      if (!e.client || !e.client.usable) e.client = await connect(mailbox);
      return fn(e.client);
    });
    e.chain = run.catch(() => undefined);
    return run;
  }

  async function ensureFolder(client, path) {
    if (path === 'INBOX') return;
    const list = await client.list();
    if (!list.some((f) => f.path === path)) await client.mailboxCreate(path);
  }

  /** Open a folder (creating a well-known one); 404 ErrorItemNotFound when it does not exist. */
  async function open(client, id) {
    const f = parseFolderId(id);
    if (f.wellKnown) await ensureFolder(client, f.path);
    try {
      await client.mailboxOpen(f.path);
    } catch {
      throw new GraphError(404, 'ErrorItemNotFound', MESSAGES.itemNotFound);
    }
    return { path: f.path, uidValidity: String(client.mailbox.uidValidity) };
  }

  async function openMessage(client, id) {
    const m = parseMessageId(id);
    try {
      await client.mailboxOpen(m.path);
    } catch {
      throw new GraphError(404, 'ErrorItemNotFound', MESSAGES.itemNotFound);
    }
    if (String(client.mailbox.uidValidity) !== String(m.uidValidity))
      throw new GraphError(404, 'ErrorItemNotFound', MESSAGES.itemNotFound);
    return m;
  }

  const person = (a) => ({ emailAddress: { name: a?.name || a?.address || '', address: a?.address || '' } });
  /** The message resource ("message resource type") for an imapflow FETCH result. */
  function resource(path, uidValidity, msg) {
    const env = msg.envelope || {};
    const date = (d) => (d ? new Date(d).toISOString().replace(/\.\d+Z$/, 'Z') : null);
    return {
      '@odata.etag': `W/"${msg.uid}"`,
      id: messageId(path, uidValidity, msg.uid),
      createdDateTime: date(msg.internalDate),
      lastModifiedDateTime: date(msg.internalDate),
      receivedDateTime: date(msg.internalDate),
      sentDateTime: date(env.date || msg.internalDate),
      hasAttachments: false,
      internetMessageId: env.messageId || null,
      subject: env.subject || '',
      isRead: msg.flags?.has('\\Seen') ?? false,
      isDraft: msg.flags?.has('\\Draft') ?? false,
      parentFolderId: folderId(path),
      from: env.from?.[0] ? person(env.from[0]) : null,
      sender: env.sender?.[0] ? person(env.sender[0]) : null,
      toRecipients: (env.to || []).map(person),
      ccRecipients: (env.cc || []).map(person),
      bccRecipients: [],
    };
  }
  const FETCH = { uid: true, envelope: true, flags: true, internalDate: true };

  return {
    exchangeToken,
    withImap,

    async listFolders(mailbox) {
      return withImap(mailbox, async (c) => {
        const out = [];
        for (const f of await c.list({ statusQuery: { messages: true, unseen: true } })) {
          if (f.flags?.has('\\Noselect')) continue;
          out.push({
            id: folderId(f.path),
            displayName: f.path === 'INBOX' ? 'Inbox' : f.name,
            parentFolderId: folderId(''),
            childFolderCount: 0,
            unreadItemCount: f.status?.unseen ?? 0,
            totalItemCount: f.status?.messages ?? 0,
            isHidden: false,
          });
        }
        return out;
      });
    },

    async getFolder(mailbox, id) {
      return withImap(mailbox, async (c) => {
        const { path } = await open(c, id);
        const st = await c.status(path, { messages: true, unseen: true });
        return {
          id: folderId(path),
          displayName: path === 'INBOX' ? 'Inbox' : path,
          parentFolderId: folderId(''),
          childFolderCount: 0,
          unreadItemCount: st.unseen ?? 0,
          totalItemCount: st.messages ?? 0,
          isHidden: false,
        };
      });
    },

    /** All UIDs of a folder and its UIDVALIDITY. */
    async uids(mailbox, id) {
      return withImap(mailbox, async (c) => {
        const { path, uidValidity } = await open(c, id);
        const uids = c.mailbox.exists ? (await c.search({ all: true }, { uid: true })) || [] : [];
        return { path, uidValidity, uids: uids.sort((a, b) => a - b) };
      });
    },

    /** Message resources of some UIDs of a folder (in the order given). */
    async resources(mailbox, path, uids) {
      if (!uids.length) return [];
      return withImap(mailbox, async (c) => {
        await c.mailboxOpen(path);
        const uv = String(c.mailbox.uidValidity);
        const byUid = new Map();
        for await (const m of c.fetch(uids.join(','), FETCH, { uid: true }))
          byUid.set(m.uid, resource(path, uv, m));
        return uids.map((u) => byUid.get(u)).filter(Boolean);
      });
    },

    async getMessage(mailbox, id) {
      return withImap(mailbox, async (c) => {
        const m = await openMessage(c, id);
        const msg = await c.fetchOne(String(m.uid), FETCH, { uid: true });
        if (!msg) throw new GraphError(404, 'ErrorItemNotFound', MESSAGES.itemNotFound);
        return resource(m.path, m.uidValidity, msg);
      });
    },

    /** The message's MIME bytes, exactly as stored ("Get MIME content of a message"). */
    async getMime(mailbox, id) {
      return withImap(mailbox, async (c) => {
        const m = await openMessage(c, id);
        const msg = await c.fetchOne(String(m.uid), { uid: true, source: true }, { uid: true });
        if (!msg?.source) throw new GraphError(404, 'ErrorItemNotFound', MESSAGES.itemNotFound);
        return msg.source;
      });
    },

    /** "Delete message": the item leaves the folder (Graph puts it in Recoverable Items). */
    async deleteMessage(mailbox, id) {
      return withImap(mailbox, async (c) => {
        const m = await openMessage(c, id);
        const found = await c.search({ uid: String(m.uid) }, { uid: true });
        if (!found?.length) throw new GraphError(404, 'ErrorItemNotFound', MESSAGES.itemNotFound);
        await c.messageDelete(String(m.uid), { uid: true });
      });
    },

    /** "message: move": the moved message, with its new ID. */
    async moveMessage(mailbox, id, destinationId) {
      return withImap(mailbox, async (c) => {
        const dest = parseFolderId(destinationId);
        if (dest.wellKnown) await ensureFolder(c, dest.path);
        else if (!(await c.list()).some((f) => f.path === dest.path))
          throw new GraphError(404, 'ErrorItemNotFound', MESSAGES.itemNotFound);
        const m = await openMessage(c, id);
        const r = await c.messageMove(String(m.uid), dest.path, { uid: true });
        const newUid = r?.uidMap?.get(m.uid);
        if (!newUid) throw new GraphError(404, 'ErrorItemNotFound', MESSAGES.itemNotFound);
        await c.mailboxOpen(dest.path);
        const msg = await c.fetchOne(String(newUid), FETCH, { uid: true });
        return resource(dest.path, String(c.mailbox.uidValidity), msg);
      });
    },

    /** Keep a copy in a folder (Sent Items after a send with saveToSentItems). */
    async append(mailbox, wellKnown, mime, flags = ['\\Seen']) {
      return withImap(mailbox, async (c) => {
        const path = WELL_KNOWN[wellKnown];
        await ensureFolder(c, path);
        await c.append(path, mime, flags);
      });
    },

    /**
     * Deliver through Postfix as the mailbox (submission, STARTTLS, XOAUTH2). Postfix's answer
     * decides: a refusal becomes the error of the send.
     */
    async deliver(mailbox, rcpts, mime) {
      const t = nodemailer.createTransport({
        host: 'localhost',
        port: o.smtpPort,
        secure: false,
        requireTLS: true,
        tls: { ca: o.pki.ca },
        auth: { type: 'OAuth2', user: mailbox, accessToken: exchangeToken(mailbox) },
        connectionTimeout: 10_000,
        socketTimeout: 60_000,
      });
      try {
        return await t.sendMail({ envelope: { from: mailbox, to: rcpts }, raw: mime });
      } finally {
        t.close();
      }
    },

    async close() {
      for (const e of conns.values()) await e.client?.logout().catch(() => undefined);
      conns.clear();
    },
  };
}
