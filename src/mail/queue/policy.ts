/**
 * Which send failures put a message in the queue, and the words for it.
 *
 * Queued: everything that says "not now" rather than "not this message": a temporary failure
 * (4xx, RFC 5321 §4.2.1; network; a lock held), a sign-in that is needed or refused at the
 * identity provider, a keychain this session cannot reach, the mail server refusing the token,
 * a certificate that cannot be verified (a configuration fix away), and unexpected errors (the
 * message must not be lost to a bug).
 * Not queued: the message itself refused for good (5xx on MAIL/RCPT/DATA, bad recipient), bad
 * input and configuration that names no usable profile; the caller gets the exit code.
 */
import { ExitCode, isOauthmailError } from '../../errors/index.js';

export type QueueDecision = { queue: true; why: string } | { queue: false };

const QUEUED_CONFIG_CODES = new Set(['tls_verify']);
// the secrets are there but this session cannot open them (cron without the passphrase)
const SECRET_CODES = new Set(['passphrase_file', 'secret_decrypt_failed']);

export function queueDecision(err: unknown): QueueDecision {
  if (!isOauthmailError(err)) {
    return { queue: true, why: `unexpected error: ${(err as Error)?.message ?? String(err)}` };
  }
  const code = err.code;
  if (code === 'keychain_unavailable' || code === 'keychain_unreachable') {
    return { queue: true, why: 'the keychain cannot be reached from this session' };
  }
  if (err.exitCode === ExitCode.TRANSIENT) {
    return {
      queue: true,
      why: code.startsWith('smtp_') ? 'the mail server is not available now' : 'temporarily unavailable',
    };
  }
  if (err.exitCode === ExitCode.AUTH) return { queue: true, why: 'a sign-in is needed' };
  if (code === 'smtp_auth_refused') return { queue: true, why: 'the mail server refused the sign-in' };
  if (SECRET_CODES.has(code))
    return { queue: true, why: 'the stored sign-in cannot be read in this session' };
  if (QUEUED_CONFIG_CODES.has(code)) return { queue: true, why: 'the mail server could not be verified' };
  if (err.exitCode === ExitCode.ERROR && code !== 'sendmail_bad_message') {
    return { queue: true, why: `unexpected error` };
  }
  return { queue: false };
}

/** One line: the first line of an error's message, without a token (messages never hold one). */
export function errorLine(err: unknown): string {
  const m = (err as Error)?.message ?? String(err);
  return m.split(/\r?\n/)[0]!.slice(0, 300);
}

/** The one stderr line `sendmail` and `send --queue` print when they queue. */
export function queuedLine(id: string, why: string, err: unknown): string {
  const hint = isOauthmailError(err) && err.exitCode !== ExitCode.TRANSIENT ? err.hint : undefined;
  return (
    `oauthmail: queued ${id} (${why}: ${errorLine(err)}); ` +
    'it will be sent by `oauthmail queue run` (cron or the systemd timer), the next successful send, ' +
    'or `oauthmail refresh --all`' +
    (hint ? `; to fix the cause: ${hint.replace(/^run:\s*/, '')}` : '')
  );
}
