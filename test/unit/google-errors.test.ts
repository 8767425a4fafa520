import { describe, it, expect } from 'vitest';
import {
  GOOGLE_NO_DEVICE,
  googleScopeWarning,
  oauthError,
  type OAuthErrorContext,
} from '../../src/auth/errors/google-errors.js';
import { AuthError, ConfigError, ExitCode, TransientError } from '../../src/errors/index.js';

const google: OAuthErrorContext = {
  profile: 'gmail',
  provider: 'google',
  clientId: '123-abc.apps.googleusercontent.com',
  during: 'refresh',
};
const custom: OAuthErrorContext = { ...google, provider: 'custom', profile: 'corp' };

describe('Google and OAuth 2.0 error sentences', () => {
  it('invalid_grant on refresh: re-consent, and the 7-day expiry of apps in Testing status (exit 4)', () => {
    const e = oauthError(
      { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' },
      google,
    );
    expect(e).toBeInstanceOf(AuthError);
    expect(e.exitCode).toBe(ExitCode.AUTH);
    expect(e.message).toMatch(/expired or been revoked/);
    expect(e.message).toMatch(/'Testing' publishing status/);
    expect(e.message).toMatch(/7 days/);
    expect(e.hint).toMatch(/oauthmail login gmail/);
    expect(e.hint).toMatch(/publish the app/);
  });

  it('invalid_grant for a custom provider does not talk about Google', () => {
    const e = oauthError({ error: 'invalid_grant' }, custom);
    expect(e.exitCode).toBe(ExitCode.AUTH);
    expect(e.message).not.toMatch(/Google|Testing/);
    expect(e.hint).toBe('run: oauthmail login corp');
  });

  it('invalid_grant while redeeming a code names the code, not the refresh token', () => {
    const e = oauthError({ error: 'invalid_grant' }, { ...google, during: 'login' });
    expect(e.message).toMatch(/authorization code/);
  });

  it('redirect_uri_mismatch names the URI and the Desktop-app client type (exit 3)', () => {
    const e = oauthError(
      { error: 'redirect_uri_mismatch' },
      { ...google, redirectUri: 'http://127.0.0.1:5000' },
    );
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toContain('http://127.0.0.1:5000');
    expect(e.hint).toMatch(/Desktop app/);
  });

  it('access_denied says what to accept, and mentions test users', () => {
    const e = oauthError({ error: 'access_denied' }, { ...google, during: 'login' });
    expect(e.exitCode).toBe(ExitCode.AUTH);
    expect(e.hint).toMatch(/test user/);
  });

  it('invalid_client points at the client ID and secret (exit 3)', () => {
    const e = oauthError({ error: 'invalid_client', status: 401 }, google);
    expect(e.exitCode).toBe(ExitCode.CONFIG);
    expect(e.hint).toMatch(/oauthmail profile secret gmail --stdin/);
  });

  it('service account without domain-wide delegation: the admin console step', () => {
    const e = oauthError(
      { error: 'unauthorized_client' },
      { ...google, serviceAccount: true, during: 'service-account' },
    );
    expect(e.hint).toMatch(/Domain-wide delegation/);
    expect(e.hint).toMatch(/https:\/\/mail\.google\.com\//);
  });

  it('5xx and 429 are transient (exit 6)', () => {
    expect(oauthError({ error: 'internal_failure', status: 503 }, google)).toBeInstanceOf(TransientError);
    expect(oauthError({ status: 429 }, google).exitCode).toBe(ExitCode.TRANSIENT);
  });

  it('never copies the provider description into the message', () => {
    const e = oauthError({ error: 'weird', error_description: 'secret-ish detail ya29.abc' }, google);
    expect(e.message).not.toContain('ya29');
    expect(e.hint ?? '').not.toContain('ya29');
  });

  it('a temporary failure carries the provider’s sentence, one line, token-like words masked', () => {
    const e = oauthError(
      {
        error: 'internal_failure',
        error_description: 'Down for\r\nmaintenance until 10:00 UTC; ref ya29.a0AfB_byC and 1//0gAbCdEf',
        status: 503,
      },
      google,
    );
    expect(e.exitCode).toBe(6);
    expect(e.message).toBe(
      'the identity provider answered HTTP 503 (internal_failure): Down for maintenance until 10:00 UTC; ref [REDACTED] and [REDACTED]',
    );
    const long = oauthError(
      { error: 'temporarily_unavailable', error_description: 'x '.repeat(300) },
      google,
    );
    expect(long.message.length).toBeLessThan(300);
    expect(long.message).toMatch(
      /^the identity provider is temporarily unavailable \(temporarily_unavailable\): x x/,
    );
    expect(oauthError({ status: 502 }, google).message).toBe('the identity provider answered HTTP 502');
  });

  it('the --device refusal and the gmail.send warning explain the mail scope', () => {
    expect(GOOGLE_NO_DEVICE).toMatch(/device flow does not allow the https:\/\/mail\.google\.com\/ scope/);
    expect(googleScopeWarning(['https://www.googleapis.com/auth/gmail.send'])).toMatch(
      /https:\/\/mail\.google\.com\//,
    );
    expect(googleScopeWarning(['https://mail.google.com/'])).toBeUndefined();
  });
});
