import { describe, expect, it } from 'vitest';
import { clearRegisteredSecrets, redact, registerSecret } from '../../src/util/redact.js';
import { AuthError, EXIT_CODE_TABLE, ExitCode, MailServerError } from '../../src/errors/index.js';

describe('redact', () => {
  it('masks registered secrets wherever they appear, also URL-encoded', () => {
    clearRegisteredSecrets();
    registerSecret('s3cr3t/with+chars=');
    const out = redact('secret s3cr3t/with+chars= and s3cr3t%2Fwith%2Bchars%3D in a form');
    expect(out).not.toContain('s3cr3t');
    expect(out).toContain('[REDACTED]');
  });

  it('masks credential shapes nobody registered', () => {
    clearRegisteredSecrets();
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl';
    const sasl = Buffer.from('user=a@b.c\x01auth=Bearer abcdefghijkl\x01\x01').toString('base64');
    const text = [
      `Authorization: Bearer ${jwt}`,
      `{"access_token":"opaque-token-1234","refresh_token":"0.AAA-refresh","expires_in":3600}`,
      'grant_type=refresh_token&refresh_token=0.AXYZ-abc&client_secret=shh-very-secret',
      `AUTH XOAUTH2 ${sasl}`,
      '-----BEGIN PRIVATE KEY-----\nMIIEv...\n-----END PRIVATE KEY-----',
    ].join('\n');
    const out = redact(text);
    for (const s of [
      jwt,
      'opaque-token-1234',
      '0.AAA-refresh',
      '0.AXYZ-abc',
      'shh-very-secret',
      sasl,
      'MIIEv',
    ]) {
      expect(out).not.toContain(s);
    }
    expect(out).toContain('"expires_in":3600');
    expect(out).toContain('grant_type=refresh_token');
  });

  it('leaves ordinary text alone', () => {
    clearRegisteredSecrets();
    const text = 'oauthmail: no profile named "work" (exit 3); error code=AADSTS50011';
    expect(redact(text)).toBe(text);
  });
});

describe('errors', () => {
  it('carry stable codes, exit codes and hints, and hide raw responses from serialisation', () => {
    const e = new AuthError('sign-in needed', {
      code: 'login_required',
      hint: 'run: oauthmail login work',
      response: { access_token: 'x' },
    });
    expect(e.exitCode).toBe(ExitCode.AUTH);
    expect(e.code).toBe('login_required');
    expect(JSON.stringify(e)).not.toContain('access_token');
    expect(Object.keys(e)).not.toContain('response');
    expect(e.response).toEqual({ access_token: 'x' });
    expect(new MailServerError('no', { code: 'smtp_auth_refused', serverCode: 535 }).exitCode).toBe(5);
  });

  it('the exit code table covers 0..6, 130 and 143 once each', () => {
    expect(EXIT_CODE_TABLE.map((e) => e.code)).toEqual([0, 1, 2, 3, 4, 5, 6, 130, 143]);
  });
});

describe('redact placeholders', () => {
  it('leaves "..." placeholders in examples readable', () => {
    clearRegisteredSecrets();
    expect(redact('{"access_token": "...", "refresh_token": "…"}')).toBe(
      '{"access_token": "...", "refresh_token": "…"}',
    );
    expect(redact('{"access_token": "abc.def-123456"}')).toBe('{"access_token": "[REDACTED]"}');
  });
});
