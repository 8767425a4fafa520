/**
 * Helpers for the send tests: the stack's environment, JWTs minted with the stack's signing key
 * (what the fake identity provider signs with; Dovecot validates them locally), and reading
 * delivered mail back out of Dovecot's maildirs.
 * (test/support/stack-env.ts may replace this once the stack lands; kept local to the send tests.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Profile } from '../../src/config/schema.js';
import { DEFAULT_RETRY } from '../../src/config/schema.js';
import { mintJwt as mintStackJwt } from '../support/stack-env.js';

export interface Stack {
  smtpHost: string;
  smtpPort: number;
  smtpsPort: number;
  pkiDir: string;
  mailDir: string;
  logDir: string;
  kid: string;
  msIssuer: string;
  idpUrl: string;
  postfixConf: string;
}

export function stack(): Stack {
  const e = process.env;
  if (e.OAUTHMAIL_STACK !== '1' || !e.SMTP_PORT || !e.STACK_PKI_DIR) {
    throw new Error(
      'the send integration tests need the local mail stack: run them through test/support/with-stack.sh (or source .stack/env after test/support/stack/start.sh)',
    );
  }
  return {
    smtpHost: e.SMTP_HOST ?? 'localhost',
    smtpPort: Number(e.SMTP_PORT),
    smtpsPort: Number(e.SMTPS_PORT),
    pkiDir: e.STACK_PKI_DIR,
    mailDir: e.STACK_MAIL_DIR!,
    logDir: e.STACK_LOG_DIR!,
    kid: e.STACK_JWT_KID!,
    msIssuer: e.STACK_MS_ISSUER!,
    idpUrl: e.IDP_URL ?? '',
    postfixConf: e.POSTFIX_CONF_DIR!,
  };
}

/** An access token Dovecot accepts for SMTP (or refuses: wrong scope, expired). */
export function mintJwt(
  s: Stack,
  user: string,
  opts: { scope?: string; lifetimeSeconds?: number } = {},
): string {
  return mintStackJwt({
    user,
    scopes: (opts.scope ?? 'SMTP.Send').split(/\s+/).filter(Boolean),
    ...(opts.lifetimeSeconds !== undefined ? { lifetimeSeconds: opts.lifetimeSeconds } : {}),
  });
}

export function smtpProfile(s: Stack, user: string, extra: Partial<Profile> = {}): Profile {
  return {
    provider: 'microsoft',
    clientId: '11111111-1111-4111-8111-111111111111',
    clientType: 'public',
    flow: 'device',
    scopes: ['https://outlook.office.com/SMTP.Send', 'offline_access'],
    capabilities: ['send'],
    user,
    smtp: { host: s.smtpHost, port: s.smtpPort, security: 'starttls' },
    sasl: 'xoauth2',
    retry: { ...DEFAULT_RETRY, initialDelayMs: 50, maxDelayMs: 200 },
    storage: 'file',
    ...extra,
  };
}

/** Every delivered message file of a mailbox (raw RFC 5322 text). */
export function mailbox(s: Stack, address: string): Array<{ file: string; text: string }> {
  const [local, domain] = address.toLowerCase().split('@') as [string, string];
  const out: Array<{ file: string; text: string }> = [];
  for (const sub of ['new', 'cur']) {
    const dir = path.join(s.mailDir, domain, local, sub);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      const file = path.join(dir, f);
      try {
        out.push({ file, text: readFileSync(file, 'utf8') });
      } catch {
        // moved between new/ and cur/ while we listed
      }
    }
  }
  return out;
}

/** Messages in a mailbox that contain `tag`; waits until `count` arrived (Postfix delivers over LMTP). */
export async function waitForMail(s: Stack, address: string, tag: string, count: number, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const found = mailbox(s, address).filter((m) => m.text.includes(tag));
    if (found.length >= count || Date.now() > end) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A Postfix sender restriction for one address: mail from tempfail@ gets 451 at RCPT time,
 * permfail@ gets 554. Idempotent; other senders are untouched.
 */
export async function installSenderFaults(s: Stack): Promise<void> {
  const map = path.join(s.postfixConf, 'oauthmail-sender-faults');
  // merge: other files (queue-support.ts setSenderFault) keep their own senders in this map, and
  // a file that starts while another one's fault is on must not wipe it
  const mine = [
    'tempfail@contoso.test 451 4.3.0 oauthmail test: try again later',
    'permfail@contoso.test 554 5.7.1 oauthmail test: not allowed',
  ];
  const lines = existsSync(map) ? readFileSync(map, 'utf8').split('\n').filter(Boolean) : [];
  const missing = mine.filter((l) => !lines.includes(l));
  let changed = missing.length > 0;
  if (changed) writeFileSync(map, [...lines, ...missing].join('\n') + '\n');
  const want: Record<string, string> = {
    smtpd_sender_restrictions: `check_sender_access texthash:${map}`,
    // An XOAUTH2 initial response with a real Entra-sized token is over 2 KB of base64; Postfix's
    // default line_length_limit (2048) cuts it ("Invalid base64 data in initial response").
    line_length_limit: '16384',
  };
  for (const [k, v] of Object.entries(want)) {
    const cur = execFileSync('postconf', ['-c', s.postfixConf, '-h', k], { encoding: 'utf8' }).trim();
    if (cur !== v) {
      execFileSync('postconf', ['-c', s.postfixConf, '-e', `${k}=${v}`]);
      changed = true;
    }
  }
  if (changed) await reloadPostfix(s);
}

/**
 * `postfix reload`, and wait until every smtpd that ran before it has exited (an idle one read the
 * old maps and could still take the next connection). A wait for a condition (the
 * processes, found in /proc as children of this Postfix's master), not for a fixed time.
 */
export async function reloadPostfix(s: Stack): Promise<void> {
  const old = smtpdPids(s);
  execFileSync('postfix', ['-c', s.postfixConf, 'reload'], { stdio: 'ignore' });
  // one still serving a session (another file's) finishes it first and takes no new connection
  // meanwhile; the idle ones exit at once: give those up to 5 s
  const end = Date.now() + 5_000;
  while (old.some((pid) => existsSync(`/proc/${pid}`)) && Date.now() < end)
    await new Promise((r) => setTimeout(r, 20));
}

/** The smtpd processes of the stack's Postfix (children of its master). */
function smtpdPids(s: Stack): number[] {
  const queueDir = execFileSync('postconf', ['-c', s.postfixConf, '-h', 'queue_directory'], {
    encoding: 'utf8',
  }).trim();
  const master = Number(readFileSync(path.join(queueDir, 'pid', 'master.pid'), 'utf8').trim());
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // /proc/PID/stat: "pid (comm) state ppid ..."
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(readFileSync(`/proc/${d}/stat`, 'utf8'));
      if (m && m[1] === 'smtpd' && Number(m[2]) === master) pids.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/**
 * Wait until Postfix has settled for what a test did after the log offset `since`: every SMTP
 * session that began after it is logged as ended, and nothing is on its way to a mailbox (no
 * message in the incoming or active queue; deferred ones are not on their way). Other test files
 * share this Postfix, so their sessions from before `since` do not count. A wait for a condition,
 * not for a time: after `timeoutMs` it returns and the caller's assertions decide.
 */
export async function postfixSettled(
  s: Stack,
  o: { since?: number; timeoutMs?: number } = {},
): Promise<void> {
  const end = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    const moving = execFileSync('postqueue', ['-c', s.postfixConf, '-j'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .filter((l) => /"queue_name":\s*"(incoming|active|maildrop)"/.test(l)).length;
    const open = new Set<string>();
    for (const m of postfixLog(s)
      .slice(o.since ?? 0)
      .matchAll(/smtpd\[(\d+)\]: (connect|disconnect) from /g)) {
      if (m[2] === 'connect') open.add(m[1]!);
      else open.delete(m[1]!);
    }
    if ((moving === 0 && open.size === 0) || Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Lines of Postfix's log (AUTH attempts are logged as "sasl_method=XOAUTH2" or "authentication failed"). */
export function postfixLog(s: Stack): string {
  try {
    return readFileSync(path.join(s.logDir, 'postfix.log'), 'utf8');
  } catch {
    return '';
  }
}
