/**
 * The local mail stack, seen from the tests: ports and paths (from the environment that
 * test/support/with-stack.sh exports), JWT minting with the stack's signing key, and small
 * IMAP helpers to read mail back.
 *
 * Integration tests call stackEnv() first: without the stack it throws, so they fail rather than
 * silently skip.
 */
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import https from 'node:https';
import tls from 'node:tls';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Fixtures {
  microsoft: {
    tenantId: string;
    tenantDomain: string;
    users: { upn: string; password: string; name: string; oid: string }[];
    sharedMailboxes: { address: string; delegates: string[] }[];
    clients: { clientId: string; type: string; secret?: string; redirectUris?: string[] }[];
  };
  google: {
    users: { email: string; password: string; name: string; sub: string }[];
    clients: { clientId: string; secret: string }[];
  };
  mail: { domains: string[]; mailboxes: string[] };
}

export const fixtures = JSON.parse(
  readFileSync(path.join(ROOT, 'test', 'support', 'fixtures.json'), 'utf8'),
) as Fixtures;

export type Provider = 'microsoft' | 'google';

export interface StackEnv {
  dir: string;
  pkiDir: string;
  /** the test CA; NODE_EXTRA_CA_CERTS points here too */
  caFile: string;
  ca: string;
  logDir: string;
  mailDir: string;
  /** key ID of the JWT signing key, as Dovecot looks it up */
  kid: string;
  issuers: Record<Provider, string>;
  /** https://localhost:PORT of the fake identity provider; empty when it was not started */
  idpUrl: string;
  /** https://localhost:PORT of the local Microsoft Graph endpoint (test/support/graph); its API is under /v1.0 */
  graphUrl: string;
  smtp: { host: string; port: number; smtpsPort: number };
  imap: { host: string; port: number; imapsPort: number };
  lmtpPort: number;
}

const NO_STACK =
  'the local mail stack is not running: run the tests through `npm test` (test/support/with-stack.sh) so that the local stack runs';

function need(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${NO_STACK} (${name} is not set)`);
  return v;
}

function port(name: string): number {
  const n = Number(need(name));
  if (!Number.isInteger(n) || n <= 0 || n > 65535)
    throw new Error(`${name}=${process.env[name]} is not a port`);
  return n;
}

let cached: StackEnv | undefined;

/** The running stack's ports and paths. Throws (never skips) when the tests run without the stack. */
export function stackEnv(): StackEnv {
  if (cached) return cached;
  if (process.env.OAUTHMAIL_STACK !== '1') throw new Error(NO_STACK);
  const dir = need('OAUTHMAIL_STACK_DIR');
  const pkiDir = process.env.STACK_PKI_DIR || path.join(dir, 'pki');
  const caFile = path.join(pkiDir, 'ca.pem');
  cached = {
    dir,
    pkiDir,
    caFile,
    ca: readFileSync(caFile, 'utf8'),
    logDir: process.env.STACK_LOG_DIR || path.join(dir, 'logs'),
    mailDir: process.env.STACK_MAIL_DIR || path.join(dir, 'run', 'mail'),
    kid: process.env.STACK_JWT_KID || readFileSync(path.join(pkiDir, 'jwt-kid'), 'utf8').trim(),
    issuers: {
      microsoft: process.env.STACK_MS_ISSUER || `https://sts.windows.net/${fixtures.microsoft.tenantId}/`,
      google: process.env.STACK_GOOGLE_ISSUER || 'https://accounts.google.com',
    },
    idpUrl: process.env.IDP_URL ?? '',
    graphUrl: process.env.GRAPH_URL ?? '',
    smtp: {
      host: process.env.SMTP_HOST || 'localhost',
      port: port('SMTP_PORT'),
      smtpsPort: port('SMTPS_PORT'),
    },
    imap: {
      host: process.env.IMAP_HOST || 'localhost',
      port: port('IMAP_PORT'),
      imapsPort: port('IMAPS_PORT'),
    },
    lmtpPort: port('LMTP_PORT'),
  };
  return cached;
}

/** Scopes the real services require, in each provider's spelling (Microsoft: short names in `scope`). */
export const MAIL_SCOPES: Record<Provider, string[]> = {
  microsoft: ['SMTP.Send', 'IMAP.AccessAsUser.All'],
  google: ['https://mail.google.com/'],
};

/** The same scopes as a client requests them from the identity provider (Exchange Online's resource). */
export const IDP_MAIL_SCOPES: Record<Provider, string[]> = {
  microsoft: ['https://outlook.office.com/SMTP.Send', 'https://outlook.office.com/IMAP.AccessAsUser.All'],
  google: ['https://mail.google.com/'],
};

/** The provider a fixture user belongs to (Google for the fixtures' Google users, else Microsoft). */
export function providerOf(user: string): Provider {
  return fixtures.google.users.some((u) => u.email.toLowerCase() === user.toLowerCase())
    ? 'google'
    : 'microsoft';
}

export interface MintOptions {
  /** the mailbox user; goes into `email` (Dovecot's username_attribute) */
  user: string;
  /** default: MAIL_SCOPES of the provider */
  scopes?: string[];
  /** default: providerOf(user) */
  provider?: Provider;
  /** default: the provider's issuer as the stack trusts it */
  iss?: string;
  /** seconds from now until `exp`; zero or negative makes an expired token. Default 3600. */
  lifetimeSeconds?: number;
  /** default: the stack's key ID (jwt-kid) */
  kid?: string;
  /** extra or overriding claims (set one to undefined to drop it) */
  claims?: Record<string, unknown>;
  /** extra or overriding header fields, e.g. {typ: 'at+jwt'} */
  header?: Record<string, unknown>;
  /** PEM private key; default the stack's pki/jwt-key.pem */
  privateKeyPem?: string;
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/**
 * An RS256 access token shaped like the fake identity provider's (and close to the real ones),
 * signed with the stack's key so that Dovecot accepts it. Works without the IdP, and makes tokens
 * the IdP would never issue (expired, wrong issuer, missing scope, unknown key).
 */
export function mintJwt(opts: MintOptions): string {
  const env = stackEnv();
  const provider = opts.provider ?? providerOf(opts.user);
  const now = Math.floor(Date.now() / 1000);
  const lifetime = opts.lifetimeSeconds ?? 3600;
  const exp = now + lifetime;
  // Dovecot refuses iat/nbf after exp ("conflicting"), so an expired token was issued before it expired.
  const iat = lifetime > 0 ? now - 5 : exp - 3600;
  const scopes = opts.scopes ?? MAIL_SCOPES[provider];
  const base: Record<string, unknown> =
    provider === 'microsoft'
      ? {
          aud: 'https://outlook.office.com',
          iss: env.issuers.microsoft,
          tid: fixtures.microsoft.tenantId,
          oid: fixtures.microsoft.users.find((u) => u.upn === opts.user)?.oid ?? randomUUID(),
          upn: opts.user,
          unique_name: opts.user,
          appid: fixtures.microsoft.clients[0]?.clientId,
          sub: `sub-${opts.user}`,
        }
      : {
          aud: fixtures.google.clients[0]?.clientId,
          iss: env.issuers.google,
          sub: fixtures.google.users.find((u) => u.email === opts.user)?.sub ?? `sub-${opts.user}`,
          email_verified: true,
        };
  const claims: Record<string, unknown> = {
    ...base,
    ...(opts.iss !== undefined ? { iss: opts.iss } : {}),
    email: opts.user,
    scope: scopes.join(' '),
    iat,
    nbf: iat,
    exp,
    jti: randomUUID(),
    ...opts.claims,
  };
  const header = { typ: 'JWT', alg: 'RS256', kid: opts.kid ?? env.kid, ...opts.header };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(JSON.parse(JSON.stringify(claims))))}`;
  const key = createPrivateKey(opts.privateKeyPem ?? readFileSync(path.join(env.pkiDir, 'jwt-key.pem')));
  return `${input}.${b64url(sign('RSA-SHA256', Buffer.from(input), key))}`;
}

/**
 * The same token with its signature changed (header and claims intact). Changes a byte in the
 * middle: the last base64url character may carry only padding bits and decode to the same bytes.
 */
export function tamperSignature(token: string): string {
  const [h, p, s] = token.split('.');
  if (!h || !p || !s) throw new Error('not a JWT');
  const sig = Buffer.from(s, 'base64url');
  const i = Math.floor(sig.length / 2);
  sig[i] = (sig[i] ?? 0) ^ 0x01;
  return `${h}.${p}.${b64url(sig)}`;
}

/** The same token with one claim changed and the original signature kept. */
export function tamperClaims(token: string, claims: Record<string, unknown>): string {
  const [h, p, s] = token.split('.');
  if (!h || !p || !s) throw new Error('not a JWT');
  const payload = { ...(JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as object), ...claims };
  return `${h}.${b64url(JSON.stringify(payload))}.${s}`;
}

/** POST JSON over HTTPS to the fake identity provider (trusting the stack's CA). */
export function idpRequest<T = unknown>(
  pathname: string,
  body: unknown,
): Promise<{ status: number; json: T }> {
  const env = stackEnv();
  if (!env.idpUrl) throw new Error('the fake identity provider is not running (IDP_URL is empty)');
  return jsonRequest<T>(new URL(pathname, env.idpUrl), 'POST', body, 'IdP');
}

/**
 * Call the local Graph endpoint's admin API (test/support/graph/README.md): `graphAdmin('faults',
 * {status: 429, retryAfter: 1})`, `graphAdmin('config', {refuseSendAs: true})`, `graphAdmin('sent')`.
 * Without a body it is a GET.
 */
export function graphAdmin<T = Record<string, unknown>>(
  name: string,
  body?: unknown,
  method?: string,
): Promise<{ status: number; json: T }> {
  const env = stackEnv();
  if (!env.graphUrl) throw new Error('the local Graph endpoint is not running (GRAPH_URL is empty)');
  return jsonRequest<T>(
    new URL(`/_admin/${name}`, env.graphUrl),
    method ?? (body === undefined ? 'GET' : 'POST'),
    body,
    'Graph',
  );
}

function jsonRequest<T>(
  url: URL,
  method: string,
  body: unknown,
  what: string,
): Promise<{ status: number; json: T }> {
  const env = stackEnv();
  const pathname = url.pathname;
  const data = body === undefined ? '' : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: env.ca,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as T });
          } catch {
            reject(
              new Error(
                `${what} ${pathname} answered ${res.statusCode} with non-JSON: ${text.slice(0, 200)}`,
              ),
            );
          }
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`${what} ${pathname} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

/**
 * An access token from the fake identity provider's admin API (POST /_admin/mint). Without `user`
 * (Microsoft only) it is an app-only token of the client (`scopes` e.g. ['https://outlook.office365.com/.default']).
 */
export async function idpMint(opts: {
  provider?: Provider;
  user?: string;
  clientId?: string;
  scopes?: string[];
  lifetime?: number;
}): Promise<string> {
  const provider = opts.provider ?? (opts.user ? providerOf(opts.user) : 'microsoft');
  const body = {
    provider,
    ...(opts.user ? { user: opts.user } : { app: true }),
    clientId:
      opts.clientId ??
      (provider === 'microsoft'
        ? fixtures.microsoft.clients[0]?.clientId
        : fixtures.google.clients[0]?.clientId),
    scopes:
      opts.scopes ?? (opts.user ? IDP_MAIL_SCOPES[provider] : ['https://outlook.office365.com/.default']),
    ...(opts.lifetime !== undefined ? { lifetime: opts.lifetime } : {}),
  };
  const { status, json } = await idpRequest<{ access_token?: string; error?: string }>('/_admin/mint', body);
  if (status !== 200 || !json.access_token)
    throw new Error(`IdP /_admin/mint answered ${status}: ${JSON.stringify(json)}`);
  return json.access_token;
}

export interface ImapOptions {
  user: string;
  /** default: a freshly minted token for user */
  accessToken?: string;
  /** 'starttls' (IMAP_PORT, upgraded) or 'tls' (IMAPS_PORT, implicit TLS). Default 'tls'. */
  security?: 'starttls' | 'tls';
}

/** A connected imapflow client (call logout() when done). */
export async function imapConnect(opts: ImapOptions): Promise<ImapFlow> {
  const env = stackEnv();
  const implicit = (opts.security ?? 'tls') === 'tls';
  const client = new ImapFlow({
    host: env.imap.host,
    port: implicit ? env.imap.imapsPort : env.imap.port,
    secure: implicit,
    doSTARTTLS: implicit ? undefined : true,
    tls: { ca: env.ca },
    auth: {
      user: opts.user,
      // imapflow picks OAUTHBEARER when the server offers it (Dovecot does), else XOAUTH2;
      // use imapAuthenticate() to try one mechanism explicitly.
      accessToken: opts.accessToken ?? mintJwt({ user: opts.user }),
    },
    logger: false,
    // imapflow waits 90 s by default for the greeting and commands; fail fast in tests
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  await client.connect();
  return client;
}

export interface FoundMessage {
  uid: number;
  subject: string;
  messageId: string;
  from: string;
  to: string[];
  source: string;
}

/** Messages in user's INBOX whose Subject contains `subject` (or all when omitted). */
export async function findMessages(
  user: string,
  search: { subject?: string; messageId?: string } = {},
): Promise<FoundMessage[]> {
  const client = await imapConnect({ user });
  try {
    const lock = await client.getMailboxLock('INBOX');
    try {
      const query: Record<string, unknown> = {};
      if (search.subject) query.subject = search.subject;
      if (search.messageId) query.header = { 'message-id': search.messageId };
      const uids =
        (await client.search(Object.keys(query).length ? query : { all: true }, { uid: true })) || [];
      if (uids.length === 0) return [];
      const found: FoundMessage[] = [];
      for await (const msg of client.fetch(
        uids,
        { uid: true, envelope: true, source: true },
        { uid: true },
      )) {
        found.push({
          uid: msg.uid,
          subject: msg.envelope?.subject ?? '',
          messageId: msg.envelope?.messageId ?? '',
          from: msg.envelope?.from?.[0]?.address ?? '',
          to: (msg.envelope?.to ?? []).map((a) => a.address ?? ''),
          source: msg.source?.toString('utf8') ?? '',
        });
      }
      return found;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** Number of messages in user's INBOX. */
export async function countMessages(user: string): Promise<number> {
  const client = await imapConnect({ user });
  try {
    const status = await client.status('INBOX', { messages: true });
    return status ? (status.messages ?? 0) : 0;
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** Poll user's INBOX until a message matching `search` arrives (delivery through Postfix is asynchronous). */
export async function waitForMessage(
  user: string,
  search: { subject?: string; messageId?: string },
  timeoutMs = 15_000,
): Promise<FoundMessage> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const found = await findMessages(user, search);
    if (found[0]) return found[0];
    if (Date.now() > end) {
      throw new Error(
        `no message matching ${JSON.stringify(search)} reached ${user} within ${timeoutMs} ms (see ${stackEnv().logDir}/postfix.log)`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

export type SaslMechanism = 'XOAUTH2' | 'OAUTHBEARER';

/** The SASL initial response for XOAUTH2 (Google/Microsoft format) or OAUTHBEARER (RFC 7628). */
export function saslInitialResponse(
  mechanism: SaslMechanism,
  user: string,
  token: string,
  host = 'localhost',
  port = 0,
): string {
  const raw =
    mechanism === 'XOAUTH2'
      ? `user=${user}\x01auth=Bearer ${token}\x01\x01`
      : `n,a=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},\x01host=${host}\x01port=${port}\x01auth=Bearer ${token}\x01\x01`;
  return Buffer.from(raw, 'utf8').toString('base64');
}

/**
 * One IMAP AUTHENTICATE with an explicit mechanism over implicit TLS (IMAPS), with SASL-IR
 * (RFC 4959). Returns the tagged reply, e.g. `A1 OK ...` or `A1 NO [AUTHENTICATIONFAILED] ...`,
 * and the server's error challenge (decoded) when it sent one.
 */
export function imapAuthenticate(
  mechanism: SaslMechanism,
  user: string,
  token: string,
): Promise<{ ok: boolean; tagged: string; challenge?: string }> {
  const env = stackEnv();
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: env.imap.host,
      port: env.imap.imapsPort,
      ca: env.ca,
      servername: 'localhost',
    });
    let buf = '';
    let greeted = false;
    let challenge: string | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`IMAP AUTHENTICATE ${mechanism} timed out; got: ${buf}`));
    }, 10_000);
    socket.setEncoding('utf8');
    socket.on('error', (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (!greeted && line.startsWith('* OK')) {
          greeted = true;
          socket.write(
            `A1 AUTHENTICATE ${mechanism} ${saslInitialResponse(mechanism, user, token, 'localhost', env.imap.imapsPort)}\r\n`,
          );
        } else if (line.startsWith('+')) {
          // error challenge (RFC 7628 section 3.2.2): the client answers with a dummy response
          challenge = Buffer.from(line.slice(1).trim(), 'base64').toString('utf8');
          socket.write(mechanism === 'OAUTHBEARER' ? 'AQ==\r\n' : '\r\n');
        } else if (line.startsWith('A1 ')) {
          clearTimeout(timer);
          socket.end('A2 LOGOUT\r\n');
          resolve({
            ok: line.startsWith('A1 OK'),
            tagged: line,
            ...(challenge !== undefined ? { challenge } : {}),
          });
        }
      }
    });
  });
}

/** The variables a stack's `env` file exports (written with printf %q: undo simple quoting). */
export function readStackEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^export ([A-Z_0-9]+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1').replace(/\\(.)/g, '$1');
  }
  return env;
}

/**
 * Start a private stack in `dir` (test/support/stack/start.sh) with the same PKI as the shared
 * one (pki.sh keeps an existing one: its CA and JWT key work there too); returns its variables.
 * The caller stops it with stop.sh. Throws with start.sh's output when it fails.
 */
export function startPrivateStack(dir: string, sharedPkiDir: string): Record<string, string> {
  mkdirSync(path.join(dir, 'pki'), { recursive: true });
  for (const f of readdirSync(sharedPkiDir))
    copyFileSync(path.join(sharedPkiDir, f), path.join(dir, 'pki', f));
  // the daemons start.sh leaves running inherit its stdout/stderr: a pipe would never close, so
  // its output goes to a file
  const logFile = path.join(dir, 'start.log');
  const fd = openSync(logFile, 'w');
  const started = spawnSync('bash', [path.join(STACK_SCRIPTS, 'start.sh'), dir], {
    stdio: ['ignore', fd, fd],
    timeout: 90_000,
  });
  closeSync(fd);
  if (started.status !== 0)
    throw new Error(
      `start.sh ${dir} failed (${started.status ?? started.signal}):\n${readFileSync(logFile, 'utf8')}`,
    );
  return readStackEnvFile(path.join(dir, 'env'));
}

/** test/support/stack/ (start.sh, stop.sh). */
export const STACK_SCRIPTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'stack');
