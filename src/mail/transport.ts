/**
 * One sender for `send`, `send --batch`, `sendmail` and the queue: SMTP (SmtpClient) or Microsoft
 * Graph (GraphClient.sendMime), chosen by the profile's `transport` key. Both take the same
 * rendered message and envelope; the results say which transport carried it and what the server's
 * answer means:
 * - SMTP: the server's 250 reply (the message is queued at the server for delivery).
 * - Graph: 202 Accepted ("user: sendMail"): accepted for delivery, not delivered; delivery
 *   failures come back later as a non-delivery report in the mailbox, not as an error here.
 * Bcc: SMTP sends the envelope as given; Graph reads recipients from the header fields only, so
 * envelope recipients not in To/Cc are written into a Bcc field for Graph and only for Graph
 * (src/mail/graph/mime.ts); Exchange removes it from the delivered copies.
 */
import type { Profile } from '../config/schema.js';
import { ConfigError, UsageError } from '../errors/index.js';
import type { GraphClientOptions } from './graph/client.js';
import type { BuiltMessage } from './message.js';
import type { SendResult as SmtpSendResult, SmtpOptions } from './smtp.js';
import type { TokenSource } from './token-source.js';

export type TransportName = 'smtp' | 'graph';

export interface SendOutcome extends SmtpSendResult {
  transport: TransportName;
  /** Graph: 202 (accepted for delivery). SMTP: absent. */
  status?: number;
  /** Graph: false, the mail is accepted for delivery, whether it arrives is not known yet. */
  delivered?: boolean;
}

export interface Envelope {
  from: string;
  to: string[];
}

export interface MailSender {
  readonly transport: TransportName;
  /** A message built from flags (send, send --batch). */
  send(built: BuiltMessage): Promise<SendOutcome>;
  /** A message as bytes with its envelope (sendmail, the queue), handed over unchanged. */
  sendRaw(raw: Buffer | string, envelope: Envelope): Promise<SendOutcome>;
  close(): void;
}

export interface SenderOptions extends SmtpOptions {
  /** Tests and special callers: extra Graph client options (fetch, sleep...). */
  graph?: Partial<Omit<GraphClientOptions, 'tokens'>>;
}

/** The profile's transport; `auto` is refused until it is built. */
export function transportOf(profile: Pick<Profile, 'transport'>, name?: string): TransportName {
  const t = profile.transport ?? 'smtp';
  if (t === 'auto')
    throw new ConfigError('transport auto (SMTP, then Graph after a 5.7.139 refusal) is not available yet', {
      code: 'transport_not_yet',
      hint: `oauthmail profile edit ${name ?? 'PROFILE'} --set transport=graph (or transport=smtp)`,
    });
  return t;
}

const messageIdOf = (raw: Buffer): string =>
  /^Message-ID:[ \t]*(<[^>\r\n]+>)/im.exec(raw.subarray(0, 65536).toString('utf8'))?.[1] ?? '';

const seconds = (ms: number) => (ms < 10_000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000)));

async function graphSender(profile: Profile, source: TokenSource, opts: SenderOptions): Promise<MailSender> {
  if (opts.caFile || opts.insecureTls)
    throw new UsageError(
      '--ca and --insecure-tls are for the SMTP server; this profile sends through Microsoft Graph (transport graph)',
      {
        code: 'bad_usage',
        hint: 'drop the flag (Graph is verified against the system CAs; NODE_EXTRA_CA_CERTS adds one)',
      },
    );
  const { GraphClient } = await import('./graph/client.js');
  const { DEFAULT_HTTP } = await import('./graph/http.js');
  const single = opts.retry?.mode === 'none';
  const attempts = single ? 1 : (opts.graph?.maxAttempts ?? DEFAULT_HTTP.maxAttempts);
  const client = new GraphClient({
    tokens: source,
    ...(profile.graphUrl ? { baseUrl: profile.graphUrl } : {}),
    maxAttempts: attempts,
    ...(opts.sleep ? { sleep: opts.sleep } : {}),
    ...(opts.connectionTimeoutMs !== undefined ? { timeoutMs: opts.connectionTimeoutMs } : {}),
    onRetry: (n) =>
      (opts.onRetry ?? opts.debug)?.(
        `retrying in ${seconds(n.waitMs)} s (${n.attempt + 1}/${attempts}): ${n.reason}`,
      ),
    ...opts.graph,
  });
  const sendRaw = async (input: Buffer | string, envelope: Envelope): Promise<SendOutcome> => {
    const raw = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
    const r = await client.sendMime(raw, envelope);
    opts.debug?.(
      `graph: ${r.method} answered ${r.status} Accepted${r.uploadSessions ? ` (${r.uploadSessions} upload sessions)` : ''}, request-id ${r.requestId ?? '-'}`,
    );
    return {
      transport: 'graph',
      status: r.status,
      delivered: false,
      messageId: messageIdOf(raw),
      response: `202 Accepted (Microsoft Graph ${r.method}: accepted for delivery, not yet delivered)`,
      accepted: [...envelope.to],
      rejected: [],
      envelope: { from: envelope.from, to: [...envelope.to] },
      attempts: 1,
    };
  };
  return {
    transport: 'graph',
    async send(built) {
      const { renderMessage } = await import('./message.js');
      return sendRaw(await renderMessage(built), built.envelope);
    },
    sendRaw,
    close: () => undefined,
  };
}

/** The sender the profile's transport asks for. */
export async function createSender(
  profile: Profile,
  source: TokenSource,
  opts: SenderOptions = {},
): Promise<MailSender> {
  if (transportOf(profile, source.profile) === 'graph') return graphSender(profile, source, opts);
  const { SmtpClient } = await import('./smtp.js');
  const { graph: _g, ...smtpOpts } = opts;
  const client = await SmtpClient.create(profile, source, smtpOpts);
  return {
    transport: 'smtp',
    async send(built) {
      return { ...(await client.send(built)), transport: 'smtp' };
    },
    async sendRaw(raw, envelope) {
      return { ...(await client.send({ mail: { raw }, envelope, bcc: [] })), transport: 'smtp' };
    },
    close: () => client.close(),
  };
}
