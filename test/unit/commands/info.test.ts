/**
 * The commands that print what a profile needs (scopes, guide, consent-url) and the token
 * removers (logout, export): flags -> options (pure), and run -> output in-process.
 */
import { describe, expect, it } from 'vitest';
import { consentUrlOptions, runConsentUrl } from '../../../src/cli/commands/consent-url.js';
import { exportOptions, runExport } from '../../../src/cli/commands/export.js';
import { guideOptions, runGuide } from '../../../src/cli/commands/guide.js';
import { logoutOptions, runLogout } from '../../../src/cli/commands/logout.js';
import { runScopes, scopesOptions } from '../../../src/cli/commands/scopes.js';
import { addMicrosoft, CLIENT_ID, home } from './support.js';

describe('flags -> options', () => {
  it('scopes', () => {
    expect(scopesOptions({}, {})).toEqual({ provider: undefined, json: false });
    expect(scopesOptions({ provider: 'google' }, { json: true })).toEqual({ provider: 'google', json: true });
    expect(() => scopesOptions({ provider: 'yahoo' }, {})).toThrow(
      '--provider must be microsoft or google (got "yahoo")',
    );
  });

  it('guide', () => {
    expect(guideOptions({}, {}, { profile: 'g' })).toEqual({
      profile: 'g',
      provider: undefined,
      json: false,
    });
    expect(guideOptions({ profile: 'a' }, { provider: 'custom' }, { profile: 'g', json: true })).toEqual({
      profile: 'a',
      provider: 'custom',
      json: true,
    });
    expect(() => guideOptions({}, { provider: 'yahoo' }, {})).toThrow(
      '--provider must be microsoft, google or custom (got "yahoo")',
    );
  });

  it('consent-url', () => {
    expect(consentUrlOptions({}, {}, {})).toEqual({ profile: undefined, admin: false, json: false });
    expect(consentUrlOptions({ profile: 'w' }, { admin: true }, { json: true })).toEqual({
      profile: 'w',
      admin: true,
      json: true,
    });
  });

  it('logout: --no-revoke', () => {
    expect(logoutOptions({ profile: 'w' }, {}, {})).toEqual({ profile: 'w', revoke: true, json: false });
    expect(logoutOptions({}, { revoke: false }, { profile: 'g' })).toEqual({
      profile: 'g',
      revoke: false,
      json: false,
    });
  });

  it('export', () => {
    expect(exportOptions({}, {}, { profile: 'g' })).toEqual({ profile: 'g', yes: false });
    expect(exportOptions({ profile: 'w' }, { yes: true }, {})).toEqual({ profile: 'w', yes: true });
  });
});

describe('run -> output', () => {
  it('scopes: text names SMTP.Send; --json is data', async () => {
    const h = home();
    const t = h.ctx();
    await runScopes({ provider: 'microsoft', json: false }, t.ctx);
    expect(t.out()).toContain('SMTP.Send');
    expect(t.err()).toBe('');
    const j = h.ctx();
    await runScopes({ provider: 'google', json: true }, j.ctx);
    expect(JSON.stringify(JSON.parse(j.out()))).toContain('https://mail.google.com/');
  });

  it('scopes through main: a bad --provider is exit 2', async () => {
    const r = await home().run(['scopes', '--provider', 'yahoo']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--provider must be microsoft or google');
  });

  it("guide: generic steps without a profile; the profile's client ID with one", async () => {
    const h = home();
    const g = h.ctx();
    await runGuide({ profile: undefined, provider: 'google', json: false }, g.ctx);
    expect(g.out()).toMatch(/Google/);
    await addMicrosoft(h, 'work');
    const t = h.ctx();
    await runGuide({ profile: 'work', provider: undefined, json: true }, t.ctx);
    const j = JSON.parse(t.out());
    expect(j).toMatchObject({ profile: 'work', provider: 'microsoft' });
    expect(j.text).toContain(CLIENT_ID);
    const wrong = h.ctx();
    await expect(runGuide({ profile: 'work', provider: 'google', json: false }, wrong.ctx)).rejects.toThrow(
      'profile work is a microsoft profile, not google',
    );
  });

  it('consent-url: the URL on stdout, who and where on stderr; --admin names the login after', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx();
    await runConsentUrl({ profile: 'work', admin: false, json: false }, t.ctx);
    expect(t.out()).toMatch(
      /^https:\/\/login\.microsoftonline\.com\/contoso\.test\/oauth2\/v2\.0\/authorize\?/,
    );
    expect(t.out()).toContain(`client_id=${CLIENT_ID}`);
    expect(t.err()).toMatch(/^user consent: /);
    const a = h.ctx();
    await runConsentUrl({ profile: 'work', admin: true, json: false }, a.ctx);
    expect(a.out()).toContain('/adminconsent?');
    expect(a.err()).toContain('then: oauthmail login work');
  });

  it('logout --no-revoke of a profile never signed in: nothing stored, the revoke hints', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx();
    await runLogout({ profile: 'work', revoke: false, json: false }, t.ctx);
    expect(t.out()).toBe('');
    expect(t.err()).toContain('No tokens were stored for work.');
    expect(t.err()).toContain('Refresh tokens stay valid at the identity provider');
  });

  it('export: not a terminal and no --yes is exit 2 with the --yes command', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx();
    await expect(runExport({ profile: 'work', yes: false }, t.ctx)).rejects.toMatchObject({
      code: 'confirmation_needed',
      exitCode: 2,
      hint: expect.stringContaining('oauthmail export work --yes') as unknown,
    });
    expect(t.out()).toBe('');
  });
});
