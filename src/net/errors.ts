/**
 * The one list of Node's error codes for "the network did not get us there", for every protocol
 * (HTTP to identity providers, SMTP, IMAP, `oauthmail test`). Callers map them to TransientError
 * (exit 6); retry loops retry the subset that can change on a second try.
 */

/** The server was not reached: refused, unreachable, DNS failures, connect timeouts. */
export const UNREACHED_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The connection broke after it was made. */
const BROKEN_CODES = ['ECONNRESET', 'EPIPE', 'ECONNABORTED'];

/** Every network failure. */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([...UNREACHED_CODES, ...BROKEN_CODES]);

/**
 * Network failures worth another try: all but DNS "not found" (the name will not exist a second
 * later), with undici's socket and header/body timeouts (fetch).
 */
export const RETRYABLE_NETWORK_CODES: ReadonlySet<string> = new Set([
  ...[...NETWORK_ERROR_CODES].filter((c) => c !== 'ENOTFOUND'),
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** The system codes of RETRYABLE_NETWORK_CODES as words in a message (a library's text). */
const RETRYABLE_IN_TEXT = new RegExp(
  `\\b(${[...RETRYABLE_NETWORK_CODES].filter((c) => c.startsWith('E')).join('|')})\\b`,
);

/** Does the text (error code, errno, message) name a network failure worth another try? */
export function mentionsRetryableNetworkCode(text: string): boolean {
  return RETRYABLE_IN_TEXT.test(text);
}

/** A request that got no answer in time, reported as ETIMEDOUT so that it is retried like one. */
export function noAnswerError(host: string, timeoutMs: number, cause?: unknown): Error {
  return Object.assign(new Error(`no answer from ${host} in ${timeoutMs} ms`), {
    code: 'ETIMEDOUT',
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * The error code of a network failure, looking through wrappers (fetch puts it in `cause`;
 * nodemailer keeps the system code in `originalCode`).
 */
export function networkErrorCode(e: unknown): string | undefined {
  for (let c: unknown = e, i = 0; c && i < 5; c = (c as { cause?: unknown }).cause, i++) {
    for (const key of ['code', 'originalCode'] as const) {
      const code = (c as Record<string, unknown>)[key];
      if (typeof code === 'string' && (NETWORK_ERROR_CODES.has(code) || code.startsWith('UND_ERR')))
        return code;
    }
  }
  return undefined;
}
