/** Microsoft Graph as a mail transport (issue 16): the client, its errors and its MIME rules. */
export { GraphClient, GRAPH_BASE_URL, GRAPH_REQUEST_LIMIT, UPLOAD_SESSION_MIN } from './client.js';
export type { GraphClientOptions, SendResult, GraphFolder, GraphMessage, DeltaRound } from './client.js';
export { graphError, retryRule, GRAPH_ERROR_CODES } from './graph-errors.js';
export { withEnvelopeBcc, cutAttachments } from './mime.js';
