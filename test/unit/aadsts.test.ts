import { describe, it, expect } from 'vitest';
import {
  entraError,
  lookup,
  adminConsentUrl,
  consentUrl,
  AADSTS,
  aadstsCode,
} from '../../src/auth/errors/aadsts.js';
import { AuthError, ConfigError, TransientError } from '../../src/errors/index.js';

const ctx = {
  profile: 'work',
  clientId: '11111111-1111-4111-8111-111111111111',
  authority: 'https://login.microsoftonline.com/contoso.com/',
  redirectUri: 'http://localhost:53682/',
  scopes: ['https://outlook.office.com/SMTP.Send', 'offline_access'],
};
const desc = (code: number) =>
  `AADSTS${code}: Something.\r\nTrace ID: x\r\nCorrelation ID: y\r\nTimestamp: z`;

describe('AADSTS catalogue', () => {
  it('covers the codes issue 3 names', () => {
    for (const c of [
      '50011',
      '65001',
      '90094',
      '90099',
      '700016',
      '7000215',
      '7000222',
      '50076',
      '50079',
      '53003',
      '70008',
      '700082',
      '50126',
      '500011',
    ]) {
      expect(AADSTS[c], c).toBeDefined();
    }
  });

  it('reads the code from error_codes or the description', () => {
    expect(aadstsCode({ code: 50011 })).toBe('50011');
    expect(aadstsCode({ description: desc(65001) })).toBe('65001');
    expect(aadstsCode({ error: 'invalid_grant' })).toBeUndefined();
  });

  it('50011 names the exact redirect URI to register, exit 3', () => {
    const e = entraError({ error: 'invalid_request', description: desc(50011) }, ctx);
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.exitCode).toBe(3);
    expect(e.message).toContain('http://localhost:53682/');
    expect(e.hint).toContain('register exactly http://localhost:53682/');
    expect(e.code).toBe('AADSTS50011');
  });

  it('65001 gives the consent URL and a login --prompt consent, exit 4', () => {
    const e = entraError(
      { error: 'invalid_grant', suberror: 'consent_required', description: desc(65001) },
      ctx,
    );
    expect(e).toBeInstanceOf(AuthError);
    expect(e.hint).toContain('oauthmail login work --prompt consent');
    const noPkce = (s: string) => s.replace(/code_challenge=[^&\s]+/, '');
    expect(noPkce(e.hint!)).toContain(noPkce(consentUrl(ctx)));
    expect(consentUrl(ctx)).toMatch(
      /^https:\/\/login\.microsoftonline\.com\/contoso\.com\/oauth2\/v2\.0\/authorize\?.*prompt=consent/,
    );
  });

  it('90094/90099 give the admin-consent URL and the roles that can grant it', () => {
    for (const c of [90094, 90099]) {
      const e = entraError({ error: 'invalid_grant', description: desc(c) }, ctx);
      expect(e.exitCode).toBe(4);
      expect(e.hint).toContain(adminConsentUrl(ctx));
      expect(e.hint).toMatch(/Global Administrator/);
    }
    const u = new URL(adminConsentUrl(ctx));
    expect(u.pathname).toBe('/contoso.com/v2.0/adminconsent');
    expect(u.searchParams.get('scope')).toBe('https://outlook.office.com/.default');
    expect(u.searchParams.get('client_id')).toBe(ctx.clientId);
  });

  it('maps secrets problems to exit 3 with the command to fix them', () => {
    for (const c of [7000215, 7000222]) {
      const e = entraError({ error: 'invalid_client', description: desc(c) }, ctx);
      expect(e.exitCode).toBe(3);
      expect(e.hint).toContain('oauthmail profile secret work');
    }
    expect(entraError({ description: desc(700016) }, ctx).exitCode).toBe(3);
    expect(entraError({ description: desc(500011) }, ctx).exitCode).toBe(3);
  });

  it('expired or revoked sign-ins say to log in again, exit 4', () => {
    for (const c of [70008, 700082, 50173]) {
      const e = entraError({ error: 'invalid_grant', description: desc(c) }, ctx);
      expect(e.exitCode).toBe(4);
      // 700082 adds the keep-alive advice after the command
      expect(e.hint).toMatch(/^run: oauthmail login work($|; then keep it alive)/);
    }
    expect(entraError({ error: 'invalid_grant' }, ctx).hint).toBe('run: oauthmail login work');
  });

  it('MFA, Conditional Access and bad passwords are exit 4', () => {
    for (const c of [50076, 50079, 53003, 50126])
      expect(entraError({ description: desc(c) }, ctx).exitCode).toBe(4);
  });

  it('throttling and outages are exit 6', () => {
    expect(entraError({ error: 'temporarily_unavailable', description: desc(50196) }, ctx)).toBeInstanceOf(
      TransientError,
    );
    expect(entraError({ error: 'server_error', description: desc(90033) }, ctx).exitCode).toBe(6);
    expect(entraError({ error: 'whatever', status: 503 }, ctx).exitCode).toBe(6);
  });

  it('unknown codes get a generic sentence without trace lines, and the raw response stays hidden', () => {
    const e = entraError({ error: 'invalid_request', description: desc(123456) }, ctx);
    expect(e.message).toBe('Microsoft Entra ID refused the request: Something (AADSTS123456)');
    expect(e.message).not.toMatch(/Trace ID/);
    expect(Object.keys(e)).not.toContain('response');
    expect(JSON.stringify(e)).not.toContain('Trace ID');
    expect((e as { response?: unknown }).response).toBeDefined();
  });

  it('device-code outcomes', () => {
    expect(lookup({ error: 'authorization_declined' }).entry?.exit).toBe(4);
    expect(entraError({ error: 'expired_token' }, ctx).hint).toContain('--device');
  });
});
