/**
 * `oauthmail guide` text for typical profiles, checked against snapshot files in
 * test/unit/__snapshots__/guide-*.txt. Those files were read by a person (steps, portal names,
 * redirect URIs, consent); a change to them must be read again before it is accepted.
 */
import { describe, it, expect } from 'vitest';
import { renderGuide } from '../../src/diagnose/guide.js';
import type { Profile } from '../../src/config/schema.js';
import { DEFAULT_RETRY } from '../../src/config/schema.js';

const base = (p: Partial<Profile>): Profile =>
  ({
    clientType: 'public',
    flow: 'browser',
    capabilities: ['send', 'read'],
    sasl: 'auto',
    storage: 'auto',
    retry: { ...DEFAULT_RETRY },
    scopes: [],
    ...p,
  }) as Profile;

const MS_BROWSER = base({
  provider: 'microsoft',
  tenant: 'contoso.com',
  clientId: '11111111-1111-4111-8111-111111111111',
  user: 'alice@contoso.com',
  scopes: [
    'https://outlook.office.com/SMTP.Send',
    'https://outlook.office.com/IMAP.AccessAsUser.All',
    'offline_access',
    'openid',
    'profile',
    'email',
  ],
});

const MS_DEVICE_SEND = base({
  provider: 'microsoft',
  tenant: 'organizations',
  clientId: '11111111-1111-4111-8111-111111111111',
  flow: 'device',
  capabilities: ['send'],
  user: 'noreply@contoso.com',
});

const MS_DAEMON = base({
  provider: 'microsoft',
  tenant: '3f9c1e2a-7b4d-4c8e-9a61-5d2f8e7b1c40',
  clientId: '33333333-3333-4333-8333-333333333333',
  flow: 'client-credentials',
  clientType: 'secret',
  clientSecretExpires: '2027-06-30',
  scopes: ['https://outlook.office365.com/.default'],
  user: 'printer@contoso.com',
});

const GOOGLE = base({
  provider: 'google',
  clientId: '1234567890-abc.apps.googleusercontent.com',
  user: 'carol@gmail.com',
  scopes: ['https://mail.google.com/'],
});

describe('oauthmail guide', () => {
  it('Microsoft, browser sign-in, public app, one tenant: matches the reviewed text', async () => {
    const text = renderGuide({ name: 'work', profile: MS_BROWSER });
    await expect(text).toMatchFileSnapshot('./__snapshots__/guide-microsoft.txt');
    // the values of the profile are filled in
    expect(text).toContain(
      '"Public client/native (mobile & desktop)" and enter exactly:\n     http://localhost\n',
    );
    expect(text).toContain('must be 11111111-1111-4111-8111-111111111111');
    expect(text).toContain('Single tenant');
    expect(text).toContain('/contoso.com/v2.0/adminconsent?client_id=11111111-1111-4111-8111-111111111111');
    expect(text).toContain(
      'Set-CASMailbox -Identity alice@contoso.com -SmtpClientAuthenticationDisabled $false',
    );
    expect(text).not.toContain('Client secrets');
  });

  it('Microsoft, device code, send only: public client flows required, no IMAP permission', async () => {
    const text = renderGuide({ name: 'cron', profile: MS_DEVICE_SEND });
    await expect(text).toMatchFileSnapshot('./__snapshots__/guide-microsoft-device.txt');
    expect(text).toMatch(/Allow public client flows" → Yes/);
    expect(text).toContain('Multitenant');
    expect(text).not.toContain('IMAP.AccessAsUser.All');
  });

  it('Microsoft, client credentials with a secret: Exchange app roles, admin consent, secret expiry, mailbox access', async () => {
    const text = renderGuide({ name: 'daemon', profile: MS_DAEMON });
    await expect(text).toMatchFileSnapshot('./__snapshots__/guide-microsoft-app-only.txt');
    expect(text).toContain('Office 365 Exchange Online');
    expect(text).toContain('SMTP.SendAsApp');
    expect(text).toContain('IMAP.AccessAsApp');
    expect(text).toContain('expires on 2027-06-30');
    expect(text).toContain('Add-MailboxPermission -Identity printer@contoso.com');
    expect(text).toContain('Redirect URI: app-only sign-in has none');
    expect(text).toContain('https://login.microsoftonline.com/common/oauth2/nativeclient');
  });

  it('Google, browser sign-in: project, Gmail API, consent screen, 7-day limit, Desktop client', async () => {
    const text = renderGuide({ name: 'gmail', profile: GOOGLE });
    await expect(text).toMatchFileSnapshot('./__snapshots__/guide-google.txt');
    expect(text).toContain('Enable the Gmail API');
    expect(text).toContain('https://mail.google.com/');
    expect(text).toContain('refresh tokens expire after 7 days');
    expect(text).toContain('"Desktop app"');
    expect(text).toContain('users: carol@gmail.com');
  });

  it('Google with a fixed web redirect: "Web application" and the exact URI', () => {
    const text = renderGuide({
      name: 'g',
      profile: { ...GOOGLE, clientType: 'secret', redirectUri: 'https://mail.example.com/oauth/callback' },
    });
    expect(text).toContain('"Web application"');
    expect(text).toContain('  https://mail.example.com/oauth/callback\n');
  });

  it('Microsoft with a secret and a fixed redirect: the "Web" platform and that URI', () => {
    const text = renderGuide({
      name: 'w',
      profile: { ...MS_BROWSER, clientType: 'secret', redirectUri: 'http://localhost:53682/' },
    });
    expect(text).toContain('platform "Web"');
    expect(text).toContain('http://localhost:53682/');
    expect(text).toContain('New client secret');
  });

  it('no line is longer than 120 characters except URLs', () => {
    for (const p of [MS_BROWSER, MS_DEVICE_SEND, MS_DAEMON, GOOGLE]) {
      for (const line of renderGuide({ name: 'x', profile: p }).split('\n')) {
        if (!/https?:\/\/\S{40,}/.test(line)) expect(line.length, line).toBeLessThanOrEqual(120);
      }
    }
  });
});
