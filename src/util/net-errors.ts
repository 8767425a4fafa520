/**
 * Node's error codes for "the network did not get us there": refused, reset, unreachable, DNS
 * failures, timeouts. Callers map them to TransientError (exit 6); the retry loop retries the
 * subset that can change on a second try (src/auth/network.ts).
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_CONNECT_TIMEOUT',
]);
