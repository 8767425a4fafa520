// The local Microsoft Graph endpoint (tests only): HTTPS on loopback with the stack's PKI, the
// mail part of Graph v1.0 over the stack's real Postfix and Dovecot. See README.md here for the
// routes and the admin API, and the header of each file for the documentation pages it copies.
//   import { startGraph } from './index.mjs';
//   const g = await startGraph({ pkiDir, idpUrl, smtpPort, imapsPort });   // g.url = https://localhost:PORT
//
// What this file copies:
// - "Microsoft Graph REST API v1.0": paths under /v1.0, `/me` or `/users/{id | userPrincipalName}`.
// - "Microsoft Graph error responses and resource types": error body, `request-id` and
//   `client-request-id` headers (the client's `client-request-id` is echoed).
// - "Microsoft Graph throttling guidance": 429 Too Many Requests with `Retry-After` (seconds); also
//   503 Service Unavailable and 504 Gateway Timeout, which may carry Retry-After too. Here they come
//   from faults the admin API queues (POST /_admin/faults).
// - "Outlook service limits" / "Microsoft Graph service-specific throttling limits": 4 MB request
//   size; 413 ErrorRequestEntityTooLarge.
// - "Get MIME content of a message": GET .../messages/{id}/$value answers the MIME bytes as text/plain.
// - "List mailFolders", "Get mailFolder", "List messages" (default page 10, `$top` up to 1000,
//   `@odata.nextLink`; default order receivedDateTime desc), "Get message", "Delete message" (204),
//   "message: move" (201 with the moved message).
// - "message: delta" and "Use delta query to track changes in Microsoft Graph data": the first
//   round lists every message; pages of `Prefer: odata.maxpagesize` (default 10, answered in
//   `Preference-Applied`) linked by `@odata.nextLink` ($skiptoken); the last page has
//   `@odata.deltaLink` ($deltatoken); a later round with that link returns new messages and
//   `@removed: {reason: "deleted"}` rows for those gone; a token the service no longer knows is
//   410 Gone with code SyncStateNotFound (the client must start over without a token).
// - "user: sendMail" and friends: see send.mjs. "Get user": GET /me, /users/{id} (User.Read,
//   User.ReadBasic.All or User.Read.All).
// - MailboxNotEnabledForRESTAPI (404, "The mailbox is either inactive, soft-deleted, or is hosted
//   on-premise.") for a mailbox the admin API marks disabled.
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphError, errorBody, newRequestId, MESSAGES } from './errors.mjs';
import { createAuth } from './auth.mjs';
import { createStore, folderId } from './store.mjs';
import { createSender } from './send.mjs';
import { createAdmin } from './admin.mjs';
import { createDelta } from './delta.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

const DEFAULT_CONFIG = () => ({
  refuseSendAs: false,
  disabledMailboxes: [],
  quotaExceeded: [],
  maxSendSize: 35 * 1024 * 1024,
  appAccessPolicy: {},
});

function isLoopback(a) {
  return a === '127.0.0.1' || a === '::1' || a === '::ffff:127.0.0.1';
}

/**
 * Read the body; more than `limit` bytes is 413. The rest is read and dropped (not buffered), so
 * that the client gets the answer rather than a broken pipe.
 */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n <= limit) chunks.push(c);
      else chunks.length = 0;
    });
    req.on('end', () =>
      n > limit
        ? reject(new GraphError(413, 'ErrorRequestEntityTooLarge', MESSAGES.tooLarge))
        : resolve(Buffer.concat(chunks)),
    );
    req.on('error', reject);
  });
}

/**
 * @param {{pkiDir: string, idpUrl: string, smtpPort: number, imapsPort: number, port?: number, host?: string, fixtures?: string, log?: boolean}} o
 */
export async function startGraph(o) {
  const read = (f) => readFileSync(join(o.pkiDir, f), 'utf8');
  const fixtures = JSON.parse(readFileSync(o.fixtures || join(HERE, '..', 'fixtures.json'), 'utf8'));
  const tenantId = fixtures.microsoft.tenantId;
  const ca = read('ca.pem');
  const auth = createAuth({ idpUrl: o.idpUrl, tenantId, ca, fixtures });
  await auth.loadKeys();
  const store = createStore({
    pki: { ca, jwtKey: read('jwt-key.pem'), kid: read('jwt-kid').trim() },
    issuer: auth.issuer,
    tenantId,
    smtpPort: o.smtpPort,
    imapsPort: o.imapsPort,
  });
  const state = {
    config: DEFAULT_CONFIG(),
    faults: [],
    log: [],
    sent: [],
    deltaTokens: new Map(),
    rounds: new Map(),
  };
  let baseUrl = '';
  const sender = createSender({ store, state, baseUrl: () => baseUrl });

  const send = (res, status, body, headers = {}) => {
    if (body === null || body === undefined) {
      res.writeHead(status, headers).end();
    } else if (Buffer.isBuffer(body)) {
      res
        .writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': body.length, ...headers })
        .end(body);
    } else {
      const data = JSON.stringify(body);
      res
        .writeHead(status, {
          'Content-Type': 'application/json; odata.metadata=minimal; charset=utf-8',
          'Content-Length': Buffer.byteLength(data),
          ...headers,
        })
        .end(data);
    }
  };

  /** The mailbox of /me or /users/{id}, checked for `op`. */
  function mailboxFor(principal, seg, op) {
    let mailbox;
    if (seg === 'me') {
      if (principal.kind === 'app')
        throw new GraphError(
          400,
          'BadRequest',
          '/me request is only valid with delegated authentication flow.',
        );
      mailbox = principal.upn;
    } else {
      mailbox = auth.resolveUser(seg);
      if (!mailbox)
        throw new GraphError(
          404,
          'ErrorInvalidUser',
          `The requested user '${decodeURIComponent(seg)}' is invalid.`,
        );
    }
    if (state.config.disabledMailboxes.includes(mailbox))
      throw new GraphError(404, 'MailboxNotEnabledForRESTAPI', MESSAGES.mailboxNotEnabled);
    if (op) auth.authorize(principal, mailbox, op, state.config);
    return mailbox;
  }

  const delta = createDelta({ store, state, send, baseUrl: () => baseUrl });

  // ---- routes ------------------------------------------------------------------------------------
  async function route(req, res, url, body) {
    const p = url.pathname;
    const m = req.method;
    const upload = /^\/_upload\/([0-9a-f-]+)$/.exec(p);
    if (upload && m === 'PUT') {
      const [status, out, headers] = sender.uploadRange(req, body, upload[1]);
      return send(res, status, out, headers);
    }
    const r = /^\/v1\.0\/(me|users\/([^/]+))(\/.*)?$/.exec(p);
    if (!r)
      throw new GraphError(
        400,
        'BadRequest',
        `Resource not found for the segment '${p.split('/')[2] || ''}'.`,
      );
    const principal = await auth.authenticate(req.headers.authorization);
    const seg = r[1] === 'me' ? 'me' : r[2];
    const rest = r[3] || '';
    const base = `${baseUrl}${p}`;
    const ctxUrl = `${baseUrl}/v1.0/$metadata`;

    if (rest === '' && m === 'GET') {
      const mailbox = mailboxFor(principal, seg, null);
      const ok =
        principal.kind === 'app'
          ? principal.roles.has('User.Read.All')
          : ['User.Read', 'User.ReadBasic.All', 'User.Read.All'].some((s) => principal.scopes.has(s)) ||
            (seg === 'me' && principal.scopes.size > 0);
      if (!ok)
        throw new GraphError(
          403,
          'Authorization_RequestDenied',
          'Insufficient privileges to complete the operation.',
        );
      const u = fixtures.microsoft.users.find((x) => x.upn.toLowerCase() === mailbox);
      return send(res, 200, {
        '@odata.context': `${ctxUrl}#users/$entity`,
        id: u?.oid ?? folderId(mailbox).slice(4, 40),
        displayName: u?.name ?? mailbox,
        mail: mailbox,
        userPrincipalName: mailbox,
      });
    }
    if (rest === '/sendMail' && m === 'POST') {
      await sender.sendMail(req, body, mailboxFor(principal, seg, 'send'));
      return send(res, 202, null);
    }
    if ((rest === '/messages' || /^\/mailFolders\/drafts\/messages$/i.test(rest)) && m === 'POST') {
      return send(res, 201, await sender.createDraft(req, body, mailboxFor(principal, seg, 'write')));
    }
    if (rest === '/mailFolders' && m === 'GET') {
      const value = await store.listFolders(mailboxFor(principal, seg, 'read'));
      return send(res, 200, { '@odata.context': `${ctxUrl}#users('${seg}')/mailFolders`, value });
    }
    let x;
    if ((x = /^\/mailFolders\/([^/]+)$/.exec(rest)) && m === 'GET') {
      return send(
        res,
        200,
        await store.getFolder(mailboxFor(principal, seg, 'read'), decodeURIComponent(x[1])),
      );
    }
    if ((x = /^\/mailFolders\/([^/]+)\/messages\/(?:microsoft\.graph\.)?delta$/.exec(rest)) && m === 'GET') {
      return delta(
        res,
        url,
        mailboxFor(principal, seg, 'read'),
        decodeURIComponent(x[1]),
        req.headers.prefer,
        base,
      );
    }
    if ((x = /^\/mailFolders\/([^/]+)\/messages$/.exec(rest)) && m === 'GET') {
      const mailbox = mailboxFor(principal, seg, 'read');
      const top = Math.max(1, Math.min(1000, Number(url.searchParams.get('$top') || 10)));
      const skip = Math.max(0, Number(url.searchParams.get('$skip') || 0));
      const all = await store.uids(mailbox, decodeURIComponent(x[1]));
      const desc = all.uids.slice().reverse();
      const value = await store.resources(mailbox, all.path, desc.slice(skip, skip + top));
      const out = { '@odata.context': `${ctxUrl}#users('${seg}')/mailFolders('${x[1]}')/messages`, value };
      if (skip + top < desc.length) out['@odata.nextLink'] = `${base}?$top=${top}&$skip=${skip + top}`;
      return send(res, 200, out);
    }
    // message routes: /messages/{id}... or /mailFolders/{fid}/messages/{id}...
    if ((x = /^(?:\/mailFolders\/[^/]+)?\/messages\/([^/]+)(\/.*)?$/.exec(rest))) {
      const id = decodeURIComponent(x[1]);
      const tail = x[2] || '';
      if (sender.isDraft(id)) {
        if (tail === '/send' && m === 'POST') {
          await sender.sendDraft(mailboxFor(principal, seg, 'send'), id);
          return send(res, 202, null);
        }
        if (tail === '/attachments' && m === 'POST')
          return send(res, 201, sender.addAttachment(body, mailboxFor(principal, seg, 'write'), id));
        if (tail === '/attachments/createUploadSession' && m === 'POST')
          return send(res, 201, sender.createUploadSession(body, mailboxFor(principal, seg, 'write'), id));
        if (tail === '' && m === 'DELETE') {
          sender.deleteDraft(mailboxFor(principal, seg, 'write'), id);
          return send(res, 204, null);
        }
      }
      if (tail === '' && m === 'GET')
        return send(res, 200, await store.getMessage(mailboxFor(principal, seg, 'read'), id));
      if (tail === '/$value' && m === 'GET')
        return send(res, 200, await store.getMime(mailboxFor(principal, seg, 'read'), id));
      if (tail === '' && m === 'DELETE') {
        await store.deleteMessage(mailboxFor(principal, seg, 'write'), id);
        return send(res, 204, null);
      }
      if (tail === '/move' && m === 'POST') {
        const mailbox = mailboxFor(principal, seg, 'write');
        let dest;
        try {
          dest = JSON.parse(body.toString('utf8')).destinationId;
        } catch {
          /* below */
        }
        if (!dest)
          throw new GraphError(
            400,
            'ErrorInvalidParameter',
            "The value of the parameter 'DestinationId' is empty.",
          );
        return send(res, 201, await store.moveMessage(mailbox, id, dest));
      }
      if (tail.startsWith('/attachments') || tail === '/send')
        throw new GraphError(404, 'ErrorItemNotFound', MESSAGES.itemNotFound);
    }
    throw new GraphError(400, 'BadRequest', `Unsupported request ${m} ${p}.`);
  }

  const { admin, takeFault, FAULT_CODES } = createAdmin(state, send, DEFAULT_CONFIG);

  const handler = async (req, res) => {
    const requestId = newRequestId();
    const clientRequestId = String(req.headers['client-request-id'] || requestId);
    res.setHeader('request-id', requestId);
    res.setHeader('client-request-id', clientRequestId);
    let url;
    try {
      url = new URL(req.url || '/', 'https://localhost');
    } catch {
      return res.writeHead(400).end();
    }
    let decoded = url.pathname;
    try {
      decoded = decodeURIComponent(url.pathname);
    } catch {
      /* keep it encoded */
    }
    // the log and the faults' `path` match see the decoded path (/users/alice@contoso.test/...)
    const entry = { method: req.method, path: decoded, status: 0, at: Date.now() };
    // the client's own correlation id, when it sent one: tests find their requests by it
    if (req.headers['client-request-id']) entry.clientRequestId = clientRequestId;
    res.on('finish', () => {
      entry.status = res.statusCode;
      if (o.log) process.stderr.write(`[graph] ${req.method} ${url.pathname} -> ${res.statusCode}\n`);
    });
    try {
      if (url.pathname.startsWith('/_admin/')) {
        if (!isLoopback(req.socket.remoteAddress))
          return send(res, 403, { error: 'admin API is loopback only' });
        return await admin(req, res, url, await readBody(req, 1024 * 1024));
      }
      state.log.push(entry);
      const f = takeFault(req, decoded);
      if (f) {
        req.resume();
        const [code, message] = FAULT_CODES[f.status];
        const headers = f.retryAfter !== undefined ? { 'Retry-After': String(f.retryAfter) } : {};
        return send(
          res,
          f.status,
          errorBody(f.code || code, f.message || message, requestId, clientRequestId),
          headers,
        );
      }
      const body = await readBody(req, MAX_REQUEST_BYTES);
      await route(req, res, url, body);
    } catch (e) {
      if (res.headersSent) return res.destroy();
      if (e instanceof GraphError) {
        const headers = { ...e.headers };
        return send(res, e.status, errorBody(e.code, e.message, requestId, clientRequestId), headers);
      }
      process.stderr.write(`[graph] internal error: ${e?.stack || e}\n`);
      send(res, 500, errorBody('InternalServerError', String(e?.message || e), requestId, clientRequestId));
    }
  };

  const tls = { key: read('server-key.pem'), cert: read('server.pem') };
  const host = o.host || '127.0.0.1';
  const servers = [https.createServer(tls, handler)];
  const listen = (srv, port, h) =>
    new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, h, () => {
        srv.off('error', reject);
        resolve(srv.address().port);
      });
    });
  const port = await listen(servers[0], o.port || 0, host);
  if (host === '127.0.0.1') {
    const v6 = https.createServer(tls, handler);
    try {
      await listen(v6, port, '::1');
      servers.push(v6);
    } catch {
      /* no IPv6 loopback */
    }
  }
  for (const s of servers) s.keepAliveTimeout = 1000;
  baseUrl = `https://localhost:${port}`;
  return {
    url: baseUrl,
    port,
    async close() {
      await store.close();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise((r) => {
              s.close(() => r(undefined));
              s.closeAllConnections?.();
            }),
        ),
      );
    },
  };
}
