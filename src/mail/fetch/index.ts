/** Listing and downloading messages: see ./run.ts for the rules that keep every message. */
export * from './filters.js';
export * from './listing.js';
export { mailboxTag, stateFileFor, readStateSync, type FetchState } from './state.js';
export { mboxrd, escapeMboxLines } from './sinks.js';
export * from './run.js';
