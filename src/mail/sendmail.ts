/**
 * sendmail compatibility: the command line of sendmail(8) as Postfix implements it, an RFC 5322
 * message on stdin, and sendmail's exit codes (sysexits.h), so that cron's MAILTO, mail(1),
 * PHP's mail() and monitoring tools work unchanged.
 *
 *   -t          recipients also from To/Cc/Bcc (added to those on the command line, as Postfix does);
 *               the Bcc header is removed from the message
 *   -i, -oi     a line with a single "." does not end the message
 *   -f ADDR     envelope sender (also -r); used for From: when the message has none
 *   -F NAME     full name for a From: header that we add
 *   -o..., -B, -N, -R, -V, -L, -C, -X, -O, -U, -v, -bm   accepted and ignored (sendmail options that
 *               make no sense here), so that callers that pass them keep working
 */
import addressparser from 'nodemailer/lib/addressparser';
import { isEmail } from '../config/schema.js';
import {
  AuthError,
  ConfigError,
  MailServerError,
  OauthmailError,
  TransientError,
  UsageError,
  isOauthmailError,
  type ErrorOptions,
} from '../errors/index.js';

/** sysexits.h */
export const EX = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  NOUSER: 67,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  TEMPFAIL: 75,
  NOPERM: 77,
  CONFIG: 78,
} as const;

export interface SendmailArgs {
  extractRecipients: boolean;
  ignoreDots: boolean;
  from?: string;
  fullName?: string;
  recipients: string[];
  verbose: boolean;
}

/** A failure with a sendmail exit code (main() exits with exitCode). */
export class SendmailError extends OauthmailError {
  constructor(
    readonly sysexit: number,
    message: string,
    opts: ErrorOptions,
  ) {
    super(message, opts);
    // main() exits with exitCode; sendmail callers expect sysexits.h values instead of ours
    Object.defineProperty(this, 'exitCode', { value: sysexit, enumerable: true });
  }
}

// options that take a value (attached "-fX" or as the next argument), and flags without one
const WITH_VALUE = new Set(['f', 'r', 'F', 'N', 'R', 'V', 'L', 'C', 'X', 'O', 'B', 'h', 'p', 'q']);
const FLAGS = new Set(['t', 'i', 'v', 'U', 'G', 'n', 'm', 'x', 'd']);

function usage(msg: string): SendmailError {
  return new SendmailError(EX.USAGE, msg, {
    code: 'sendmail_usage',
    hint: 'usage: oauthmail sendmail [-t] [-i] [-f FROM] [-F NAME] [RECIPIENT...] < message',
  });
}

/** Parse sendmail's argv (getopt style: "-ti", "-fme@x", "-f me@x", "--" ends options). */
export function parseSendmailArgs(argv: string[]): SendmailArgs {
  const out: SendmailArgs = { extractRecipients: false, ignoreDots: false, recipients: [], verbose: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    if (a.startsWith('-o')) {
      // -oi / -oem / -odb / -oQ... : sendmail's old-style options; only -oi matters
      if (a === '-oi') out.ignoreDots = true;
      continue;
    }
    if (a.startsWith('-b')) {
      const mode = a.slice(2) || argv[++i] || '';
      if (mode !== 'm') throw usage(`sendmail mode -b${mode} is not supported (only delivery, -bm)`);
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      if (WITH_VALUE.has(c)) {
        let v = a.slice(j + 1);
        if (!v) {
          if (i + 1 >= argv.length) throw usage(`option -${c} needs a value`);
          v = argv[++i]!;
        }
        if (c === 'f' || c === 'r') out.from = v;
        else if (c === 'F') out.fullName = v;
        break;
      }
      if (!FLAGS.has(c)) throw usage(`unknown option -${c}`);
      if (c === 't') out.extractRecipients = true;
      else if (c === 'i') out.ignoreDots = true;
      else if (c === 'v') out.verbose = true;
    }
  }
  for (; i < argv.length; i++) {
    // each argument may be a comma-separated list, as sendmail allows
    for (const r of splitAddresses(argv[i]!)) out.recipients.push(r);
  }
  return out;
}

function splitAddresses(value: string): string[] {
  return addressparser(value, { flatten: true })
    .map((a) => (a.address || '').trim())
    .filter((a) => a.length > 0);
}

export interface ParsedMessage {
  /** Header fields in order, each with its raw (folded) text. */
  headers: Array<{ name: string; raw: string }>;
  body: string;
  eol: string;
}

/** Split an RFC 5322 message into header fields (unfolded names, raw text kept) and body. */
export function parseRawMessage(input: string): ParsedMessage {
  const eol = /\r\n/.test(input.slice(0, 2000)) ? '\r\n' : '\n';
  const lines = input.split(/\r?\n/);
  const headers: Array<{ name: string; raw: string }> = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') {
      i++;
      break;
    }
    if (/^[ \t]/.test(line) && headers.length) {
      headers[headers.length - 1]!.raw += eol + line; // folded continuation (RFC 5322 §2.2.3)
      continue;
    }
    const m = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/.exec(line);
    if (!m) {
      if (i === 0 && /^From /.test(line)) continue; // an mbox "From " line from some tools
      // not a header: the message has no header block; everything is body (sendmail does the same)
      break;
    }
    headers.push({ name: m[1]!, raw: line });
  }
  return { headers, body: lines.slice(i).join(eol), eol };
}

function headerValue(raw: string): string {
  return raw
    .slice(raw.indexOf(':') + 1)
    .replace(/\r?\n[ \t]/g, ' ')
    .trim();
}

export interface PreparedSendmail {
  raw: string;
  envelope: { from: string; to: string[] };
}

/**
 * Apply the sendmail semantics to a message read from stdin: -i dot handling, recipients from
 * the arguments and (with -t) the headers, Bcc stripped, From/Date/Message-ID added when missing.
 */
export function prepareSendmail(
  args: SendmailArgs,
  input: string,
  defaults: { user: string; from?: string },
): PreparedSendmail {
  let text = input;
  if (!args.ignoreDots) {
    // without -i a line with a single "." ends the message (sendmail(8))
    const m = /(^|\r?\n)\.(\r?\n|$)/.exec(text);
    if (m) text = text.slice(0, m.index + m[1]!.length);
  }
  const msg = parseRawMessage(text);
  const recipients = [...args.recipients];
  const dataErr = (m: string) =>
    new SendmailError(EX.DATAERR, m, { code: 'sendmail_bad_message', hint: 'fix the message header' });
  if (args.extractRecipients) {
    for (const h of msg.headers) {
      if (/^(to|cc|bcc)$/i.test(h.name)) {
        const v = headerValue(h.raw);
        const parsed = addressparser(v, { flatten: true });
        for (const a of parsed) {
          if (!a.address) {
            // an empty group ("undisclosed-recipients:;") flattens to nothing; a bare word is an error
            if (a.name) throw dataErr(`${h.name}: ${JSON.stringify(a.name)} is not an email address`);
            continue;
          }
          recipients.push(a.address.trim());
        }
      }
    }
  }
  for (const r of recipients) {
    if (!isEmail(r))
      throw new SendmailError(EX.DATAERR, `${JSON.stringify(r)} is not an email address`, {
        code: 'bad_address',
      });
  }
  const seen = new Set<string>();
  const to = recipients.filter((r) =>
    seen.has(r.toLowerCase()) ? false : (seen.add(r.toLowerCase()), true),
  );
  if (to.length === 0) {
    throw usage(
      args.extractRecipients
        ? 'no recipient addresses found in the message header'
        : 'no recipients given (and no -t)',
    );
  }

  const envFrom = args.from ?? defaults.from ?? defaults.user;
  const envAddr = args.from !== undefined ? args.from : (splitAddresses(envFrom)[0] ?? defaults.user);
  if (args.from !== undefined && args.from !== '' && args.from !== '<>' && !isEmail(args.from)) {
    throw usage(`-f ${JSON.stringify(args.from)} is not an email address`);
  }
  if (args.fullName !== undefined && /[\r\n]/.test(args.fullName))
    throw usage('-F must not contain line breaks');

  // Bcc must not reach the recipients (RFC 5322 §3.6.3)
  const kept = msg.headers.filter((h) => !/^bcc$/i.test(h.name));
  const has = (n: string) => kept.some((h) => h.name.toLowerCase() === n);
  const add: string[] = [];
  // cron and other local tools write "From: root (Cron Daemon)": a local name, not an address.
  // Office 365 and Gmail refuse that (SendAsDenied), so such a From becomes the profile's sender.
  const fromIdx = kept.findIndex((h) => h.name.toLowerCase() === 'from');
  if (fromIdx >= 0) {
    const value = headerValue(kept[fromIdx]!.raw);
    const parsed = addressparser(value, { flatten: true });
    if (!parsed.length || !parsed.every((a) => isEmail((a.address || '').trim()))) {
      // "root (Cron Daemon)": the comment is the display name (RFC 5322 §3.4 obsolete form)
      const comment = /\(([^()]*)\)\s*$/.exec(value)?.[1];
      const name = (args.fullName || comment || parsed[0]?.name || '').replace(/["\\\r\n]/g, '');
      kept.splice(fromIdx, 1);
      const addr = args.from && args.from !== '<>' ? args.from : envAddr;
      add.push(`From: ${name ? `"${name}" <${addr}>` : addr}`);
    }
  }
  if (!has('from') && !add.some((h) => h.startsWith('From:'))) {
    const addr = args.from && args.from !== '<>' ? args.from : envAddr;
    const name = args.fullName?.replace(/["\\]/g, '');
    add.push(`From: ${name ? `"${name}" <${addr}>` : addr}`);
  }
  if (!has('date')) add.push(`Date: ${new Date().toUTCString().replace('GMT', '+0000')}`);
  if (!has('message-id')) {
    const domain = (envAddr.split('@')[1] || 'localhost').replace(/[^A-Za-z0-9.-]/g, '');
    add.push(`Message-ID: <${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 12)}@${domain}>`);
  }
  for (const h of kept) {
    const v = headerValue(h.raw);
    if (/[\0]/.test(v)) throw dataErr(`header ${h.name} contains a NUL byte`);
  }
  const eol = '\r\n';
  const head = [...add, ...kept.map((h) => h.raw.replace(/\r?\n/g, eol))].join(eol);
  const body = msg.body.replace(/\r?\n/g, eol);
  return {
    raw: `${head}${eol}${eol}${body}`,
    envelope: { from: args.from === '<>' ? '' : envAddr, to },
  };
}

/** Map an oauthmail error to sendmail's exit status (sysexits.h), keeping the message and hint. */
export function toSendmailError(e: unknown): OauthmailError {
  if (e instanceof SendmailError) return e;
  if (!isOauthmailError(e)) {
    return new SendmailError(EX.SOFTWARE, `unexpected error: ${(e as Error)?.message ?? String(e)}`, {
      code: 'internal',
      cause: e,
    });
  }
  let code: number = EX.SOFTWARE;
  if (e instanceof TransientError) code = EX.TEMPFAIL;
  else if (e instanceof UsageError) code = e.code === 'bad_address' ? EX.DATAERR : EX.USAGE;
  else if (e instanceof ConfigError) code = EX.CONFIG;
  else if (e instanceof AuthError) code = EX.NOPERM;
  else if (e instanceof MailServerError) {
    const reply = String((e.cause as { response?: string } | undefined)?.response ?? e.message);
    if (e.code === 'smtp_auth_refused') code = EX.NOPERM;
    else if (/\b5\.1\.[0-3]\b|\b550[ -]5\.1|User unknown|Recipient address rejected/i.test(reply))
      code = EX.NOUSER;
    else code = EX.UNAVAILABLE;
  }
  // hints speak of oauthmail's exit codes ("exit code 6 is safe to retry"); this mode has sendmail's
  const hint = e.hint?.replace(/exit code 6( \/ sendmail 75)?/g, `exit code ${code}`);
  return new SendmailError(code, e.message, { code: e.code, ...(hint ? { hint } : {}), cause: e });
}
