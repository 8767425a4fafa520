/**
 * The profile keys of the Graph transport (issue 16): `transport` picks the scopes (one token has
 * one audience), `auto` is refused as not built yet, Graph is for Microsoft profiles only,
 * `graphUrl` is https only; and the sender the profile's transport asks for.
 */
import { describe, expect, it } from 'vitest';
import { buildProfile, editProfile } from '../../src/config/profiles.js';
import { scopesFor } from '../../src/config/presets.js';
import { scopeInfo } from '../../src/diagnose/scopes.js';
import { buildConsentUrl } from '../../src/diagnose/consent-url.js';
import { ConfigError, UsageError } from '../../src/errors/index.js';
import { createSender, transportOf } from '../../src/mail/transport.js';
import { staticTokenSource } from '../../src/mail/token-source.js';

const MS_ID = '11111111-1111-4111-8111-111111111111';
const G = 'https://graph.microsoft.com/';

describe('profile key transport', () => {
  it('graph: delegated Mail.Send (and Mail.ReadWrite for read) with offline_access, no Exchange scope', () => {
    const p = buildProfile([
      ['clientId', MS_ID],
      ['transport', 'graph'],
    ]);
    expect(p.scopes).toEqual([
      `${G}Mail.Send`,
      `${G}Mail.ReadWrite`,
      'offline_access',
      'openid',
      'profile',
      'email',
    ]);
    expect(scopesFor('microsoft', ['send'], 'device', 'graph')).toEqual([
      `${G}Mail.Send`,
      'offline_access',
      'openid',
      'profile',
      'email',
    ]);
  });

  it('graph app-only: https://graph.microsoft.com/.default', () => {
    const p = buildProfile([
      ['clientId', MS_ID],
      ['flow', 'client-credentials'],
      ['transport', 'graph'],
    ]);
    expect(p.scopes).toEqual([`${G}.default`]);
  });

  it('smtp is the default and keeps the Exchange scopes; switching transport recomputes default scopes', () => {
    const p = buildProfile([['clientId', MS_ID]]);
    expect(p.transport).toBeUndefined();
    expect(transportOf(p)).toBe('smtp');
    const g = editProfile(p, [['transport', 'graph']]);
    expect(g.scopes[0]).toBe(`${G}Mail.Send`);
    expect(transportOf(g)).toBe('graph');
    const back = editProfile(g, [['transport', 'smtp']]);
    expect(back.scopes).toEqual(p.scopes);
    // scopes the user set are kept
    const custom = editProfile(p, [['scopes', 'a b']]);
    expect(editProfile(custom, [['transport', 'graph']]).scopes).toEqual(['a', 'b']);
  });

  it('auto is refused with a clear "not yet"; graph is for Microsoft only; graphUrl must be https', () => {
    expect(() =>
      buildProfile([
        ['clientId', MS_ID],
        ['transport', 'auto'],
      ]),
    ).toThrow(/transport auto .* is not available yet: set transport to smtp or graph/);
    expect(() => transportOf({ transport: 'auto' }, 'work')).toThrow(ConfigError);
    expect(() =>
      buildProfile([
        ['provider', 'google'],
        ['clientId', 'x.apps.googleusercontent.com'],
        ['transport', 'graph'],
      ]),
    ).toThrow(/transport graph \(Microsoft Graph\) is for Microsoft profiles only/);
    expect(() =>
      buildProfile([
        ['clientId', MS_ID],
        ['graphUrl', 'http://graph.example/v1.0'],
      ]),
    ).toThrow(/graphUrl must be an https:\/\/ URL/);
  });

  it('the scope catalogue explains the Graph scopes; the consent URL asks for them', () => {
    for (const s of [`${G}Mail.Send`, `${G}Mail.ReadWrite`, `${G}.default`]) {
      const i = scopeInfo(s);
      expect(i, s).toBeDefined();
      expect(i!.why).toMatch(/transport graph/);
    }
    expect(scopeInfo(`${G}Mail.Send`)!.audience).toBe('https://graph.microsoft.com');
    const p = buildProfile([
      ['clientId', MS_ID],
      ['transport', 'graph'],
    ]);
    // a profile without stored scopes asks for its transport's defaults
    const u = new URL(buildConsentUrl('g', { ...p, scopes: [] }, false).url);
    expect(u.searchParams.get('scope')).toContain(`${G}Mail.Send`);
  });
});

describe('createSender', () => {
  it('transport graph refuses the SMTP-only TLS flags before any request', async () => {
    const p = buildProfile([
      ['clientId', MS_ID],
      ['transport', 'graph'],
    ]);
    await expect(
      createSender(p, staticTokenSource('a@contoso.com', 'x'), { caFile: '/tmp/ca.pem' }),
    ).rejects.toThrow(UsageError);
  });

  it('transport graph hands the rendered message to sendMail and says 202 accepted, not delivered', async () => {
    const p = buildProfile([
      ['clientId', MS_ID],
      ['transport', 'graph'],
      ['graphUrl', 'https://graph.test/v1.0'],
    ]);
    const seen: Array<{ url: string; body: string }> = [];
    const fetch = ((url: string, init: RequestInit) => {
      seen.push({ url, body: typeof init.body === 'string' ? init.body : '' });
      return Promise.resolve(new Response(null, { status: 202, headers: { 'request-id': 'r1' } }));
    }) as unknown as typeof globalThis.fetch;
    const sender = await createSender(p, staticTokenSource('a@contoso.com', 'tok'), { graph: { fetch } });
    expect(sender.transport).toBe('graph');
    const raw = 'From: a@contoso.com\r\nTo: b@contoso.com\r\nMessage-ID: <m1@contoso.com>\r\n\r\nhi\r\n';
    const r = await sender.sendRaw(raw, { from: 'a@contoso.com', to: ['b@contoso.com', 'c@contoso.com'] });
    expect(r).toMatchObject({
      transport: 'graph',
      status: 202,
      delivered: false,
      messageId: '<m1@contoso.com>',
      accepted: ['b@contoso.com', 'c@contoso.com'],
      rejected: [],
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.url).toBe('https://graph.test/v1.0/users/a%40contoso.com/sendMail');
    const sentMime = Buffer.from(seen[0]!.body, 'base64').toString('utf8');
    expect(sentMime).toContain('Bcc: c@contoso.com');
    sender.close();
  });
});
