/**
 * The shapes of `oauthmail test`: a check's result, the report, what the checks are given, and
 * the failure a check throws. A failure keeps the exit code of the error behind it (a usage
 * error stays 2, a refusal 5); its `kind` is that exit code's name (`oauthmail help exit-codes`).
 */
import type { Profile } from '../../config/schema.js';
import {
  EXIT_CODE_TABLE,
  ExitCode,
  isOauthmailError,
  type ErrorCode,
  type ExitCodeValue,
} from '../../errors/index.js';
import type { TokenProvider } from '../../auth/types.js';
import type { TokenSummary } from '../../auth/jwt.js';
import { redact } from '../../util/redact.js';

export const CHECK_IDS = ['profile', 'token', 'claims', 'smtp', 'imap', 'send'] as const;
export type CheckId = (typeof CHECK_IDS)[number];
export type CheckStatus = 'pass' | 'fail' | 'skipped';
/** The name of a failure's exit code. */
export type FailureKind = 'usage' | 'config' | 'auth' | 'mail' | 'transient' | 'error';

/** The exit code of each kind a check may name when it fails on its own finding. */
export const KIND_EXIT: Record<FailureKind, ExitCodeValue> = {
  error: ExitCode.ERROR,
  usage: ExitCode.USAGE,
  config: ExitCode.CONFIG,
  auth: ExitCode.AUTH,
  mail: ExitCode.MAIL,
  transient: ExitCode.TRANSIENT,
};

/** The kind (name) of an exit code; codes a check cannot end with (0, 130, 143) are errors. */
export function kindOfExit(exitCode: number): FailureKind {
  const name = EXIT_CODE_TABLE.find((e) => e.code === exitCode)?.name;
  return name && name in KIND_EXIT ? (name as FailureKind) : 'error';
}

export interface CheckResult {
  id: CheckId;
  title: string;
  status: CheckStatus;
  /** One line: what was found (pass), what went wrong (fail), or why it did not run (skipped). */
  summary: string;
  /** The fix, for a failure. */
  fix?: string;
  kind?: FailureKind;
  exitCode?: number;
  /** Stable code of the failure, e.g. missing_scope, AADSTS65001, smtp_auth_refused. */
  code?: ErrorCode;
  /** Things that did not fail the check but are worth knowing. */
  warnings: string[];
  /** What the check saw (never a token). */
  details: Record<string, string | number | boolean | string[] | null>;
  durationMs: number;
}

export interface TestReport {
  version: 1;
  profile: string;
  provider: string;
  user: string | null;
  ok: boolean;
  exitCode: number;
  checks: CheckResult[];
}

export interface CheckDeps {
  name: string;
  profile: Profile;
  /** The profile's TokenProvider (may throw, e.g. provider not supported). */
  provider: () => Promise<TokenProvider>;
  /** Whether the profile's secret or certificate is stored (client-credentials). */
  hasCredential?: () => Promise<boolean>;
  /** A token to test instead of the profile's sign-in (`--token-stdin`). */
  token?: string;
  sendTo?: string;
  caFile?: string;
  insecureTls?: boolean;
  timeoutMs?: number;
  /** Redacted protocol lines for --verbose. */
  transcript?: (line: string) => void;
  /** Token-info for opaque tokens (tests inject; default: HTTPS POST). */
  fetch?: typeof fetch;
  now?: () => Date;
}

/** A check's failure: what went wrong, its exit code, the fix, a stable code. */
export class Fail extends Error {
  readonly exitCode: ExitCodeValue;
  constructor(
    message: string,
    kindOrExit: FailureKind | ExitCodeValue,
    readonly fix: string,
    readonly code: ErrorCode,
  ) {
    super(message);
    this.exitCode = typeof kindOrExit === 'number' ? kindOrExit : KIND_EXIT[kindOrExit];
  }
  get kind(): FailureKind {
    return kindOfExit(this.exitCode);
  }
}

/** Any error as a check failure, keeping an OauthmailError's own exit code, hint and code. */
export function fromError(e: unknown): Fail {
  if (e instanceof Fail) return e;
  if (isOauthmailError(e)) return new Fail(e.message, e.exitCode, e.hint ?? 'run again with --verbose', e.code);
  const err = e as { message?: string };
  return new Fail(
    redact(err?.message ?? String(e)),
    'error',
    'run again with --verbose for details',
    'unexpected',
  );
}

export const TITLES: Record<CheckId, string> = {
  profile: 'profile is complete and consistent',
  token: 'an access token can be obtained',
  claims: 'the token carries the needed permissions',
  smtp: 'SMTP: connect, TLS, EHLO, OAuth offered, AUTH',
  imap: 'IMAP: connect, TLS, CAPABILITY, AUTHENTICATE, SELECT INBOX',
  send: 'a test message can be sent',
};

/** What one run of the checks has learnt so far. */
export interface Ctx {
  deps: CheckDeps;
  token?: string;
  summary?: TokenSummary;
  /** The user the token was issued to, when known. */
  tokenUser?: string;
}

export type Body = (c: Ctx, r: CheckResult) => Promise<string>;
