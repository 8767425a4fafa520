/** Checks 5 and 6: IMAP through the client `fetch` uses, and a test message through the one `send` uses. */
import { redact } from '../../util/redact.js';
import { connectImap, closeImap } from '../../mail/imap.js';
import { imapErrorFrom } from '../../mail/imap-replies.js';
import { staticTokenSource } from '../../mail/token-source.js';
import { SmtpClient } from '../../mail/smtp.js';
import { buildMessage } from '../../mail/message.js';
import { Fail, fromError, type CheckResult, type Ctx } from './types.js';

export async function checkImap(c: Ctx, r: CheckResult): Promise<string> {
  const { profile: p } = c.deps;
  const user = p.user!;
  r.details = { host: p.imap!.host, port: p.imap!.port, security: p.imap!.security };
  let conn;
  try {
    conn = await connectImap(
      p,
      { ...staticTokenSource(user, c.token!), profile: c.deps.name },
      {
        ...(c.deps.caFile ? { caFile: c.deps.caFile } : {}),
        ...(c.deps.insecureTls ? { insecureTls: true } : {}),
        connectionTimeoutMs: c.deps.timeoutMs ?? 20_000,
        debug: (l) => c.deps.transcript?.(redact(imapLine(l))),
      },
    );
  } catch (e) {
    const f = fromError(e);
    const tu = c.tokenUser;
    if (f.kind === 'mail' && tu && tu.toLowerCase() !== user.toLowerCase() && /auth/i.test(f.code)) {
      throw new Fail(
        `IMAP AUTHENTICATE refused for ${user}: the token was issued to ${tu}, not to the mailbox (${f.message})`,
        'mail',
        `set the profile's user to ${tu} (oauthmail profile edit ${c.deps.name} --set user=${tu}), or sign in as ${user}; a shared mailbox needs FullAccess for ${tu}`,
        'imap_wrong_user',
      );
    }
    if (f.code === 'tls_verify') throw new Fail(`TLS failed: ${f.message}`, 'config', f.fix, f.code);
    throw new Fail(
      f.message.replace(/PROFILE/g, c.deps.name),
      f.kind,
      f.fix.replace(/PROFILE/g, c.deps.name),
      f.code,
    );
  }
  try {
    const client = conn.client;
    r.details.mechanism = conn.mechanism;
    r.details.capabilities = [...client.capabilities.keys()].sort();
    let exists: number;
    try {
      const box = await client.mailboxOpen('INBOX', { readOnly: true });
      exists = box.exists;
    } catch (e) {
      throw fromError(imapErrorFrom(e, { user, host: p.imap!.host, mailbox: 'INBOX' }));
    }
    r.details.inboxMessages = exists;
    return `connect, TLS, CAPABILITY, AUTHENTICATE ${conn.mechanism}, SELECT INBOX (${exists} message${exists === 1 ? '' : 's'}) on ${p.imap!.host}:${p.imap!.port} as ${user}`;
  } finally {
    await closeImap(conn.client);
  }
}

/** imapflow's JSON log lines as "imap C: ..." / "imap S: ..." (the dialogue), else as they are. */
function imapLine(l: string): string {
  const m = /^imap \w+: (\{.*\})$/.exec(l);
  if (!m) return l;
  try {
    const o = JSON.parse(m[1]!) as { src?: string; msg?: string };
    if (o.src === 's') return `imap S: ${o.msg ?? ''}`;
    if (o.src === 'c') return `imap C: ${o.msg ?? ''}`;
    return `imap ${o.msg ?? l}`;
  } catch {
    return l;
  }
}

// ---- 6. send ---------------------------------------------------------------------------------

export async function checkSend(c: Ctx, r: CheckResult): Promise<string> {
  const { profile: p, name } = c.deps;
  const built = await buildMessage(
    {
      to: [c.deps.sendTo!],
      subject: `oauthmail test message (profile ${name})`,
      text: `This message was sent by "oauthmail test --send-to" to check that ${p.user} can send mail.\n`,
    },
    p,
  );
  const client = await SmtpClient.create(p, staticTokenSource(p.user!, c.token!), {
    ...(c.deps.caFile ? { caFile: c.deps.caFile } : {}),
    ...(c.deps.insecureTls ? { insecureTls: true } : {}),
    retry: { mode: 'none', maxAttempts: 1, initialDelayMs: 0, multiplier: 1, maxDelayMs: 0 },
    debug: (l) => c.deps.transcript?.(redact(l)),
  });
  try {
    const res = await client.send(built);
    r.details = { to: c.deps.sendTo!, messageId: res.messageId, response: res.response };
    return `sent to ${c.deps.sendTo}: ${res.response}`;
  } finally {
    client.close();
  }
}

