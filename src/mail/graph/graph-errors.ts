/**
 * The catalogue of Microsoft Graph errors: what each Graph answer means for the user, as one of the
 * project's typed errors (src/errors/, exit codes in DESIGN.md), and whether the request may be
 * retried.
 *
 * Graph's error body ("Microsoft Graph error responses and resource types") is
 * `{error: {code, message, innerError: {date, request-id, client-request-id}}}`; the `code` names
 * the failure (ErrorSendAsDenied, MailboxNotEnabledForRESTAPI ...) and the HTTP status its kind.
 * The raw body is kept non-enumerable on the error (never printed); the message names the
 * mailbox and the fix, never a token.
 */
import {
  AuthError,
  ConfigError,
  MailServerError,
  OauthmailError,
  TransientError,
} from '../../errors/index.js';

export interface GraphErrorBody {
  error?: { code?: string; message?: string; innerError?: Record<string, unknown> };
}

/** What the request was doing, for the sentence. */
export interface GraphRequestContext {
  /** e.g. "send", "list folders", "download message", "delta" */
  action: string;
  mailbox: string;
  /** the From address of a send, when known */
  from?: string;
  /** profile name, for hints that name the command */
  profile?: string;
  /** true for a request that changes nothing (or the same thing again): GET, DELETE, an upload range */
  idempotent: boolean;
}

/** How the retry loop treats an answer. */
export type RetryRule = 'always' | 'idempotent' | 'never';

/** Retry rules by HTTP status ("Microsoft Graph throttling guidance", "best practices"). */
export function retryRule(status: number): RetryRule {
  // 429 and 503: the request was refused, not run; the guidance says wait Retry-After and retry.
  if (status === 429 || status === 503) return 'always';
  // 500/502/504: the request may have been carried out (a send may have gone): repeat only what
  // is safe to repeat.
  if (status === 500 || status === 502 || status === 504) return 'idempotent';
  return 'never';
}

/** Graph error codes this project names, with the exit code class they map to. */
export const GRAPH_ERROR_CODES = {
  ErrorSendAsDenied: 'graph_send_as_denied',
  MailboxNotEnabledForRESTAPI: 'graph_mailbox_not_enabled',
  ErrorQuotaExceeded: 'graph_quota_exceeded',
  ErrorMessageSizeExceeded: 'graph_message_too_large',
  ErrorRequestEntityTooLarge: 'graph_request_too_large',
  ErrorAccessDenied: 'graph_access_denied',
  InvalidAuthenticationToken: 'graph_token_refused',
  ErrorInvalidUser: 'graph_invalid_user',
  ErrorItemNotFound: 'graph_item_not_found',
  SyncStateNotFound: 'graph_sync_state_not_found',
} as const;

const login = (ctx: GraphRequestContext) => `oauthmail login ${ctx.profile ?? 'PROFILE'}`;

/** The typed error for a Graph answer that is not a success. */
export function graphError(
  status: number,
  body: GraphErrorBody | undefined,
  ctx: GraphRequestContext,
  retryAfterMs?: number,
): OauthmailError {
  const code = body?.error?.code ?? `HTTP ${status}`;
  const where = `Microsoft Graph (${ctx.action}, mailbox ${ctx.mailbox})`;
  const opts = { response: body };
  switch (code) {
    case 'ErrorSendAsDenied':
      return new MailServerError(
        `${where} refused to send as ${ctx.from ?? 'the From address'}: ErrorSendAsDenied (no Send As permission on ${ctx.from ?? 'that address'}).`,
        {
          ...opts,
          code: GRAPH_ERROR_CODES.ErrorSendAsDenied,
          serverCode: code,
          hint: `Send with From: ${ctx.mailbox}, or have an Exchange admin grant Send As (Add-RecipientPermission ${ctx.from ?? 'ADDRESS'} -AccessRights SendAs -Trustee USER).`,
        },
      );
    case 'MailboxNotEnabledForRESTAPI':
      return new MailServerError(
        `${where}: MailboxNotEnabledForRESTAPI (the mailbox is inactive, soft-deleted or hosted on-premises).`,
        {
          ...opts,
          code: GRAPH_ERROR_CODES.MailboxNotEnabledForRESTAPI,
          serverCode: code,
          hint: 'Use an Exchange Online mailbox with a license, or the SMTP/IMAP transport for an on-premises mailbox.',
        },
      );
    case 'ErrorQuotaExceeded':
      return new MailServerError(`${where}: ErrorQuotaExceeded (the mailbox is over its storage quota).`, {
        ...opts,
        code: GRAPH_ERROR_CODES.ErrorQuotaExceeded,
        serverCode: code,
        hint: `Free space in ${ctx.mailbox} (empty Deleted Items and Sent Items) and try again.`,
      });
    case 'ErrorMessageSizeExceeded':
      return new MailServerError(
        `${where}: ErrorMessageSizeExceeded (the message is larger than the mailbox may send).`,
        {
          ...opts,
          code: GRAPH_ERROR_CODES.ErrorMessageSizeExceeded,
          serverCode: code,
          hint: "Send smaller attachments, or have an Exchange admin raise the mailbox's MaxSendSize (up to 150 MB).",
        },
      );
    case 'ErrorRequestEntityTooLarge':
      return new MailServerError(
        `${where}: ErrorRequestEntityTooLarge (a request over Graph's 4 MB limit).`,
        {
          ...opts,
          code: GRAPH_ERROR_CODES.ErrorRequestEntityTooLarge,
          serverCode: code,
          hint: 'Graph takes at most 4 MB per request: the text and small attachments together must stay under about 3 MB, each file under 150 MB.',
        },
      );
    case 'ErrorInvalidUser':
      return new ConfigError(`${where}: ErrorInvalidUser (no such user or mailbox in the tenant).`, {
        ...opts,
        code: GRAPH_ERROR_CODES.ErrorInvalidUser,
        hint: `Check the mailbox address of the profile (oauthmail profile edit ${ctx.profile ?? 'PROFILE'} --user ADDRESS).`,
      });
    case 'ErrorItemNotFound':
      return new MailServerError(`${where}: ErrorItemNotFound (the message or folder is gone).`, {
        ...opts,
        code: GRAPH_ERROR_CODES.ErrorItemNotFound,
        serverCode: code,
      });
    case 'SyncStateNotFound':
      return new MailServerError(
        `${where}: SyncStateNotFound (the delta token expired; a full resync is needed).`,
        {
          ...opts,
          code: GRAPH_ERROR_CODES.SyncStateNotFound,
          serverCode: code,
        },
      );
    default:
      break;
  }
  if (status === 401)
    return new AuthError(`${where} refused the access token (${code}).`, {
      ...opts,
      code: GRAPH_ERROR_CODES.InvalidAuthenticationToken,
      hint: `Sign in again: ${login(ctx)}`,
    });
  if (status === 403)
    return new AuthError(
      `${where}: access denied (${code}): the token lacks the Graph permission for this.`,
      {
        ...opts,
        code: GRAPH_ERROR_CODES.ErrorAccessDenied,
        hint: `Grant Mail.Send and Mail.ReadWrite (Mail.Send.Shared and Mail.ReadWrite.Shared for a shared mailbox; application permissions for app-only), then ${login(ctx)}.`,
      },
    );
  const wait = retryAfterMs !== undefined ? ` (Retry-After ${Math.ceil(retryAfterMs / 1000)} s)` : '';
  if (status === 429)
    return new TransientError(`${where} is throttling requests: 429 ${code}${wait}.`, {
      ...opts,
      code: 'graph_throttled',
      hint: 'Try again later; Graph limits requests per mailbox and per app.',
    });
  if (status === 503)
    return new TransientError(`${where} is unavailable: 503 ${code}${wait}.`, {
      ...opts,
      code: 'graph_unavailable',
      hint: 'Try again later.',
    });
  if (status === 504 || status === 500 || status === 502) {
    const maybe = ctx.idempotent
      ? ''
      : ' The message may or may not have been sent: check Sent Items before sending again.';
    return new TransientError(`${where} failed: ${status} ${code}.${maybe}`, {
      ...opts,
      code: status === 504 ? 'graph_timeout' : 'graph_server_error',
      hint: 'Try again later.',
    });
  }
  return new MailServerError(`${where} refused the request: ${status} ${code}.`, {
    ...opts,
    code: 'graph_refused',
    serverCode: code,
  });
}

/** A network failure (no HTTP answer) as a TransientError. */
export function graphNetworkError(cause: unknown, ctx: GraphRequestContext, url: string): TransientError {
  const c = cause as { cause?: { code?: string; message?: string }; message?: string };
  const detail = c?.cause?.code ?? c?.cause?.message ?? c?.message ?? String(cause);
  const maybe = ctx.idempotent
    ? ''
    : ' The message may or may not have been sent: check Sent Items before sending again.';
  return new TransientError(
    `Microsoft Graph (${ctx.action}) at ${new URL(url).origin} could not be reached: ${detail}.${maybe}`,
    {
      code: 'graph_network',
      cause,
      hint: 'Check the network (and a proxy) and try again.',
    },
  );
}
