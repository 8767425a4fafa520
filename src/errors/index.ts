/**
 * Error classes with stable codes and exit codes.
 *
 * Every failure a user can see is one of these. src/main.ts is the only place that turns them
 * into an exit code and a message; everything else throws. The cause is kept (for --verbose),
 * and any raw provider response is kept as a non-enumerable property so that it is never
 * serialised by accident (JSON.stringify, util.inspect on a plain log line).
 */

import type { ErrorCode } from './codes.js';

export {
  ERROR_CODES,
  isKnownErrorCode,
  providerCode,
  type ErrorCode,
  type KnownErrorCode,
  type ProviderErrorCode,
} from './codes.js';

export const ExitCode = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  CONFIG: 3,
  AUTH: 4,
  MAIL: 5,
  TRANSIENT: 6,
  /** Stopped by SIGINT (Ctrl-C) or SIGTERM once a token write in flight was done: 128 + signal number, as a shell reports it. */
  INTERRUPTED: 130,
  TERMINATED: 143,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** What each exit code means; `oauthmail help exit-codes` prints this table. */
export const EXIT_CODE_TABLE: ReadonlyArray<{ code: ExitCodeValue; name: string; meaning: string }> = [
  { code: 0, name: 'ok', meaning: 'Success.' },
  { code: 1, name: 'error', meaning: 'An unexpected error (a bug, or a local fault such as a full disk).' },
  {
    code: 2,
    name: 'usage',
    meaning: 'Bad usage or bad input: an unknown flag, a malformed address, an invalid value.',
  },
  {
    code: 3,
    name: 'config',
    meaning: 'Configuration error: no such profile, an incomplete profile, an unreadable config file.',
  },
  {
    code: 4,
    name: 'auth',
    meaning:
      'Sign-in needed or consent missing: run the command the message names (e.g. oauthmail login NAME).',
  },
  {
    code: 5,
    name: 'mail',
    meaning: 'The mail server refused (SMTP or IMAP): authentication, sender, recipient.',
  },
  {
    code: 6,
    name: 'transient',
    meaning: 'Network error or service temporarily unavailable: safe to retry later.',
  },
  {
    code: 130,
    name: 'interrupted',
    meaning: 'Stopped by Ctrl-C (SIGINT) after saving what was done (a token refresh in flight, fetched messages, sent batch lines).',
  },
  {
    code: 143,
    name: 'terminated',
    meaning: 'Stopped by SIGTERM, after saving what was done, as for 130.',
  },
];

export interface ErrorOptions {
  /** Stable machine-readable code, e.g. `profile_not_found` (src/errors/codes.ts). */
  code: ErrorCode;
  /** One sentence saying what to do about it. */
  hint?: string;
  cause?: unknown;
  /** Raw provider response or body; kept non-enumerable, never printed. */
  response?: unknown;
}

export class OauthmailError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly exitCode: ExitCodeValue = ExitCode.ERROR;
  declare readonly response: unknown;

  constructor(message: string, options: ErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.hint = options.hint;
    Object.defineProperty(this, 'response', { value: options.response, enumerable: false, writable: false });
  }
}

/** Exit 2: the user typed something we cannot accept. */
export class UsageError extends OauthmailError {
  override readonly exitCode = ExitCode.USAGE;
}

/** Exit 3: the configuration is missing, incomplete or unreadable. */
export class ConfigError extends OauthmailError {
  override readonly exitCode = ExitCode.CONFIG;
}

/** Exit 4: a sign-in (or consent) is needed before this can work. */
export class AuthError extends OauthmailError {
  override readonly exitCode = ExitCode.AUTH;
}

/** Exit 5: an SMTP or IMAP server said no. */
export class MailServerError extends OauthmailError {
  override readonly exitCode = ExitCode.MAIL;
  /** SMTP reply code or IMAP status, when known. */
  readonly serverCode: number | string | undefined;
  constructor(message: string, options: ErrorOptions & { serverCode?: number | string }) {
    super(message, options);
    this.serverCode = options.serverCode;
  }
}

/** Exit 6: the network or a service is temporarily unavailable; retrying later may work. */
export class TransientError extends OauthmailError {
  override readonly exitCode = ExitCode.TRANSIENT;
}

/** Exit 1: a local failure that is not the user's input (keychain broken, disk full...). */
export class InternalError extends OauthmailError {}

/**
 * Exit 130 / 143: SIGINT or SIGTERM came during a critical section (a token refresh and its
 * write, src/util/critical.ts) and takes effect now that the section is done.
 */
export class InterruptedError extends OauthmailError {
  override readonly exitCode: ExitCodeValue;
  readonly signal: 'SIGINT' | 'SIGTERM';
  constructor(signal: 'SIGINT' | 'SIGTERM', message?: string, hint?: string) {
    super(message ?? `stopped by ${signal} (the token refresh in flight was saved first).`, {
      code: 'interrupted',
      ...(hint ? { hint } : {}),
    });
    this.signal = signal;
    this.exitCode = signal === 'SIGINT' ? ExitCode.INTERRUPTED : ExitCode.TERMINATED;
  }
}

export function isOauthmailError(e: unknown): e is OauthmailError {
  return e instanceof OauthmailError;
}
