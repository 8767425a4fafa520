// Bearer token checks of the local Microsoft Graph endpoint.
//
// What it copies:
// - "Microsoft identity platform access tokens" (learn.microsoft.com/entra/identity-platform/access-tokens):
//   the resource validates the RS256 signature against the issuer's JWKS (kid lookup), `iss`,
//   `aud` (Graph accepts https://graph.microsoft.com and its app ID 00000003-0000-0000-c000-000000000000),
//   `nbf`/`exp`; delegated tokens carry `scp` (space-separated), app-only tokens carry `roles`.
// - "Microsoft Graph error responses and resource types": a missing, malformed or expired token is
//   401 InvalidAuthenticationToken with a `WWW-Authenticate: Bearer` header; a valid token without the
//   permission the API needs is 403 ErrorAccessDenied ("Access is denied. Check credentials and try again.").
// - The permission tables of "user: sendMail" (Mail.Send), "Create message" / "attachment:
//   createUploadSession" / "message: move" / "Delete message" (Mail.ReadWrite), "List messages" /
//   "Get message" / "message: delta" / "List mailFolders" (Mail.ReadBasic, Mail.Read or
//   Mail.ReadWrite). A delegate working in another user's (shared) mailbox needs the `.Shared`
//   variants (Mail.Send.Shared, Mail.Read.Shared, Mail.ReadWrite.Shared) AND the mailbox permission
//   ("Access shared and delegated mail" in "Outlook mail API overview"); here the permission is
//   fixtures.json `sharedMailboxes[].delegates`.
// - `/me` is only valid with a delegated token: app-only gets 400 BadRequest ("/me request is only
//   valid with delegated authentication flow.").
// - "Limiting application permissions to specific Exchange Online mailboxes" (Application Access
//   Policy): when one is set for the app (admin `appAccessPolicy`), other mailboxes get 403
//   ErrorAccessDenied "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."
// Departure: no clock skew allowance (Dovecot in the stack allows none either).
import https from 'node:https';
import { createPublicKey, verify } from 'node:crypto';
import { GraphError, MESSAGES } from './errors.mjs';

export const GRAPH_AUDIENCES = new Set([
  'https://graph.microsoft.com',
  '00000003-0000-0000-c000-000000000000',
]);

const unauthorized = (message) =>
  new GraphError(401, 'InvalidAuthenticationToken', message, {
    'WWW-Authenticate':
      'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
  });

function getJson(url, ca) {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch (e) {
            reject(e);
          }
        });
      })
      .on('error', reject);
  });
}

/**
 * @param {{idpUrl: string, tenantId: string, ca: string, fixtures: any}} opts
 */
export function createAuth({ idpUrl, tenantId, ca, fixtures }) {
  const issuer = `https://sts.windows.net/${tenantId}/`;
  /** @type {Map<string, import('node:crypto').KeyObject>} */
  let keys = new Map();
  let lastFetch = 0;
  async function loadKeys() {
    const jwks = await getJson(`${idpUrl}/${tenantId}/discovery/v2.0/keys`, ca);
    keys = new Map(jwks.keys.map((k) => [k.kid, createPublicKey({ key: k, format: 'jwk' })]));
    lastFetch = Date.now();
  }

  /** The principal behind an Authorization header, or a 401. */
  async function authenticate(header) {
    const m = /^Bearer\s+(\S+)$/i.exec(header || '');
    if (!m) throw unauthorized('Access token is empty.');
    const parts = m[1].split('.');
    if (parts.length !== 3) throw unauthorized('IDX14100: JWT is not well formed, there are no dots (.).');
    let head, claims;
    try {
      head = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch {
      throw unauthorized('IDX14102: Unable to decode the header or the payload of the token.');
    }
    if (head.alg !== 'RS256') throw unauthorized('Invalid signature algorithm.');
    if (!keys.has(head.kid) && Date.now() - lastFetch > 1000) await loadKeys();
    const key = keys.get(head.kid);
    if (!key) throw unauthorized('Invalid signature: unknown signing key.');
    const ok = verify(
      'RSA-SHA256',
      Buffer.from(`${parts[0]}.${parts[1]}`),
      key,
      Buffer.from(parts[2], 'base64url'),
    );
    if (!ok) throw unauthorized('Invalid signature.');
    if (claims.iss !== issuer) throw unauthorized('Invalid issuer.');
    if (!GRAPH_AUDIENCES.has(claims.aud)) throw unauthorized('Invalid audience.');
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== 'number' || claims.exp <= now)
      throw unauthorized('Lifetime validation failed, the token is expired.');
    if (typeof claims.nbf === 'number' && claims.nbf > now)
      throw unauthorized('Lifetime validation failed, the token is not yet valid.');
    if (claims.roles !== undefined || claims.idtyp === 'app' || !claims.scp) {
      return { kind: 'app', appid: claims.appid, roles: new Set(claims.roles || []) };
    }
    return {
      kind: 'user',
      appid: claims.appid,
      upn: String(claims.upn || claims.unique_name || '').toLowerCase(),
      oid: claims.oid,
      scopes: new Set(String(claims.scp).split(' ').filter(Boolean)),
    };
  }

  const ms = fixtures.microsoft;
  const mailboxes = new Set(fixtures.mail.mailboxes.map((m) => m.toLowerCase()));

  /** The mailbox address for a /users/{id} segment (UPN or object id), or undefined. */
  function resolveUser(id) {
    const l = decodeURIComponent(id).toLowerCase();
    const u = ms.users.find((x) => x.upn.toLowerCase() === l || x.oid === l);
    if (u) return u.upn.toLowerCase();
    if (mailboxes.has(l) && l.endsWith(`@${ms.tenantDomain}`)) return l;
    return undefined;
  }

  const ANY = {
    send: { own: ['Mail.Send'], shared: ['Mail.Send.Shared'], app: ['Mail.Send'] },
    read: {
      own: ['Mail.ReadBasic', 'Mail.Read', 'Mail.ReadWrite'],
      shared: ['Mail.Read.Shared', 'Mail.ReadWrite.Shared'],
      app: ['Mail.ReadBasic.All', 'Mail.Read', 'Mail.ReadWrite'],
    },
    write: { own: ['Mail.ReadWrite'], shared: ['Mail.ReadWrite.Shared'], app: ['Mail.ReadWrite'] },
  };

  /**
   * Check that `principal` may do `op` ('send' | 'read' | 'write') in `mailbox`.
   * @param {any} principal
   * @param {string} mailbox
   * @param {'send'|'read'|'write'} op
   * @param {any} config the endpoint's admin config (appAccessPolicy)
   */
  function authorize(principal, mailbox, op, config) {
    if (principal.kind === 'app') {
      if (!ANY[op].app.some((r) => principal.roles.has(r)))
        throw new GraphError(403, 'ErrorAccessDenied', MESSAGES.accessDenied);
      const policy = config.appAccessPolicy?.[principal.appid];
      if (policy && !policy.map((x) => x.toLowerCase()).includes(mailbox))
        throw new GraphError(
          403,
          'ErrorAccessDenied',
          'Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.',
        );
      return;
    }
    if (mailbox === principal.upn) {
      if (!ANY[op].own.some((s) => principal.scopes.has(s)))
        throw new GraphError(403, 'ErrorAccessDenied', MESSAGES.accessDenied);
      return;
    }
    const shared = ms.sharedMailboxes?.find((s) => s.address.toLowerCase() === mailbox);
    const delegate = shared?.delegates.some((d) => d.toLowerCase() === principal.upn);
    if (!delegate || !ANY[op].shared.some((s) => principal.scopes.has(s)))
      throw new GraphError(403, 'ErrorAccessDenied', MESSAGES.accessDenied);
  }

  return { loadKeys, authenticate, authorize, resolveUser, issuer };
}
