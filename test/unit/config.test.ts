import { describe, expect, it } from 'vitest';
import { applySetting } from '../../src/config/derive.js';
import { buildProfile, editProfile } from '../../src/config/profiles.js';
import { microsoftAuthority, scopesFor } from '../../src/config/presets.js';
import { isEmail, isMailbox, validateProfile } from '../../src/config/schema.js';
import { parseConfigText, resolveProfileName } from '../../src/config/store.js';
import { ConfigError, UsageError } from '../../src/errors/index.js';

const MS_ID = '11111111-1111-4111-8111-111111111111';

describe('provider presets', () => {
  it('fills Microsoft hosts and the Exchange Online scopes for send and read', () => {
    const p = buildProfile([['clientId', MS_ID]]);
    expect(p.provider).toBe('microsoft');
    expect(p.smtp).toEqual({ host: 'smtp.office365.com', port: 587, security: 'starttls' });
    expect(p.imap).toEqual({ host: 'outlook.office365.com', port: 993, security: 'tls' });
    expect(p.scopes).toEqual([
      'https://outlook.office.com/SMTP.Send',
      'https://outlook.office.com/IMAP.AccessAsUser.All',
      'offline_access',
      'openid',
      'profile',
      'email',
    ]);
    expect(microsoftAuthority(p)).toBe('https://login.microsoftonline.com/organizations/');
  });

  it('picks scopes per capability and the .default scope for app-only', () => {
    expect(scopesFor('microsoft', ['send'], 'browser')).toContain('https://outlook.office.com/SMTP.Send');
    expect(scopesFor('microsoft', ['send'], 'browser')).not.toContain(
      'https://outlook.office.com/IMAP.AccessAsUser.All',
    );
    const daemon = buildProfile([
      ['clientId', MS_ID],
      ['flow', 'client-credentials'],
    ]);
    expect(daemon.scopes).toEqual(['https://outlook.office365.com/.default']);
    expect(daemon.clientType).toBe('secret');
  });

  it('fills Google hosts and the full mail scope', () => {
    const p = buildProfile([
      ['provider', 'google'],
      ['clientId', 'x.apps.googleusercontent.com'],
    ]);
    expect(p.smtp?.host).toBe('smtp.gmail.com');
    expect(p.imap?.host).toBe('imap.gmail.com');
    expect(p.scopes).toEqual(['https://mail.google.com/']);
  });

  it('keeps custom scopes and recomputes default scopes when capabilities change', () => {
    const p = buildProfile([['clientId', MS_ID]]);
    const sendOnly = editProfile(p, [['capabilities', 'send']]);
    expect(sendOnly.scopes).not.toContain('https://outlook.office.com/IMAP.AccessAsUser.All');
    const custom = editProfile(p, [['scopes', 'a b']]);
    expect(custom.scopes).toEqual(['a', 'b']);
    expect(editProfile(custom, [['capabilities', 'send']]).scopes).toEqual(['a', 'b']);
  });
});

describe('field parsing', () => {
  it('accepts host:port and guesses security from the port', () => {
    const d: Record<string, unknown> = {};
    applySetting(d, 'smtp', 'mail.example.com:465');
    expect(d.smtp).toEqual({ host: 'mail.example.com', port: 465, security: 'tls' });
    applySetting(d, 'smtp-port', '2525');
    expect((d.smtp as { port: number }).port).toBe(2525);
  });

  it.each([
    ['smtp.port', 'abc', /smtp.port must be a whole number/],
    ['smtp', 'nohost', /smtp must be host:port/],
    ['nosuchkey', 'x', /unknown profile key "nosuchkey"/],
  ])('refuses %s=%s', (k, v, re) => {
    expect(() => applySetting({}, k, v)).toThrow(re);
  });
});

describe('validation names the field and the fix', () => {
  const bad: Array<[string, Array<[string, string]>, RegExp]> = [
    ['unknown provider', [['provider', 'yahoo']], /provider must be one of: microsoft, google, custom/],
    ['bad email', [['user', 'not-an-address']], /user must be an email address/],
    ['port out of range', [['smtp.port', '70000']], /smtp.port must be a whole number from 1 to 65535/],
    ['port zero', [['imap.port', '0']], /imap.port must be a whole number from 1 to 65535/],
    ['client ID not a GUID', [['clientId', '1234']], /clientId must be the Application \(client\) ID GUID/],
    ['bad tenant', [['tenant', 'not a tenant']], /tenant must be a tenant ID/],
    ['http authority', [['authority', 'http://login.example.com/t/']], /authority must be an https:\/\/ URL/],
    ['bad flow', [['flow', 'magic']], /flow must be one of/],
    ['bad date', [['clientSecretExpires', '2027-02-30']], /clientSecretExpires must be a real date/],
    ['CRLF in from', [['from', 'a@b.example\r\nBcc: x@y.example']], /from must not contain line breaks/],
  ];
  it.each(bad)('%s', (_name, settings, re) => {
    const all: Array<[string, string]> = [['clientId', MS_ID], ...settings];
    let err: unknown;
    try {
      buildProfile(all);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(re);
    expect((err as Error).message).not.toMatch(/\n/);
  });

  it('service-account is Google only; client-credentials needs a confidential app', () => {
    expect(() =>
      buildProfile([
        ['clientId', MS_ID],
        ['flow', 'service-account'],
      ]),
    ).toThrow(/Google profiles only/);
    expect(() =>
      buildProfile([
        ['clientId', MS_ID],
        ['flow', 'client-credentials'],
        ['clientType', 'public'],
      ]),
    ).toThrow(/needs a confidential app/);
  });

  it('address checks', () => {
    expect(isEmail('alice@contoso.test')).toBe(true);
    expect(isEmail('alice@@contoso.test')).toBe(false);
    expect(isEmail('a b@contoso.test')).toBe(false);
    expect(isMailbox('Alice Example <alice@contoso.test>')).toBe(true);
    expect(isMailbox('"Ops, Team" <ops@contoso.test>')).toBe(true);
    expect(isMailbox('Alice <alice@contoso.test>\r\nBcc: x@y.z')).toBe(false);
  });

  it('an unknown capability is named as such, not as a broken scope list', () => {
    // before the field table, scopes were checked first and the recomputed list held `undefined`
    const p = buildProfile([['clientId', MS_ID]]);
    expect(() => editProfile(p, [['capabilities', 'send,write']])).toThrow(
      /^capabilities must be one of: send, read \(got "write"\)$/,
    );
  });

  it('refuses unknown fields in a stored profile', () => {
    const p = buildProfile([['clientId', MS_ID]]);
    expect(() => validateProfile({ ...p, colour: 'red' })).toThrow(/unknown field "colour"/);
  });
});

describe('config file parsing', () => {
  it('reports syntax errors with path, line and column', () => {
    const text = '{\n  "version": 1,\n  "profiles": {,}\n}\n';
    expect(() => parseConfigText(text, '/x/config.json')).toThrow(/cannot read config \/x\/config.json:3:16/);
    try {
      parseConfigText(text, '/x/config.json');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).exitCode).toBe(3);
    }
  });

  it('reports truncated files and wrong versions', () => {
    expect(() => parseConfigText('{"version": 1, "prof', '/c.json')).toThrow(
      /cannot read config \/c.json:1:\d+: /,
    );
    expect(() => parseConfigText('{"version": 1, "profiles": {"a": 1', '/c.json')).toThrow(/1:\d+: /);
    expect(() => parseConfigText('', '/c.json')).toThrow(/unexpected end of file/);
    expect(() => parseConfigText('{"version": 7, "profiles": {}}', '/c.json')).toThrow(/version must be 1/);
    expect(() => parseConfigText('[]', '/c.json')).toThrow(/top level must be a JSON object/);
  });

  it('names the profile and field of an invalid stored profile', () => {
    const p = buildProfile([['clientId', MS_ID]]);
    const text = JSON.stringify({ version: 1, profiles: { work: { ...p, smtp: { ...p.smtp, port: 'x' } } } });
    // kept aside when the file is read (other profiles go on working), refused when it is used
    const config = parseConfigText(text, '/c.json');
    expect(() => resolveProfileName(config, 'work', {})).toThrow(
      /invalid config \/c.json: profile "work": smtp.port must be a whole number/,
    );
  });

  it('resolves the profile: explicit, then OAUTHMAIL_PROFILE, then default, then the only one', () => {
    const p = buildProfile([['clientId', MS_ID]]);
    const config = { version: 1 as const, defaultProfile: 'a', profiles: { a: p, b: p } };
    expect(resolveProfileName(config, 'b', {}).name).toBe('b');
    expect(resolveProfileName(config, undefined, { OAUTHMAIL_PROFILE: 'b' }).name).toBe('b');
    expect(resolveProfileName(config, undefined, {}).name).toBe('a');
    expect(resolveProfileName({ version: 1, profiles: { only: p } }, undefined, {}).name).toBe('only');
    expect(() => resolveProfileName(config, 'zzz', {})).toThrow(/no profile named "zzz"/);
  });

  it('profile names that are JavaScript object keys are only names', () => {
    const p = buildProfile([['clientId', MS_ID]]);
    const config = parseConfigText(JSON.stringify({ version: 1, profiles: { constructor: p } }), '/c.json');
    expect(Object.keys(config.profiles)).toEqual(['constructor']);
    expect(resolveProfileName(config, 'constructor', {}).profile.clientId).toBe(MS_ID);
    expect(() => resolveProfileName(config, 'toString', {})).toThrow(/no profile named "toString"/);
    expect(() => resolveProfileName(config, 'hasOwnProperty', {})).toThrow(/no profile named/);
  });
});
