// Error bodies of the local Microsoft Graph endpoint.
//
// Copied from "Microsoft Graph error responses and resource types" (learn.microsoft.com/graph/errors):
// an error is a JSON object with a single `error` property holding `code` (a string such as
// "ErrorSendAsDenied"), `message` (for developers, not to be parsed) and `innerError` with `date`,
// `request-id` and `client-request-id`. The same ids come back as the `request-id` and
// `client-request-id` response headers. Status codes follow that page's table (400, 401, 403,
// 404, 410, 413, 429, 503, 504 ...).
import { randomUUID } from 'node:crypto';

export class GraphError extends Error {
  /**
   * @param {number} status
   * @param {string} code Graph's error code, e.g. "ErrorSendAsDenied"
   * @param {string} message
   * @param {Record<string,string>} [headers]
   */
  constructor(status, code, message, headers = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** The JSON body of an error answer. */
export function errorBody(code, message, requestId, clientRequestId) {
  return {
    error: {
      code,
      message,
      innerError: {
        date: new Date().toISOString().replace(/\.\d+Z$/, ''),
        'request-id': requestId,
        'client-request-id': clientRequestId || requestId,
      },
    },
  };
}

export const newRequestId = () => randomUUID();

// Messages as Exchange Online words them (quoted in Microsoft Q&A threads and the pages above).
export const MESSAGES = {
  accessDenied: 'Access is denied. Check credentials and try again.',
  sendAsDenied:
    'The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account., Cannot submit message.',
  mailboxNotEnabled: 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.',
  tooLarge: 'The request entity is too large.',
  throttled: 'Application is over its MailboxConcurrency limit.',
  unavailable: 'The service is temporarily unavailable. Please retry.',
  gatewayTimeout: 'The gateway did not receive a timely response from the upstream server.',
  syncStateNotFound: 'The sync state could not be found. Start a new sync (delta) without a token.',
  itemNotFound: 'The specified object was not found in the store.',
  quotaExceeded: 'The mailbox has exceeded its storage quota.',
  messageSizeExceeded: 'The message exceeds the maximum supported size.',
};
