/** The scope catalogue, the consent URLs, and the `scopes` rendering. */
import { describe, it, expect } from 'vitest';
import {
  SCOPES,
  scopesFor,
  scopeInfo,
  renderScopes,
  MICROSOFT_APP_ROLES,
  MICROSOFT_SCP,
} from '../../src/diagnose/scopes.js';
import { buildConsentUrl, redirectUriFor } from '../../src/diagnose/consent-url.js';
import { scopesFor as presetScopes } from '../../src/config/presets.js';
import type { Profile } from '../../src/config/schema.js';
import { DEFAULT_RETRY } from '../../src/config/schema.js';

const profile = (p: Partial<Profile>): Profile => ({
  provider: 'microsoft',
  clientId: '11111111-1111-4111-8111-111111111111',
  clientType: 'public',
  flow: 'browser',
  capabilities: ['send', 'read'],
  sasl: 'auto',
  storage: 'auto',
  retry: { ...DEFAULT_RETRY },
  scopes: presetScopes('microsoft', ['send', 'read'], 'browser'),
  tenant: 'contoso.com',
  user: 'alice@contoso.com',
  ...p,
});

describe('scope catalogue', () => {
  it('covers every scope a profile preset asks for, with why, what it allows and who grants it', () => {
    const wanted = new Set([
      ...presetScopes('microsoft', ['send', 'read'], 'browser'),
      ...presetScopes('microsoft', ['send', 'read'], 'client-credentials'),
      ...presetScopes('google', ['send', 'read'], 'browser'),
    ]);
    for (const s of wanted) {
      const info = scopeInfo(s);
      expect(info, s).toBeDefined();
      expect(info!.why.length).toBeGreaterThan(10);
      expect(info!.allows.length).toBeGreaterThan(10);
      expect(info!.grantedBy.length).toBeGreaterThan(10);
    }
    for (const s of SCOPES) expect(s.why && s.allows && s.grantedBy, s.scope).toBeTruthy();
  });

  it('offline_access: keeps the sign-in alive with a refresh token', () => {
    expect(scopeInfo('offline_access')!.allows).toMatch(/refresh token/);
  });

  it('SMTP.Send: Exchange audience, sends over SMTP AUTH, user or admin consent', () => {
    const i = scopeInfo('https://outlook.office.com/SMTP.Send')!;
    expect(i.allows).toMatch(/SMTP AUTH/);
    expect(i.grantedBy).toMatch(/Application Administrator/);
    expect(i.portalName).toBe(
      'Microsoft Graph → Delegated → SMTP.Send, or "APIs my organization uses" → Office 365 Exchange Online → Delegated → SMTP.Send (either registration works)',
    );
    expect(i.audience).toBe('https://outlook.office.com');
  });

  it('IMAP.AccessAsUser.All: read and delete over IMAP', () => {
    expect(scopeInfo('https://outlook.office.com/IMAP.AccessAsUser.All')!.allows).toMatch(/read.*delete/);
  });

  it('the app-only .default: only a Global or Privileged Role Administrator, names the Exchange roles', () => {
    const i = scopeInfo('https://outlook.office365.com/.default')!;
    expect(i.type).toBe('application');
    expect(i.grantedBy).toMatch(/^only a Global Administrator or Privileged Role Administrator/);
    expect(i.portalName).toContain(MICROSOFT_APP_ROLES.send);
    expect(i.portalName).toContain(MICROSOFT_APP_ROLES.read);
  });

  it('Google: https://mail.google.com/ is full access and gmail.send is not enough', () => {
    const i = scopeInfo('https://mail.google.com/')!;
    expect(i.allows).toMatch(/full access/);
    expect(i.why).toMatch(/no narrower scope/);
  });

  it('filters by provider and renders one block per scope', () => {
    expect(scopesFor('google').every((s) => s.provider === 'google')).toBe(true);
    expect(scopesFor().length).toBe(SCOPES.length);
    const text = renderScopes(scopesFor('microsoft'));
    expect(text.split('\n')[0]).toBe('Microsoft Entra ID');
    expect(text).toContain('  offline_access  (oidc)\n    why:        keep the sign-in alive');
    expect(text).not.toContain('mail.google.com');
    expect(MICROSOFT_SCP).toEqual({ send: 'SMTP.Send', read: 'IMAP.AccessAsUser.All' });
  });
});

describe('consent URLs', () => {
  it('user consent: the tenant authorize endpoint with prompt=consent and the profile scopes', () => {
    const c = buildConsentUrl('work', profile({}), false);
    expect(c.kind).toBe('user');
    const u = new URL(c.url);
    expect(u.origin + u.pathname).toBe('https://login.microsoftonline.com/contoso.com/oauth2/v2.0/authorize');
    expect(u.searchParams.get('prompt')).toBe('consent');
    expect(u.searchParams.get('client_id')).toBe('11111111-1111-4111-8111-111111111111');
    expect(u.searchParams.get('scope')).toContain('https://outlook.office.com/SMTP.Send');
    expect(u.searchParams.get('redirect_uri')).toBe(
      'https://login.microsoftonline.com/common/oauth2/nativeclient',
    );
    expect(u.searchParams.get('code_challenge_method')).toBe('S256');
    expect(c.landing).toMatch(/nativeclient/);
    expect(c.who).toContain('alice@contoso.com');
  });

  it('admin consent: /v2.0/adminconsent of the tenant with the resource .default', () => {
    const c = buildConsentUrl('work', profile({}), true);
    expect(c.kind).toBe('admin');
    const u = new URL(c.url);
    expect(u.pathname).toBe('/contoso.com/v2.0/adminconsent');
    expect(u.searchParams.get('client_id')).toBe('11111111-1111-4111-8111-111111111111');
    expect(u.searchParams.get('scope')).toBe('https://outlook.office.com/.default');
    expect(c.who).toMatch(/Global Administrator/);
  });

  it('admin consent for "common" uses "organizations"; client-credentials profiles always get the admin URL', () => {
    expect(new URL(buildConsentUrl('w', profile({ tenant: 'common' }), true).url).pathname).toBe(
      '/organizations/v2.0/adminconsent',
    );
    const d = buildConsentUrl(
      'd',
      profile({
        flow: 'client-credentials',
        clientType: 'secret',
        scopes: ['https://outlook.office365.com/.default'],
      }),
      false,
    );
    expect(d.kind).toBe('admin');
    expect(new URL(d.url).searchParams.get('scope')).toBe('https://outlook.office365.com/.default');
  });

  it('Google: offline access and prompt=consent; --admin is a usage error naming the Admin console', () => {
    const g = profile({
      provider: 'google',
      clientId: 'x.apps.googleusercontent.com',
      scopes: ['https://mail.google.com/'],
      user: 'c@gmail.com',
    });
    const u = new URL(buildConsentUrl('g', g, false).url);
    expect(u.origin + u.pathname).toBe('https://accounts.google.com/o/oauth2/v2/auth');
    expect(u.searchParams.get('access_type')).toBe('offline');
    expect(u.searchParams.get('prompt')).toBe('consent');
    expect(u.searchParams.get('scope')).toBe('https://mail.google.com/');
    expect(() => buildConsentUrl('g', g, true)).toThrow(/no admin-consent URL/);
    try {
      buildConsentUrl('g', g, true);
    } catch (e) {
      expect((e as { exitCode: number }).exitCode).toBe(2);
      expect((e as { hint: string }).hint).toContain('API controls');
    }
  });

  it("redirect URI: the profile's, else its port, else http://localhost", () => {
    expect(redirectUriFor({ flow: 'browser', redirectUri: 'http://localhost:53682/' })).toBe(
      'http://localhost:53682/',
    );
    expect(redirectUriFor({ flow: 'browser', redirectPort: 8400 })).toBe('http://localhost:8400/');
    expect(redirectUriFor({ flow: 'browser' })).toBe('http://localhost');
  });
});
