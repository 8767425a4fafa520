/**
 * The IMAP side: an imapflow client built from a profile and a TokenSource.
 *
 * SASL: XOAUTH2 (Google's and Microsoft's mechanism) or OAUTHBEARER (RFC 7628) when the server
 * offers it and the profile's `sasl` allows it. imapflow picks OAUTHBEARER on its own whenever it
 * is offered, so for `sasl: xoauth2` we hide that capability from it just before it authenticates.
 * The SASL user is the profile's mailbox user, which may be a shared mailbox authenticated with a
 * delegate's token (Microsoft: user = the shared mailbox address).
 *
 * Tokens: when the server refuses a token that the source handed out as valid (a cached one), we
 * force exactly one refresh and try once more on a new connection (an imapflow instance cannot be
 * reused). A refusal of a freshly refreshed token is final.
 *
 * TLS: implicit TLS (RFC 8314) or STARTTLS (RFC 9051 §6.2.1, required: a server that does not offer
 * it is an error, never a silent downgrade); plain IMAP only on loopback. Certificates are always
 * verified unless --insecure-tls. imapflow's logger is off unless --verbose, and then every line
 * goes through redact() (the token is also registered as a secret, so it is masked wherever it
 * shows up).
 */
import type { ImapFlow, ImapFlowOptions, Logger } from 'imapflow';
import type { Profile } from '../config/schema.js';
import { ConfigError, MailServerError, isOauthmailError, type OauthmailError } from '../errors/index.js';
import { registerSecret, redact } from '../util/redact.js';
import { loggerLevels } from '../util/levels.js';
import type { TokenSource } from './token-source.js';
import { isLoopbackAddress, plainLoopbackAddress, serverTls } from './tls.js';
import { VERSION } from '../util/version.js';
import { imapErrorFrom } from './imap-replies.js';

export interface ImapOptions {
  /** PEM file of a CA to trust for a private server. */
  caFile?: string;
  /** Skip certificate verification (warned). */
  insecureTls?: boolean;
  /** Redacted protocol log lines for --verbose. */
  debug?: (line: string) => void;
  warn?: (line: string) => void;
  connectionTimeoutMs?: number;
  /** Socket inactivity timeout: a read that stalls this long fails (default 60 s). */
  socketTimeoutMs?: number;
  /** Keep imapflow from starting IDLE on its own between our commands (default true). */
  disableAutoIdle?: boolean;
  /** Break and restart IDLE this often (watch). */
  maxIdleTimeMs?: number;
}

export interface ImapConnection {
  client: ImapFlow;
  /** The SASL mechanism that was used. */
  mechanism: 'XOAUTH2' | 'OAUTHBEARER';
  /** Whether a forced token refresh was needed to get in. */
  refreshed: boolean;
}

type Sasl = Profile['sasl'];

/** The most a single IMAP literal may hold (see imapClientOptions). */
export const MAX_IMAP_LITERAL = 2 * 1024 * 1024;
/** Without a byte from the server for this long, a command fails (exit 6). */
export const DEFAULT_IMAP_IDLE_MS = 60_000;

/** imapflow options for a profile, without auth (exported for tests: TLS rules without connecting). */
export function imapClientOptions(profile: Pick<Profile, 'imap'>, opts: ImapOptions = {}): ImapFlowOptions {
  const { server: imap, host, tls } = serverTls('imap', profile.imap, opts);
  const timeout = opts.connectionTimeoutMs ?? 30_000;
  return {
    host,
    port: imap.port,
    secure: imap.security === 'tls',
    // STARTTLS is required, not opportunistic: a stripped capability must not downgrade us
    doSTARTTLS: imap.security === 'starttls' ? true : imap.security === 'none' ? false : undefined,
    ...(tls.servername ? { servername: tls.servername } : {}),
    tls,
    logger: opts.debug ? redactingLogger(opts.debug) : false,
    clientInfo: { name: 'oauthmail', version: VERSION },
    connectionTimeout: timeout,
    greetingTimeout: Math.min(timeout, 16_000),
    socketTimeout: opts.socketTimeoutMs ?? DEFAULT_IMAP_IDLE_MS,
    // imapflow accepts 1 GiB literals and lines by default. We never ask for more than 1 MiB at a
    // time (512 KiB first parts and partial fetches, 1 MiB attachment chunks), so a server that
    // answers with more is refused before it is buffered (a 600 MB literal once took 1.3 GB).
    maxLiteralSize: MAX_IMAP_LITERAL,
    // the longest line we expect is a SEARCH answer: 16 MiB holds about 1.8 million UIDs
    maxLineLength: 16 * 1024 * 1024,
    maxResponseSize: 24 * 1024 * 1024,
    disableAutoIdle: opts.disableAutoIdle ?? true,
    ...(opts.maxIdleTimeMs ? { maxIdleTime: opts.maxIdleTimeMs } : {}),
    // imapflow's own reconnect-free instances; we keep compression off so that byte counts
    // and throughput are what the server sends (and deflate costs CPU on loopback)
    disableCompression: true,
  };
}

/** A logger for imapflow that sends one redacted line per entry to `debug`. */
export function redactingLogger(debug: (line: string) => void): Logger {
  const log = (level: string) => (obj: unknown) => {
    let line: string;
    try {
      const o = { ...(obj as Record<string, unknown>) };
      // raw socket data (logRaw) is never wanted: it may hold a SASL payload
      delete o.data;
      if (o.err instanceof Error) o.err = `${o.err.name}: ${o.err.message}`;
      line = JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    } catch {
      line = String(obj);
    }
    debug(redact(`imap ${level}: ${line}`));
  };
  return loggerLevels(log);
}

/** What the server offers, decided right before imapflow authenticates. */
function chooseMechanism(
  caps: Map<string, unknown>,
  sasl: Sasl,
  host: string,
  profileName = 'NAME',
): 'XOAUTH2' | 'OAUTHBEARER' {
  const bearer = caps.has('AUTH=OAUTHBEARER');
  const xoauth2 = caps.has('AUTH=XOAUTH2') || caps.has('AUTH=XOAUTH');
  const offered =
    [...caps.keys()]
      .filter((k) => k.startsWith('AUTH='))
      .map((k) => k.slice(5))
      .join(' ') || 'none';
  const refuse = (want: string) =>
    new MailServerError(`${host} does not offer SASL ${want} (it offers: ${offered})`, {
      code: 'imap_no_mechanism',
      hint:
        want === 'XOAUTH2 or OAUTHBEARER'
          ? "this server does not accept OAuth tokens over IMAP; check the profile's imap host"
          : `let oauthmail pick: oauthmail profile edit ${profileName} --set sasl=auto`,
    });
  if (sasl === 'xoauth2') {
    if (!xoauth2) throw refuse('XOAUTH2');
    return 'XOAUTH2';
  }
  if (sasl === 'oauthbearer') {
    if (!bearer) throw refuse('OAUTHBEARER');
    return 'OAUTHBEARER';
  }
  if (bearer) return 'OAUTHBEARER';
  if (xoauth2) return 'XOAUTH2';
  throw refuse('XOAUTH2 or OAUTHBEARER');
}

/**
 * Connect and authenticate. Throws MailServerError (5) for a refusal (with the server's reason
 * decoded), TransientError (6) for network trouble, ConfigError (3) for a certificate we cannot
 * verify, AuthError (4) from the token source when a sign-in is needed.
 */
export async function connectImap(
  profile: Profile,
  source: TokenSource,
  opts: ImapOptions = {},
): Promise<ImapConnection> {
  const plain = profile.imap?.security === 'none';
  const named = imapClientOptions(profile, {
    ...(source.profile ? { profile: source.profile } : {}),
    ...opts,
  });
  // plain text: connect to the loopback address the name resolves to, not to the name
  const base = plain ? { ...named, host: await plainLoopbackAddress('imap', named.host ?? '') } : named;
  const { ImapFlow } = await import('imapflow');
  const host = named.host ?? '';
  const sasl: Sasl = profile.sasl ?? 'auto';

  const attempt = async (forceRefresh: boolean): Promise<ImapConnection> => {
    const token = await source.getAccessToken({ forceRefresh });
    registerSecret(token);
    const client = new ImapFlow({ ...base, auth: { user: source.user, accessToken: token } });
    let mechanism: 'XOAUTH2' | 'OAUTHBEARER' = 'XOAUTH2';
    // imapflow calls this.authenticate() after CAPABILITY (and STARTTLS); wrap it to enforce the
    // profile's mechanism (it would otherwise always prefer OAUTHBEARER when offered)
    const internal = client as unknown as {
      socket?: { remoteAddress?: string };
      capabilities: Map<string, unknown>;
      authenticate(): Promise<unknown>;
    };
    const original = internal.authenticate.bind(client);
    internal.authenticate = async () => {
      // and check, right before the token goes out, where the socket really leads
      if (plain && !isLoopbackAddress(internal.socket?.remoteAddress)) {
        throw new ConfigError(
          `refusing to send a token to ${host} without TLS: connected to ${internal.socket?.remoteAddress ?? 'an unknown address'}, not a loopback address`,
          { code: 'tls_required', hint: 'use --imap-security tls (port 993) or starttls (port 143)' },
        );
      }
      mechanism = chooseMechanism(internal.capabilities, sasl, host, source.profile);
      if (mechanism === 'XOAUTH2') internal.capabilities.delete('AUTH=OAUTHBEARER');
      return original();
    };
    // an 'error' event without a listener would crash the process; connect() and commands
    // reject with the same error, which is what we act on
    client.on('error', (e: Error) => {
      closedBy.set(client, e);
      opts.debug?.(redact(`imap error event: ${e.message}`));
    });
    try {
      await client.connect();
    } catch (e) {
      client.close();
      throw e;
    }
    opts.debug?.(
      `imap: signed in to ${host} as ${source.user} with ${mechanism}${forceRefresh ? ' (refreshed token)' : ''}`,
    );
    return { client, mechanism, refreshed: forceRefresh };
  };

  try {
    return await attempt(false);
  } catch (e) {
    if (isOauthmailError(e)) throw e;
    if (!(e as { authenticationFailed?: boolean }).authenticationFailed)
      throw toImapError(e, profile, source.user, source.profile);
    opts.debug?.('imap: the server refused the token; getting a new one and trying once more');
  }
  try {
    return await attempt(true);
  } catch (e) {
    if (isOauthmailError(e)) throw e;
    throw toImapError(e, profile, source.user, source.profile);
  }
}

/** Why imapflow closed a connection (its 'error' event), for the "Connection not available" that follows. */
const closedBy = new WeakMap<ImapFlow, Error>();

/**
 * The error to explain for a failed command: when imapflow rejected it only because the connection
 * is gone ("Connection not available"), the reason it went (a literal over our limit, an idle
 * timeout, a reset) is what the user needs to read.
 */
export function realImapError(client: ImapFlow, e: unknown): unknown {
  return (e as { code?: unknown } | undefined)?.code === 'NoConnection' ? (closedBy.get(client) ?? e) : e;
}

export function toImapError(
  e: unknown,
  profile: Pick<Profile, 'imap'>,
  user: string,
  profileName?: string,
): OauthmailError {
  return imapError(e, {
    user,
    host: profile.imap?.host ?? '',
    ...(profileName ? { profile: profileName } : {}),
  });
}

/**
 * imapErrorFrom, for errors as imapflow 2 throws them, and never twice:
 *  - an error we already explained (an OauthmailError) is passed on as it is; explaining it again
 *    turned "mailbox X not found" (exit 5) into "IMAP failed: mailbox X not found" (exit 6);
 *  - imapflow's own errors (createImapError) carry the server's reply in `message` and keep the
 *    original error object under `response`, which is not reply text ("Error: Command failed");
 *    its NotFound code (STATUS of a mailbox that LIST does not know) is a missing mailbox.
 */
export function imapError(
  e: unknown,
  ctx: { user?: string; host?: string; mailbox?: string; profile?: string } = {},
): OauthmailError {
  if (isOauthmailError(e)) return e;
  const x = (e ?? {}) as { code?: unknown; message?: unknown; response?: unknown; path?: unknown };
  if (x.code === 'NotFound') {
    const name = ctx.mailbox ?? (typeof x.path === 'string' ? x.path : '');
    return new MailServerError(
      `mailbox ${name} not found${typeof x.message === 'string' ? `: ${x.message}` : ''}`,
      {
        code: 'imap_mailbox_not_found',
        hint: "list the folders with: oauthmail mailboxes (names are case-sensitive except INBOX; subfolders use the server's delimiter)",
        cause: e,
        serverCode: 'NONEXISTENT',
      },
    );
  }
  if (x.response !== undefined && typeof x.response !== 'string' && e && typeof e === 'object') {
    // a plain copy without the nested error, so that the reply text is read from the message
    const flat = { ...(e as Record<string, unknown>), message: x.message, response: undefined };
    const out = imapErrorFrom(flat, ctx);
    return out;
  }
  return imapErrorFrom(e, ctx);
}

/** Log out politely, but never hang or throw on the way out. */
export async function closeImap(client: ImapFlow | undefined): Promise<void> {
  if (!client) return;
  if (client.usable) {
    await Promise.race([
      client.logout().catch(() => undefined),
      new Promise((r) => setTimeout(r, 2000).unref()),
    ]);
  }
  client.close();
}
