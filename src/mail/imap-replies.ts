/**
 * Sentences for the IMAP refusals people actually meet with Exchange Online, Gmail and Dovecot.
 *
 * imapflow reports a failed AUTHENTICATE with the tagged reply text, its response code (RFC 5530:
 * AUTHENTICATIONFAILED, NONEXISTENT...), and the server's error challenge already decoded: for
 * XOAUTH2 and OAUTHBEARER (RFC 7628 §3.2.2) the server answers a bad token with a "+" carrying
 * base64 JSON such as {"status":"invalid_token","scope":"...","schemes":"bearer"}. We also decode
 * that JSON ourselves when only the base64 is at hand.
 */
import { NETWORK_ERROR_CODES } from '../net/errors.js';
import { ConfigError, MailServerError, TransientError, type OauthmailError } from '../errors/index.js';

export interface ImapErrorLike {
  message?: string;
  code?: string;
  /** Tagged reply text, e.g. "[AUTHENTICATIONFAILED] Authentication failed." */
  /** A string in imapflow 1; imapflow 2 puts the parsed reply object here (then read responseText). */
  response?: string | object;
  responseText?: string;
  responseStatus?: string;
  serverResponseCode?: string;
  authenticationFailed?: boolean;
  /** The decoded JSON of the SASL error challenge. */
  oauthError?: Record<string, unknown> | false;
  command?: string;
  path?: string;
}

export { decodeSaslError, describeOauthError } from './sasl.js';
import { describeOauthError } from './sasl.js';

const NETWORK_CODES = new Set([
  ...NETWORK_ERROR_CODES,
  // imapflow's own
  'CONNECT_TIMEOUT',
  'GREETING_TIMEOUT',
  'UPGRADE_TIMEOUT',
  'ETIMEOUT',
  'NoConnection',
  'EConnectionClosed',
  'ClosedAfterConnectText',
  'ClosedAfterConnectTLS',
]);

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|DEPTH_ZERO|HOSTNAME|ALTNAME/;

export function replyText(e: ImapErrorLike): string {
  const r = typeof e.response === 'string' ? e.response : undefined;
  return String(r ?? e.responseText ?? '').trim();
}

/**
 * The error a user sees for an IMAP failure: 5 for a refusal (authentication, mailbox, IMAP
 * disabled), 6 for network trouble, 3 for a certificate we cannot verify.
 */
export function imapErrorFrom(
  err: unknown,
  ctx: { user?: string; host?: string; mailbox?: string; profile?: string } = {},
): OauthmailError {
  const login = `oauthmail login${ctx.profile ? ` ${ctx.profile}` : ''}`;
  const e = (err ?? {}) as ImapErrorLike;
  const reply = replyText(e);
  const code = e.serverResponseCode ?? /^\[([A-Z-]+)/.exec(reply)?.[1];
  const user = ctx.user ?? 'the mailbox';
  const host = ctx.host ? ` ${ctx.host}` : '';
  const all = `${reply} ${e.message ?? ''}`;

  // Gmail: "[ALERT] Your account is not enabled for IMAP use"; Exchange: "User is authenticated but
  // not connected" (mailbox has IMAP off, or the token's user has no access to that mailbox)
  if (
    /not enabled for IMAP|IMAP (?:access )?(?:is )?disabled|IMAP.{0,20}not (?:allowed|enabled)/i.test(all)
  ) {
    return new MailServerError(`IMAP is disabled for ${user}${reply ? `: ${reply}` : ''}`, {
      code: 'imap_disabled',
      hint:
        'Gmail: turn on IMAP in the account settings (Forwarding and POP/IMAP); Microsoft 365: an admin runs ' +
        `Set-CASMailbox -Identity ${user} -ImapEnabled $true`,
      cause: err,
      serverCode: code,
    });
  }
  if (/authenticated but not connected/i.test(all)) {
    return new MailServerError(
      `the server accepted the token but could not open the mailbox ${user}: ${reply || e.message}`,
      {
        code: 'imap_not_connected',
        hint:
          `IMAP may be disabled for ${user} (Set-CASMailbox -Identity ${user} -ImapEnabled $true), or the signed-in ` +
          `account has no FullAccess to it (Add-MailboxPermission -Identity ${user} -User DELEGATE -AccessRights FullAccess)`,
        cause: err,
        serverCode: code,
      },
    );
  }
  if (e.authenticationFailed || e.command === 'AUTHENTICATE' || code === 'AUTHENTICATIONFAILED') {
    const oauth = e.oauthError && typeof e.oauthError === 'object' ? e.oauthError : undefined;
    const why = oauth ? describeOauthError(oauth) : '';
    const detail = [reply || e.message, why ? `server's reason: ${why}` : ''].filter(Boolean).join('; ');
    const scopeHint =
      oauth && (oauth.status === 'insufficient_scope' || oauth.status === '403')
        ? `sign in again with the IMAP scope (Microsoft: https://outlook.office.com/IMAP.AccessAsUser.All; Google: https://mail.google.com/): ${login}`
        : undefined;
    return new MailServerError(
      `AUTHENTICATE failed for ${user} on${host || ' the IMAP server'}${detail ? `: ${detail}` : ''}`,
      {
        code: 'imap_auth_refused',
        hint:
          scopeHint ??
          `check that the profile's user is the mailbox the token was issued for (or a shared mailbox it has FullAccess to), ` +
            `that IMAP is enabled for it, and that the token has the IMAP scope; then: ${login}`,
        cause: err,
        serverCode: code,
      },
    );
  }
  if (
    code === 'NONEXISTENT' ||
    /doesn't exist|does not exist|no such (?:mailbox|folder)|unknown mailbox|not found/i.test(reply)
  ) {
    return new MailServerError(
      `mailbox ${ctx.mailbox ?? e.path ?? ''} not found${reply ? `: ${reply}` : ''}`.replace(
        'mailbox  not',
        'mailbox not',
      ),
      {
        code: 'imap_mailbox_not_found',
        hint: "list the folders with: oauthmail mailboxes (names are case-sensitive except INBOX; subfolders use the server's delimiter)",
        cause: err,
        serverCode: code ?? 'NONEXISTENT',
      },
    );
  }
  if (e.code === 'LiteralTooLarge' || e.code === 'LineTooLarge' || e.code === 'ResponseTooLarge') {
    // our own limits (src/mail/imap.ts): far above anything asked for, so the server is broken or hostile
    return new MailServerError(
      `the IMAP server${host} sent more than oauthmail asked for (${e.message ?? e.code}); the connection was closed`,
      {
        code: 'imap_response_too_large',
        hint: 'nothing was marked, moved or deleted for messages not saved; report the server, or fetch with another client',
        cause: err,
      },
    );
  }
  if (e.code === 'ETIMEOUT') {
    return new TransientError(
      `the IMAP server${host} sent nothing for too long (idle timeout); the connection was closed`,
      {
        code: 'imap_idle_timeout',
        hint: 'safe to retry; a slow server or link may need a longer --timeout',
        cause: err,
      },
    );
  }
  if (e.code && TLS_CODES.test(e.code)) {
    return new ConfigError(`the IMAP server's certificate could not be verified: ${e.message ?? e.code}`, {
      code: 'tls_verify',
      hint: 'for a private CA pass --ca FILE (PEM); check that the imap host name matches the certificate',
      cause: err,
    });
  }
  if (
    (e.code && NETWORK_CODES.has(e.code)) ||
    /ECONNREFUSED|ECONNRESET|socket hang up|Connection (?:not available|closed)|timed? ?out/i.test(
      e.message ?? '',
    )
  ) {
    return new TransientError(`could not talk to the IMAP server${host}: ${e.message ?? e.code}`, {
      code: 'imap_network',
      hint: "check the network and the profile's imap host and port; this is safe to retry",
      cause: err,
    });
  }
  if (
    code === 'UNAVAILABLE' ||
    code === 'INUSE' ||
    code === 'LIMIT' ||
    code === 'SERVERBUG' ||
    /try again|temporar/i.test(reply)
  ) {
    return new TransientError(`the IMAP server is temporarily unavailable${reply ? `: ${reply}` : ''}`, {
      code: 'imap_unavailable',
      hint: 'this is safe to retry later',
      cause: err,
      response: reply,
    });
  }
  if (reply) {
    return new MailServerError(`the IMAP server refused${e.command ? ` ${e.command}` : ''}: ${reply}`, {
      code: 'imap_refused',
      cause: err,
      serverCode: code,
    });
  }
  return new TransientError(`IMAP failed${host ? ` on${host}` : ''}: ${e.message ?? String(err)}`, {
    code: 'imap_failed',
    hint: 'run again with --verbose for the protocol log (tokens are redacted)',
    cause: err,
  });
}
