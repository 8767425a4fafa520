/**
 * Google's OAuth 2.0 errors (and those of standards-based providers, which share RFC 6749 §5.2's
 * error codes) → our error classes with a sentence saying what to do.
 *
 * Google answers `{error, error_description}`; the description is English prose that can carry
 * request details, so it is matched against known phrases but never shown verbatim.
 */
import { redact } from '../../util/redact.js';
import {
  AuthError,
  ConfigError,
  OauthmailError,
  TransientError,
  UsageError,
  providerCode,
  type ErrorCode,
} from '../../errors/index.js';

export interface OAuthErrorBody {
  error?: string;
  error_description?: string;
  status?: number;
}

export interface OAuthErrorContext {
  profile: string;
  provider: 'google' | 'custom';
  clientId: string;
  /** The redirect URI that was sent, for redirect_uri_mismatch. */
  redirectUri?: string;
  /** True for the service-account (JWT bearer, RFC 7523) grant. */
  serviceAccount?: boolean;
  /** What was being done: a refresh needs a new sign-in, a sign-in needs to be retried. */
  during?: 'login' | 'refresh' | 'service-account';
}

export const GOOGLE_REVOKED_SENTENCE =
  "Google says the refresh token has expired or been revoked: the user revoked access, changed the password, or the app is in 'Testing' publishing status, where Google expires refresh tokens after 7 days";

/** Map an OAuth error response to an OauthmailError. `cause` is kept; the body is never printed. */
export function oauthError(body: OAuthErrorBody, ctx: OAuthErrorContext, cause?: unknown): OauthmailError {
  const error = (body.error ?? '').trim();
  const desc = body.error_description ?? '';
  const login = `oauthmail login ${ctx.profile}`;
  const google = ctx.provider === 'google';
  const opts = (code: ErrorCode, hint: string) => ({ code, hint, cause, response: body });
  if (ctx.serviceAccount || ctx.during === 'service-account') {
    if (error === 'unauthorized_client') {
      return new AuthError(
        'the service account may not impersonate users for these scopes (domain-wide delegation is missing or lacks the scope)',
        opts(
          'sa_unauthorized_client',
          "a Workspace administrator must add the service account's client ID with scope https://mail.google.com/ in Admin console → Security → API controls → Domain-wide delegation",
        ),
      );
    }
    if (error === 'invalid_grant' && /email or user id/i.test(desc)) {
      return new AuthError(
        'the mailbox user to impersonate is not known to Google or not allowed for this service account',
        opts(
          'sa_invalid_subject',
          `check the profile's user (oauthmail profile show ${ctx.profile}); it must be a user of the Workspace domain`,
        ),
      );
    }
    if (error === 'invalid_grant' && /signature|account not found/i.test(desc)) {
      return new ConfigError(
        "the service-account key was refused (deleted, disabled, or not this account's key)",
        opts(
          'sa_invalid_key',
          `create a new JSON key, then: oauthmail profile secret ${ctx.profile} --service-account-key FILE.json`,
        ),
      );
    }
    if (error === 'invalid_grant' && /iat|exp|timeframe/i.test(desc)) {
      return new AuthError(
        "the service-account assertion was refused as out of date: this computer's clock is probably wrong",
        opts('sa_clock_skew', 'set the clock right (NTP), then retry'),
      );
    }
  }
  switch (error) {
    case 'invalid_grant':
      if (ctx.during === 'login') {
        return new AuthError(
          'the authorization code was refused (expired, already used, or the PKCE check failed)',
          opts('invalid_grant', `run: ${login}`),
        );
      }
      return new AuthError(
        google
          ? GOOGLE_REVOKED_SENTENCE
          : 'the identity provider says the refresh token has expired or been revoked',
        opts(
          'invalid_grant',
          google
            ? `sign in again and grant consent: ${login} (publish the app in the Google Cloud console's OAuth consent screen to stop the 7-day expiry)`
            : `run: ${login}`,
        ),
      );
    case 'redirect_uri_mismatch':
      return new ConfigError(
        `the redirect URI ${ctx.redirectUri ?? ''} is not registered for client ${ctx.clientId}`.replace(
          '  ',
          ' ',
        ),
        opts(
          'redirect_uri_mismatch',
          google
            ? 'use a "Desktop app" OAuth client in the Google Cloud console (it accepts any http://127.0.0.1 / localhost port), or register this exact URI'
            : 'register this redirect URI for the client at the identity provider, or set the registered one: oauthmail profile edit NAME --set redirectUri=URI',
        ),
      );
    case 'access_denied':
      return new AuthError(
        'the sign-in was cancelled or consent was refused',
        opts(
          'access_denied',
          google
            ? `run: ${login} and accept the "Read, compose, send, and permanently delete all your email" permission (an app in Testing status also needs the account listed as a test user)`
            : `run: ${login} and accept the requested permissions`,
        ),
      );
    case 'invalid_client':
    case 'unauthorized_client':
      return new ConfigError(
        `the identity provider refused client ${ctx.clientId} or its secret (${error})`,
        opts(
          error,
          `check the client ID (oauthmail profile show ${ctx.profile}) and store the right secret: oauthmail profile secret ${ctx.profile} --stdin`,
        ),
      );
    case 'invalid_scope':
      return new ConfigError(
        google
          ? 'Google refused the requested scope; SMTP and IMAP need https://mail.google.com/ (gmail.send is not enough)'
          : 'the identity provider refused the requested scopes',
        opts('invalid_scope', `fix the scopes: oauthmail profile edit ${ctx.profile} --set scopes=...`),
      );
    case 'consent_required':
    case 'interaction_required':
    case 'login_required':
      return new AuthError(
        `profile ${ctx.profile} needs a new sign-in (${error})`,
        opts(error, `run: ${login}`),
      );
    case 'expired_token':
      return new AuthError(
        'the device code expired before the sign-in was finished',
        opts('login_timeout', `run: ${login} --device (and enter the code sooner)`),
      );
    case 'authorization_declined':
      return new AuthError(
        'the sign-in was declined on the device-code page',
        opts('access_denied', `run: ${login} --device`),
      );
    case 'unsupported_grant_type':
      return new ConfigError(
        'the identity provider does not support this grant type for this client',
        opts('unsupported_grant_type', `check the profile's flow: oauthmail profile show ${ctx.profile}`),
      );
    case 'invalid_request':
      return new UsageError(
        'the identity provider refused the request as malformed (invalid_request)',
        opts(
          'invalid_request',
          "run again with --verbose; check the profile's endpoints and client settings",
        ),
      );
    case 'temporarily_unavailable':
    case 'server_error':
      return new TransientError(
        `the identity provider is temporarily unavailable (${error})${theirWords(desc)}`,
        opts(error, 'retry later; exit code 6 is safe to retry'),
      );
  }
  if (body.status === 429 || (body.status ?? 0) >= 500) {
    return new TransientError(
      `the identity provider answered HTTP ${body.status}${error ? ` (${error})` : ''}${theirWords(desc)}`,
      opts('temporarily_unavailable', 'retry later; exit code 6 is safe to retry'),
    );
  }
  return new AuthError(
    `the identity provider refused the request (${error || `HTTP ${body.status ?? '?'}`})`,
    opts(providerCode(error || 'oauth_error'), `run: ${login}`),
  );
}

/**
 * The provider's own sentence (error_description) after ours, for temporary failures only (a
 * maintenance notice is worth reading; other descriptions are replaced by our catalogue): one
 * line, printable characters only, token-like words masked, at most 200 characters.
 */
function theirWords(desc: string): string {
  const line = redact(desc)
    // eslint-disable-next-line no-control-regex -- control characters are what is removed
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
    .replace(/\bya29\.[\w.-]+|\b1\/\/[\w.-]+|[A-Za-z0-9_\-+/=.]{32,}/g, '[REDACTED]')
    .replace(/\s+/g, ' ')
    .trim();
  if (!line) return '';
  return `: ${line.length > 200 ? `${line.slice(0, 199)}…` : line}`;
}

/** The one-line reason `--device` is refused on Google profiles. */
export const GOOGLE_NO_DEVICE =
  "Google's device flow does not allow the https://mail.google.com/ scope that SMTP and IMAP need, so Google profiles sign in in a browser";

/** A note when a Google profile asks for scopes SMTP/IMAP will refuse. */
export function googleScopeWarning(scopes: readonly string[]): string | undefined {
  if (scopes.includes('https://mail.google.com/')) return undefined;
  if (scopes.some((s) => /gmail\.(send|compose|readonly|modify)$/.test(s))) {
    return 'Note: SMTP and IMAP accept only tokens with the scope https://mail.google.com/; gmail.send and the other Gmail API scopes are refused by smtp.gmail.com and imap.gmail.com.';
  }
  return undefined;
}
