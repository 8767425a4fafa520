/**
 * One SMTP listener of the relay (nodemailer's smtp-server): submission with STARTTLS (RFC 3207,
 * RFC 6409) or implicit TLS (RFC 8314), AUTH PLAIN and LOGIN (RFC 4954), SIZE (RFC 1870).
 *
 * Who may send: a device that authenticated, or one whose address is on a device's allowlist.
 * Anyone else is refused at RCPT (never an open relay). AUTH in clear text is refused (538) unless
 * the listener is on loopback. Bad passwords from one address are slowed, then refused (454).
 */
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';
import type { Readable } from 'node:stream';
import { isLoopbackIp, plainAddress, type Listener } from './addresses.js';
import type { Device, Devices } from './devices.js';
import type { AuthGuard, RateLimit } from './guard.js';
import type { RelayLog } from './log.js';
import type { Metrics, Refusal } from './metrics.js';
import { VerifiedPasswords } from './password.js';
import { applySenderPolicy, envelopeSender, SenderRefused } from './sender.js';
import type { Outcome } from './upstream.js';

export interface RelayServerDeps {
  devices: () => Devices;
  /** The mailbox (From) of a profile, or undefined when the profile is gone. */
  mailboxOf: (profile: string) => string | undefined;
  deliver: (profile: string, envelope: { from: string; to: string[] }, raw: Buffer) => Promise<Outcome>;
  guard: AuthGuard;
  rate: RateLimit;
  log: RelayLog;
  metrics: Metrics;
  tls: { key: string; cert: string };
  hostname?: string;
  /** Shared by the listeners: a password checked on one is known on the others. */
  passwords?: VerifiedPasswords;
}

/** A hash to check against when the user is unknown, so that the answer takes as long. */
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

export function createRelayServer(listener: Listener, deps: RelayServerDeps): SMTPServer {
  const sessionDevice = new Map<string, Device | undefined>();
  const passwords = deps.passwords ?? new VerifiedPasswords();
  const refuse = (r: Refusal, code: number, message: string, fields: Record<string, unknown>) => {
    deps.metrics.refuse(r);
    deps.log.event('refused', { reason: r, reply: `${code} ${message}`, ...fields });
    return smtpError(code, message);
  };
  /** The device behind a session: its AUTH user, else its address on an allowlist. */
  const deviceOf = (session: SMTPServerSession): Device | undefined => {
    const devices = deps.devices();
    const user = session.user as string | undefined;
    if (user) return devices.byUser(user);
    return devices.byAddress(session.remoteAddress);
  };

  const server = new SMTPServer({
    secure: listener.mode === 'tls',
    key: deps.tls.key,
    cert: deps.tls.cert,
    minVersion: 'TLSv1.2',
    name: deps.hostname ?? 'oauthmail-relay',
    banner: 'oauthmail relay',
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: true,
    // clear-text AUTH only where nothing but this machine can listen in (RFC 4954 §4)
    allowInsecureAuth: isLoopbackIp(listener.host),
    size: deps.devices().maxSize,
    disabledCommands: [],
    logger: false,
    closeTimeout: 10_000,
    onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, cb) {
      const ip = plainAddress(session.remoteAddress);
      if (auth.method !== 'PLAIN' && auth.method !== 'LOGIN') {
        cb(smtpError(504, '5.5.4 AUTH PLAIN or LOGIN'));
        return;
      }
      const locked = deps.guard.lockedFor(ip);
      if (locked > 0) {
        cb(
          refuse('locked', 454, `4.7.0 too many bad passwords from ${ip}; try again in ${locked} s`, {
            remote: ip,
          }),
        );
        return;
      }
      const device = deps.devices().byUser(auth.username ?? '');
      const user = device?.user.name ?? '';
      void passwords.verify(user, auth.password ?? '', device?.user.hash ?? DUMMY_HASH).then(
        (ok) => {
          if (ok && device) {
            deps.guard.succeeded(ip);
            cb(null, { user: device.user.name });
            return;
          }
          deps.metrics.authFailures++;
          const wait = deps.guard.failed(ip);
          const err = refuse('auth', 535, '5.7.8 authentication credentials invalid', {
            remote: ip,
            user: auth.username,
          });
          setTimeout(() => cb(err), wait).unref();
        },
        (e: unknown) => cb(smtpError(454, `4.7.0 cannot check the password now: ${(e as Error).message}`)),
      );
    },
    onMailFrom(address, session, cb) {
      const device = deviceOf(session);
      sessionDevice.set(session.id, device);
      if (!device) return cb(); // refused at RCPT: the client learns nothing about the policy earlier
      const ip = plainAddress(session.remoteAddress);
      const at = { device: device.user.name, remote: ip, from: address.address };
      const args = address.args as Record<string, string> | false | undefined;
      const size = Number((args && args['SIZE']) ?? 0);
      if (size > device.maxSize) {
        return cb(
          refuse(
            'size',
            552,
            `5.3.4 message size ${size} exceeds this device's limit of ${device.maxSize}`,
            at,
          ),
        );
      }
      const mailbox = deps.mailboxOf(device.profile);
      if (!mailbox) {
        return cb(
          refuse(
            'upstream',
            451,
            `4.3.0 the relay's profile ${device.profile || '(none)'} is not usable`,
            at,
          ),
        );
      }
      try {
        envelopeSender(
          { mailbox, ...(device.user.sendAs ? { sendAs: device.user.sendAs } : {}) },
          address.address,
        );
      } catch (e) {
        return cb(refuse('sender', 550, (e as Error).message, at));
      }
      if (!deps.rate.take(device.user.name, device.ratePerMinute)) {
        return cb(
          refuse(
            'rate',
            450,
            `4.7.0 more than ${device.ratePerMinute} messages a minute; try again later`,
            at,
          ),
        );
      }
      cb();
    },
    onRcptTo(address, session, cb) {
      if (!sessionDevice.get(session.id)) {
        const ip = plainAddress(session.remoteAddress);
        return cb(
          refuse(
            'relay',
            554,
            '5.7.1 relay access denied: authenticate (AUTH) or send from an allowed address',
            {
              remote: ip,
              to: address.address,
            },
          ),
        );
      }
      cb();
    },
    onData(stream: Readable & { sizeExceeded?: boolean }, session, cb) {
      const device = sessionDevice.get(session.id);
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (c: Buffer) => {
        size += c.length;
        if (device && size <= device.maxSize) chunks.push(c);
      });
      stream.on('end', () => {
        void handleData(device, session, chunks, size, !!stream.sizeExceeded).then(
          (reply) => cb(null, reply),
          (e: Error) => cb(e),
        );
      });
    },
    onClose(session) {
      sessionDevice.delete(session.id);
    },
  });

  async function handleData(
    device: Device | undefined,
    session: SMTPServerSession,
    chunks: Buffer[],
    size: number,
    exceeded: boolean,
  ): Promise<string> {
    const started = Date.now();
    const ip = plainAddress(session.remoteAddress);
    if (!device) throw smtpError(554, '5.7.1 relay access denied');
    const env = session.envelope;
    const to = env.rcptTo.map((r) => r.address);
    const from0 = env.mailFrom ? env.mailFrom.address : '';
    const at = { device: device.user.name, remote: ip, from: from0, to, size };
    if (exceeded || size > device.maxSize) {
      throw refuse(
        'size',
        552,
        `5.3.4 message size ${size} exceeds this device's limit of ${device.maxSize}`,
        at,
      );
    }
    deps.metrics.messagesIn++;
    const mailbox = deps.mailboxOf(device.profile);
    if (!mailbox)
      throw refuse('upstream', 451, `4.3.0 the relay's profile ${device.profile} is not usable`, at);
    const policy = { mailbox, ...(device.user.sendAs ? { sendAs: device.user.sendAs } : {}) };
    let raw: Buffer;
    let from: string;
    try {
      from = envelopeSender(policy, from0);
      raw = applySenderPolicy(policy, Buffer.concat(chunks));
    } catch (e) {
      if (e instanceof SenderRefused) throw refuse('sender', 550, e.message, at);
      throw e;
    }
    let outcome: Outcome;
    try {
      outcome = await deps.deliver(device.profile, { from, to }, raw);
    } catch (e) {
      // neither upstream nor the queue took it: the device keeps it and tries again
      throw refuse('upstream', 451, `4.3.0 cannot keep the message now: ${(e as Error).message}`, at);
    }
    const ms = Date.now() - started;
    const rec = { ...at, from, size: raw.length, ms };
    if (outcome.kind === 'refused') {
      deps.metrics.refuse('upstream');
      deps.log.message({ ...rec, result: 'refused', upstream: `${outcome.code} ${outcome.message}` });
      throw smtpError(outcome.code, outcome.message);
    }
    if (outcome.kind === 'queued') {
      deps.metrics.messagesQueued++;
      deps.log.message({ ...rec, result: 'queued', upstream: outcome.error, queueId: outcome.id });
      return `2.0.0 queued as ${outcome.id}: the mail server will get it later`;
    }
    deps.metrics.messagesSent++;
    deps.metrics.latencySum += ms / 1000;
    deps.metrics.latencyCount++;
    deps.log.message({
      ...rec,
      result: 'sent',
      upstream: outcome.response,
      ...(outcome.rejected ? { rejected: outcome.rejected, deadId: outcome.deadId } : {}),
    });
    return `2.0.0 sent: ${outcome.response}`;
  }

  return server;
}
