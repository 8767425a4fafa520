/**
 * Check 4, SMTP: connect, TLS, EHLO, XOAUTH2/OAUTHBEARER offered, AUTH, without sending (RFC 5321,
 * RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 7628 OAUTHBEARER).
 *
 * It uses nodemailer's SMTPConnection with the connection options `send` uses
 * (src/mail/smtp.ts connectionOptions: TLS rules, plain text only to a loopback address) and the
 * SASL encoding `send` uses (src/mail/sasl.ts). The connection's transaction log is the
 * transcript (`smtp C: ...`, `smtp S: ...`) and tells which step failed; the token and its SASL
 * encoding never appear in it.
 */
import type { TLSSocket } from 'node:tls';
import { format } from 'node:util';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { redact } from '../../util/redact.js';
import { UNREACHED_CODES } from '../../net/errors.js';
import { connectionOptions } from '../../mail/smtp.js';
import { adviseSmtpReply } from '../../mail/smtp-replies.js';
import {
  decodeSaslError,
  describeOauthError,
  saslErrorAnswer,
  saslInitialResponse,
  type OauthMechanism,
} from '../../mail/sasl.js';
import { Fail, fromError, type CheckResult, type Ctx } from './types.js';

/** Our SASL handler's name for nodemailer (it sends AUTH XOAUTH2 or AUTH OAUTHBEARER itself). */
const SASL_HANDLER = 'OAUTHMAIL-SASL';
const TLS_VERIFY = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO|HOSTNAME|ALTNAME|ERR_TLS_CERT/;

/** The fields of a nodemailer SMTP error that tell what failed. */
interface SmtpConnectionError {
  message: string;
  code?: string;
  /** The system error's code (ECONNREFUSED, SELF_SIGNED_CERT_IN_CHAIN...) when nodemailer set its own. */
  originalCode?: string;
  response?: string;
  responseCode?: number;
  command?: string;
}

/** The dialogue as the connection's transaction log tells it: each reply after its command. */
class Dialogue {
  greeted = false;
  lastCommand: string | undefined;
  /** The lines of the last EHLO reply (after STARTTLS, the one over TLS: RFC 3207 §4.2). */
  ehlo: string[] = [];
  /** Whether the EHLO reply before STARTTLS offered it. */
  offeredStartTls = false;
  upgraded = false;
  constructor(private readonly log: (line: string) => void) {}

  /** A bunyan-style logger for SMTPConnection. */
  logger() {
    const line = (entry: { tnx?: string } | undefined, message: string, ...args: unknown[]) => {
      const text = format(message, ...args);
      if (entry?.tnx === 'client') {
        this.lastCommand = text.split(' ')[0]?.toUpperCase();
        this.log(`C: ${text.replace(/\/\* secret \*\//g, '[REDACTED]')}`);
      } else if (entry?.tnx === 'server') {
        const lines = text.split(/\r?\n/);
        for (const l of lines) this.log(`S: ${l}`);
        this.greeted = true;
        if (this.lastCommand === 'EHLO') {
          this.ehlo = lines.map((l) => l.slice(4).trim().toUpperCase());
          if (!this.upgraded) this.offeredStartTls = this.ehlo.includes('STARTTLS');
        }
      } else {
        if (/upgraded with STARTTLS/i.test(text)) this.upgraded = true;
        this.log(text);
      }
    };
    return {
      level: line,
      trace: line,
      debug: line,
      info: line,
      warn: line,
      error: line,
      fatal: line,
    };
  }

  /** The SASL mechanisms of the last EHLO. */
  mechanisms(): string[] {
    return this.ehlo
      .filter((l) => l.startsWith('AUTH ') || l.startsWith('AUTH='))
      .flatMap((l) => l.slice(5).split(/\s+/))
      .filter(Boolean);
  }
}

function tlsFail(host: string, e: { code?: string; message: string }, what: string): Fail {
  if (e.code && TLS_VERIFY.test(e.code)) {
    return new Fail(
      `TLS failed: the certificate of ${host} is not trusted (${e.code})`,
      'config',
      "check that the host name is the server's real name; for a private CA pass --ca FILE (PEM)",
      'tls_verify',
    );
  }
  return new Fail(
    `TLS failed on ${what}: ${e.message}`,
    'config',
    'check the port and security: 465 = tls (implicit), 587 = starttls; a plain-text port cannot do TLS',
    'tls_failed',
  );
}

/** What a failure of the connection (before AUTH) means, by the step it happened in. */
function connectionFail(e: SmtpConnectionError, c: Ctx, host: string, d: Dialogue): Fail {
  const { port, security } = c.deps.profile.smtp!;
  const where = `${host}:${port}`;
  const sys = e.originalCode ?? e.code ?? '';
  const reply = e.response?.replace(/\r?\n/g, ' ');
  if (reply && e.responseCode) {
    if (e.command === 'STARTTLS') {
      return d.offeredStartTls
        ? new Fail(
            `STARTTLS was refused (${reply})`,
            'config',
            'check the port and security setting',
            'smtp_starttls_refused',
          )
        : new Fail(
            `${where} does not offer STARTTLS`,
            'config',
            'use the submission port 587 with starttls, or 465 with --smtp-security tls',
            'smtp_no_starttls',
          );
    }
    if (e.command === 'EHLO' || e.command === 'HELO')
      return new Fail(`EHLO was refused (${reply})`, 'mail', 'check the smtp host and port', 'smtp_ehlo');
    return new Fail(
      `the server did not greet (${reply})`,
      e.responseCode >= 500 ? 'mail' : 'transient',
      'check the smtp host and port',
      'smtp_greeting',
    );
  }
  const tlsStep = d.lastCommand === 'STARTTLS' ? 'STARTTLS' : security === 'tls' && !d.greeted ? where : '';
  // not reached at all: not a TLS problem, even on an implicit-TLS port
  const unreached = UNREACHED_CODES.has(sys) || e.code === 'ETIMEDOUT';
  if (TLS_VERIFY.test(sys) || /SSL|TLS/.test(sys) || e.code === 'ETLS' || (tlsStep && !unreached))
    return tlsFail(host, { code: sys, message: e.message }, tlsStep || 'STARTTLS');
  if (!d.greeted) {
    return new Fail(
      `could not connect to ${where} (${sys || e.message})`,
      'transient',
      "check the network and the profile's smtp host and port; this is safe to retry",
      'smtp_connect',
    );
  }
  return new Fail(
    `the SMTP connection failed during ${d.lastCommand ?? 'the greeting'}: ${e.message}`,
    'transient',
    'this is safe to retry; if it keeps failing, check the port and security',
    'smtp_network',
  );
}

export async function checkSmtp(c: Ctx, r: CheckResult): Promise<string> {
  const { profile: p, name } = c.deps;
  const smtp = p.smtp!;
  const host = smtp.host.replace(/^\[|\]$/g, '');
  const d = new Dialogue((l) => c.deps.transcript?.(redact(`smtp ${l}`)));
  r.details = { host, port: smtp.port, security: smtp.security };
  let options;
  try {
    options = await connectionOptions(p, {
      profile: name,
      ...(c.deps.caFile ? { caFile: c.deps.caFile } : {}),
      ...(c.deps.insecureTls ? { insecureTls: true } : {}),
      connectionTimeoutMs: c.deps.timeoutMs ?? 20_000,
    });
  } catch (e) {
    throw fromError(e);
  }
  const user = p.user!;
  const token = c.token!;
  let mech: OauthMechanism = 'XOAUTH2';
  let serverReason = '';
  let authReply = '';
  // both mechanisms through our own handler, under a name of its own (nodemailer would replace a
  // "XOAUTH2" without its OAuth2 token generator by the first mechanism offered, PLAIN): the check
  // reports the error challenge's reason and does not ask for a second token (the token check did)
  const sasl = async (ctx: {
    sendCommand(cmd: string): Promise<{ status: number; text: string; response: string }>;
  }) => {
    const ir = saslInitialResponse(mech, user, token, { host: String(options.base.host), port: smtp.port });
    let a = await ctx.sendCommand(`AUTH ${mech} ${ir}`);
    if (a.status === 334) {
      serverReason = describeOauthError(decodeSaslError(a.text) ?? {});
      a = await ctx.sendCommand(saslErrorAnswer(mech));
    }
    authReply = a.response.replace(/\r?\n/g, ' ');
    if (a.status !== 235) throw Object.assign(new Error('AUTH refused'), { responseCode: a.status });
  };
  const conn = new SMTPConnection({
    ...options.base,
    ...options.connectTo,
    name: 'oauthmail.localhost',
    logger: d.logger(),
    transactionLog: true,
    customAuth: { [SASL_HANDLER]: sasl },
  });
  // a connection that fails or closes ends the check: a SASL exchange in flight would wait forever
  const ended = new Promise<never>((_resolve, reject) => {
    conn.on('error', reject);
    conn.once('end', () =>
      reject(Object.assign(new Error('the server closed the connection'), { code: 'ECONNRESET' })),
    );
  });
  ended.catch(() => undefined);
  try {
    await Promise.race([new Promise<void>((resolve) => conn.connect(() => resolve())), ended]).catch(
      (e: unknown) => {
        throw connectionFail(e as SmtpConnectionError, c, host, d);
      },
    );
    const steps = ['connect', ...(smtp.security === 'tls' ? ['TLS'] : []), 'EHLO'];
    if (d.upgraded) steps.push('STARTTLS');
    const sock = (conn as unknown as { _socket?: TLSSocket })._socket;
    if (typeof sock?.getProtocol === 'function') r.details.tls = sock.getProtocol() ?? null;
    const mechs = d.mechanisms();
    r.details.mechanisms = mechs;
    const hasX = mechs.includes('XOAUTH2');
    const hasB = mechs.includes('OAUTHBEARER');
    if (p.sasl === 'xoauth2' ? hasX : p.sasl === 'oauthbearer' ? hasB : hasX || hasB) {
      mech = p.sasl === 'oauthbearer' || (p.sasl === 'auto' && !hasX) ? 'OAUTHBEARER' : 'XOAUTH2';
    } else {
      const want = p.sasl === 'auto' ? 'XOAUTH2 or OAUTHBEARER' : p.sasl.toUpperCase();
      throw new Fail(
        `${host}:${smtp.port} does not offer SASL ${want} (it offers: ${mechs.join(' ') || 'no AUTH at all'})`,
        'mail',
        p.sasl === 'auto'
          ? "this server does not take OAuth tokens: check the profile's smtp host and port (Microsoft 365: smtp.office365.com:587; Gmail: smtp.gmail.com:587)"
          : `let oauthmail pick the mechanism: oauthmail profile edit ${name} --sasl auto`,
        'smtp_no_oauth',
      );
    }
    steps.push(`${mech} offered`);
    await Promise.race([
      new Promise<void>((resolve, reject) =>
        conn.login({ method: SASL_HANDLER, user, pass: 'unused' }, (e) => (e ? reject(e) : resolve())),
      ),
      ended,
    ]).catch((e: unknown) => {
      if (!authReply) throw connectionFail(e as SmtpConnectionError, c, host, d);
    });
    r.details.authReply = authReply;
    const code = Number(authReply.slice(0, 3));
    if (code !== 235) {
      const advice = adviseSmtpReply(authReply, { user, profile: name, provider: p.provider });
      const tu = c.tokenUser;
      const mismatch = tu && tu.toLowerCase() !== user.toLowerCase();
      const reason = serverReason ? `; server's reason: ${serverReason}` : '';
      throw new Fail(
        mismatch
          ? `SMTP AUTH refused for ${user}: the token was issued to ${tu}, not to the mailbox (${authReply})${reason}`
          : `SMTP AUTH refused for ${user} (${authReply})${reason}`,
        code >= 400 && code < 500 ? 'transient' : 'mail',
        mismatch
          ? `set the profile's user to ${tu} (oauthmail profile edit ${name} --set user=${tu}), or sign in as ${user}: oauthmail login ${name}; a shared mailbox needs Send As for ${tu}`
          : advice.hint,
        mismatch ? 'smtp_wrong_user' : 'smtp_auth_refused',
      );
    }
    steps.push('AUTH');
    conn.quit();
    return `${steps.join(', ')}: signed in to ${host}:${smtp.port} as ${user} with ${mech}`;
  } finally {
    conn.close();
  }
}
