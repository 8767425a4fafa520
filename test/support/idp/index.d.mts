// Types for index.mjs (the fake identity provider), for TypeScript tests.
export interface IdpHandle {
  /** e.g. "https://localhost:41234" (the TLS certificate covers localhost) */
  url: string;
  port: number;
  close(): Promise<void>;
}
export interface StartIdpOptions {
  /** folder made by test/support/pki.sh */
  pkiDir: string;
  /** 0 = random (default) */
  port?: number;
  /** default 127.0.0.1 (then also ::1 on the same port) */
  host?: string;
  /** fixtures object or path; default test/support/fixtures.json */
  fixtures?: object | string;
  /** log one line per request to stderr (or to this function); default: only if IDP_LOG is set */
  log?: boolean | ((line: string) => void);
}
export function startIdp(opts: StartIdpOptions): Promise<IdpHandle>;
export const DEFAULT_FIXTURES: string;
