/**
 * `oauthmail test` against the local stack (fake identity provider, Postfix, Dovecot), through the
 * real CLI: a good profile passes; each fault gives its own failure line, fix and exit code; --json
 * validates against docs/test-report.schema.json; no token in any output (--verbose included).
 * Also `scopes`, `consent-url` and `guide` end to end.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, cliHome, type CliHome, type CliResult } from '../support/cli.js';
import {
  fixtures,
  idpMint,
  idpRequest,
  mintJwt,
  stackEnv,
  tamperSignature,
  type StackEnv,
} from '../support/stack-env.js';
import { validate, type Schema } from './diagnose-schema.js';
import { signInDeviceAtStack } from '../support/signin.js';

const TID = fixtures.microsoft.tenantId;
const PUBLIC = fixtures.microsoft.clients[0]!.clientId;
const CONFIDENTIAL = fixtures.microsoft.clients[1]!.clientId;
const DAEMON = fixtures.microsoft.clients[2]!;
const GOOGLE_CLIENT = fixtures.google.clients[0]!.clientId;
const ALICE = 'alice@contoso.test';
const BOB = 'bob@contoso.test';
const CAROL = 'carol@fabrikam.test';
const schema = JSON.parse(readFileSync(path.join(ROOT, 'docs', 'test-report.schema.json'), 'utf8')) as Schema;

let s: StackEnv;
let h: CliHome;
const transcript: string[] = [];
const secrets = new Set<string>();

async function cli(
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  const r = await h.run(args, { timeoutMs: 60_000, ...opts });
  transcript.push(`$ ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Run `oauthmail test` with a token on stdin (never in argv). */
async function testWithToken(profile: string, token: string, extra: string[] = [], env?: NodeJS.ProcessEnv) {
  secrets.add(token);
  return cli(['test', profile, '--token-stdin', ...extra], { input: token + '\n', ...(env ? { env } : {}) });
}

/** The report line of one check, e.g. "FAIL  smtp    ...". */
const line = (r: CliResult, id: string) =>
  r.stdout.split('\n').find((l) => new RegExp(`^(PASS|FAIL|SKIP)  ${id}\\b`).test(l)) ?? '';
const fixOf = (r: CliResult, id: string) => {
  const lines = r.stdout.split('\n');
  const i = lines.findIndex((l) => new RegExp(`^FAIL  ${id}\\b`).test(l));
  return lines.slice(i + 1).find((l) => l.startsWith('      fix: ')) ?? '';
};

async function addProfile(name: string, args: string[], input?: string) {
  const r = await cli(['profile', 'add', name, '--storage', 'file', ...args], input ? { input } : {});
  expect(r.code, r.stderr).toBe(0);
}

/** A profile for the public client at the stack's IdP, mailbox `user`. */
const addMsProfile = (name: string, user: string, args: string[]) =>
  addProfile(name, ['--client-id', PUBLIC, '--authority', `${s.idpUrl}/${TID}/`, '--user', user, ...args]);

const servers = () => [
  '--smtp',
  `localhost:${s.smtp.port}`,
  '--smtp-security',
  'starttls',
  '--imap',
  `localhost:${s.imap.imapsPort}`,
  '--imap-security',
  'tls',
];

/** A send-only profile's server: `host:port` and its --smtp-security. */
const sendOnly = (smtp: string, security: string) => [
  '--capabilities',
  'send',
  '--smtp',
  smtp,
  '--smtp-security',
  security,
];

beforeAll(async () => {
  s = stackEnv();
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
  expect((await idpRequest('/_admin/config', { deviceCodeInterval: 1 })).status).toBe(200);
  await addMsProfile('work', ALICE, servers());
  await signInDeviceAtStack(h, 'work', ALICE);
  await addMsProfile('bobbox', BOB, servers());
  await addProfile(
    'daemon',
    [
      '--client-id',
      DAEMON.clientId,
      '--authority',
      `${s.idpUrl}/${TID}/`,
      '--flow',
      'client-credentials',
      '--client-type',
      'secret',
      '--client-secret-stdin',
      '--user',
      ALICE,
      ...servers(),
    ],
    DAEMON.secret,
  );
  await addProfile('gmail', [
    '--provider',
    'google',
    '--client-id',
    GOOGLE_CLIENT,
    '--set',
    `tokenEndpoint=${s.idpUrl}/token`,
    '--set',
    `authorizationEndpoint=${s.idpUrl}/o/oauth2/v2/auth`,
    '--user',
    CAROL,
    ...servers(),
  ]);
}, 90_000);

afterAll(async () => {
  await idpRequest('/_admin/faults', []).catch(() => undefined);
  const all = transcript.join('\n');
  for (const sec of secrets) {
    expect(all.includes(sec), 'a token leaked into CLI output').toBe(false);
    for (const u of [ALICE, BOB, CAROL]) {
      expect(all.includes(Buffer.from(`user=${u}\x01auth=Bearer ${sec}\x01\x01`).toString('base64'))).toBe(
        false,
      );
    }
  }
  expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
});

describe('oauthmail test: a good profile', () => {
  it('passes every check: profile, token (refreshed), claims, SMTP AUTH, IMAP SELECT INBOX; exit 0', async () => {
    const r = await cli(['test', 'work']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(line(r, 'profile')).toMatch(
      /^PASS {2}profile +microsoft profile, flow browser, send \+ read, mailbox alice@contoso\.test/,
    );
    expect(line(r, 'token')).toMatch(/^PASS {2}token +got a new access token for alice@contoso\.test/);
    expect(line(r, 'claims')).toMatch(
      /^PASS {2}claims +token for alice@contoso\.test with .*SMTP\.Send.*IMAP\.AccessAsUser\.All/,
    );
    expect(line(r, 'smtp')).toMatch(
      /^PASS {2}smtp +connect, EHLO, STARTTLS, XOAUTH2 offered, AUTH: signed in to localhost:\d+ as alice@contoso\.test/,
    );
    expect(line(r, 'imap')).toMatch(
      /^PASS {2}imap +connect, TLS, CAPABILITY, AUTHENTICATE (XOAUTH2|OAUTHBEARER), SELECT INBOX/,
    );
    expect(r.stdout).toContain('all checks passed for profile work');
  });

  it('--json: a report that validates against docs/test-report.schema.json', async () => {
    const r = await cli(['test', 'work', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(validate(schema, rep)).toEqual([]);
    expect(rep.ok).toBe(true);
    expect(rep.exitCode).toBe(0);
    expect(rep.checks.map((c: { id: string; status: string }) => `${c.id}:${c.status}`)).toEqual([
      'profile:pass',
      'token:pass',
      'claims:pass',
      'smtp:pass',
      'imap:pass',
    ]);
    const claims = rep.checks.find((c: { id: string }) => c.id === 'claims');
    expect(claims.details.audience).toBe('https://outlook.office.com');
    expect(claims.details.tenant).toBe(TID);
    expect(claims.details.appId).toBe(PUBLIC);
  });

  it('--verbose: the SMTP and IMAP dialogue on stderr with the token redacted; --send-to sends a message', async () => {
    const r = await cli(['test', 'work', '--verbose', '--send-to', BOB]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/transcript: smtp S: 220 /);
    expect(r.stderr).toMatch(/transcript: smtp C: AUTH XOAUTH2 \[REDACTED\]/);
    expect(r.stderr).toMatch(/transcript: smtp S: 235 /);
    expect(r.stderr).toMatch(/transcript: imap/);
    expect(line(r, 'send')).toMatch(/^PASS {2}send +sent to bob@contoso\.test: 250 /);
  });

  it('an app-only profile (client credentials) passes with the Exchange app roles', async () => {
    const r = await cli(['test', 'daemon']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(line(r, 'token')).toMatch(/^PASS {2}token +got a new access token \(app-only\)/);
    expect(line(r, 'claims')).toMatch(/app-only token for Exchange Online, roles .*SMTP\.SendAsApp/);
  });

  it('Google: the opaque token is checked with the token-info endpoint, then SMTP and IMAP', async () => {
    const tok = await idpMint({ provider: 'google', user: CAROL });
    const r = await testWithToken('gmail', tok);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(line(r, 'claims')).toMatch(
      /token for carol@fabrikam\.test with https:\/\/mail\.google\.com\/ \(from Google's token-info\)/,
    );
  });
});

describe('oauthmail test: each fault has its own line, fix and exit code', () => {
  it('no consent (the identity provider answers consent_required): token check, exit 4, consent fix', async () => {
    expect(
      (await idpRequest('/_admin/faults', { endpoint: 'token', status: 400, errorCode: 65001, times: 1 }))
        .status,
    ).toBe(200);
    const r = await cli(['test', 'work']);
    expect(r.code).toBe(4);
    expect(line(r, 'token')).toMatch(
      /^FAIL {2}token +.*no consent for the requested permissions \(AADSTS65001\)/,
    );
    expect(fixOf(r, 'token')).toMatch(/oauthmail login work --prompt consent/);
    expect(line(r, 'claims')).toMatch(/^SKIP {2}claims +skipped: the token check failed/);
    expect(line(r, 'smtp')).toMatch(/^SKIP/);
    expect(r.stderr).toMatch(/token check failed/);
  });

  it('a token without SMTP.Send: claims check, exit 4, names the missing permission', async () => {
    const tok = await idpMint({ user: ALICE, scopes: ['https://outlook.office.com/IMAP.AccessAsUser.All'] });
    const r = await testWithToken('work', tok);
    expect(r.code).toBe(4);
    expect(line(r, 'claims')).toMatch(
      /^FAIL {2}claims +the token lacks SMTP\.Send \(scp: IMAP\.AccessAsUser\.All\)/,
    );
    expect(fixOf(r, 'claims')).toMatch(/oauthmail login work --prompt consent/);
    expect(line(r, 'smtp')).toMatch(/^SKIP {2}smtp +skipped: the claims check failed/);
  });

  it('a token with the Graph audience: claims check, exit 4, asks for Exchange Online scopes', async () => {
    const tok = await idpMint({ user: ALICE, scopes: ['SMTP.Send'] });
    const r = await testWithToken('work', tok);
    expect(r.code).toBe(4);
    expect(line(r, 'claims')).toMatch(
      /^FAIL {2}claims +the token is for Microsoft Graph \(aud https:\/\/graph\.microsoft\.com\)/,
    );
    expect(fixOf(r, 'claims')).toContain('https://outlook.office.com/SMTP.Send');
  });

  it('an app-only token without the role: claims check, exit 4, admin consent for the Exchange roles', async () => {
    const tok = await idpMint({ clientId: CONFIDENTIAL, scopes: ['https://outlook.office365.com/.default'] });
    const r = await testWithToken('daemon', tok);
    expect(r.code).toBe(4);
    expect(line(r, 'claims')).toMatch(
      /^FAIL {2}claims +the app-only token lacks the application permissions SMTP\.SendAsApp and IMAP\.AccessAsApp/,
    );
    expect(fixOf(r, 'claims')).toMatch(/Office 365 Exchange Online .*oauthmail consent-url daemon --admin/);
  });

  it('SMTP AUTH refused by Postfix/Dovecot (a token the server does not accept): smtp check, exit 5', async () => {
    const tok = tamperSignature(mintJwt({ user: ALICE }));
    const r = await testWithToken('work', tok);
    expect(r.code).toBe(5);
    expect(line(r, 'claims')).toMatch(/^PASS/);
    expect(line(r, 'smtp')).toMatch(/^FAIL {2}smtp +SMTP AUTH refused for alice@contoso\.test \(535 /);
    expect(fixOf(r, 'smtp')).toMatch(/oauthmail login work/);
    expect(line(r, 'imap')).toMatch(/^PASS|^FAIL/); // IMAP is its own check (not dependent on SMTP)
  });

  it('IMAP refused (Dovecot finds no IMAP scope in the token): imap check, exit 5, while SMTP passes', async () => {
    const tok = mintJwt({
      user: ALICE,
      scopes: ['SMTP.Send'],
      claims: { scp: 'SMTP.Send IMAP.AccessAsUser.All' },
    });
    const r = await testWithToken('work', tok);
    expect(r.code).toBe(5);
    expect(line(r, 'smtp')).toMatch(/^PASS/);
    expect(line(r, 'imap')).toMatch(/^FAIL {2}imap +AUTHENTICATE failed for alice@contoso\.test/);
    expect(fixOf(r, 'imap')).toMatch(/IMAP scope/);
  });

  it("wrong mailbox user (token for alice, profile's mailbox bob): warned in claims, SMTP says whose token it is, exit 5", async () => {
    const tok = await idpMint({ user: ALICE });
    const r = await testWithToken('bobbox', tok);
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(
      /warning: the token is for alice@contoso\.test but the profile's mailbox is bob@contoso\.test/,
    );
    expect(line(r, 'smtp')).toMatch(
      /^FAIL {2}smtp +SMTP AUTH refused for bob@contoso\.test: the token was issued to alice@contoso\.test/,
    );
    expect(fixOf(r, 'smtp')).toMatch(/oauthmail profile edit bobbox --set user=alice@contoso\.test/);
  });

  it('a server that does not offer XOAUTH2 (PLAIN only): smtp check, exit 5', async () => {
    // a tiny SMTP server on loopback that offers only PLAIN and LOGIN
    const server = net.createServer((c) => {
      c.write('220 plain.test ESMTP\r\n');
      let buf = '';
      c.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\r\n')) >= 0) {
          const cmd = buf.slice(0, i).toUpperCase();
          buf = buf.slice(i + 2);
          if (cmd.startsWith('EHLO')) c.write('250-plain.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n');
          else if (cmd.startsWith('QUIT')) c.end('221 bye\r\n');
          else c.write('502 5.5.2 no\r\n');
        }
      });
      c.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as net.AddressInfo).port;
      await addMsProfile('plain', ALICE, sendOnly(`127.0.0.1:${port}`, 'none'));
      const r = await testWithToken('plain', await idpMint({ user: ALICE }));
      expect(r.code).toBe(5);
      expect(line(r, 'smtp')).toMatch(
        /^FAIL {2}smtp +127\.0\.0\.1:\d+ does not offer SASL XOAUTH2 or OAUTHBEARER \(it offers: PLAIN LOGIN\)/,
      );
      expect(fixOf(r, 'smtp')).toMatch(/smtp\.office365\.com:587/);
      // the same server with security starttls: it does not offer STARTTLS, a TLS failure (exit 3)
      await addMsProfile('nostarttls', ALICE, sendOnly(`127.0.0.1:${port}`, 'starttls'));
      const t = await testWithToken('nostarttls', await idpMint({ user: ALICE }));
      expect(t.code).toBe(3);
      expect(line(t, 'smtp')).toMatch(/^FAIL {2}smtp +127\.0\.0\.1:\d+ does not offer STARTTLS/);
    } finally {
      server.close();
    }
  });

  it('sasl oauthbearer: the SMTP check signs in with OAUTHBEARER (RFC 7628)', async () => {
    await addMsProfile('bearer', ALICE, ['--sasl', 'oauthbearer', ...servers()]);
    const r = await testWithToken('bearer', await idpMint({ user: ALICE }), ['--verbose']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(line(r, 'smtp')).toMatch(/OAUTHBEARER offered, AUTH: signed in .* with OAUTHBEARER$/);
    expect(r.stderr).toMatch(/transcript: smtp C: AUTH OAUTHBEARER \[REDACTED\]/);
  });

  it('TLS failure (the server certificate is not trusted: no test CA): smtp check, exit 3', async () => {
    const tok = await idpMint({ user: ALICE });
    const r = await testWithToken('work', tok, [], { NODE_EXTRA_CA_CERTS: '' });
    expect(r.code).toBe(3);
    expect(line(r, 'smtp')).toMatch(
      /^FAIL {2}smtp +TLS failed: the certificate of localhost is not trusted \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/,
    );
    expect(fixOf(r, 'smtp')).toMatch(/--ca FILE/);
    // IMAP is checked on its own and meets the same untrusted certificate
    expect(line(r, 'imap')).toMatch(/^FAIL {2}imap +TLS failed: .*certificate/);
  });

  it('TLS failure (implicit TLS against a plain-text port): smtp check, exit 3', async () => {
    await addMsProfile('tlsplain', ALICE, sendOnly(`localhost:${s.smtp.port}`, 'tls'));
    const r = await testWithToken('tlsplain', await idpMint({ user: ALICE }));
    expect(r.code, r.stdout).toBe(3);
    expect(line(r, 'smtp')).toMatch(/^FAIL {2}smtp +TLS failed on localhost:\d+/);
    expect(fixOf(r, 'smtp')).toMatch(/465 = tls/);
  });

  it('a profile asking Graph for SMTP.Send: profile check, exit 3, everything else skipped', async () => {
    await addMsProfile('graphy', ALICE, ['--scopes', 'SMTP.Send offline_access', ...servers()]);
    const r = await cli(['test', 'graphy', '--json']);
    expect(r.code).toBe(3);
    const rep = JSON.parse(r.stdout);
    expect(validate(schema, rep)).toEqual([]);
    expect(rep.ok).toBe(false);
    expect(rep.exitCode).toBe(3);
    expect(rep.checks[0]).toMatchObject({
      id: 'profile',
      status: 'fail',
      kind: 'config',
      exitCode: 3,
      code: 'graph_scopes',
    });
    expect(rep.checks.slice(1).every((c: { status: string }) => c.status === 'skipped')).toBe(true);
  });

  it('expired refresh token (unused past the idle timeout): token check, exit 4, sign in again', async () => {
    await addMsProfile('idle', ALICE, servers());
    await signInDeviceAtStack(h, 'idle', ALICE);
    expect((await idpRequest('/_admin/config', { refreshTokenIdleTimeout: 1 })).status).toBe(200);
    try {
      // the refresh token goes unused past the timeout on the IdP's clock, without waiting for it
      expect((await idpRequest('/_admin/clock', { advanceSeconds: 2 })).status).toBe(200);
      const r = await cli(['test', 'idle']);
      expect(r.code, r.stdout).toBe(4);
      expect(line(r, 'token')).toMatch(/^FAIL {2}token +.*\(AADSTS700082\)/);
      expect(fixOf(r, 'token')).toMatch(/oauthmail login idle/);
    } finally {
      await idpRequest('/_admin/config', { refreshTokenIdleTimeout: null });
      await idpRequest('/_admin/clock', { offsetSeconds: 0 });
    }
  });

  it('expired or revoked refresh token: token check, exit 4, sign in again (last: it ends the sign-in)', async () => {
    expect(
      (await idpRequest('/_admin/revoke-refresh-tokens', { user: ALICE, clientId: PUBLIC })).status,
    ).toBe(200);
    const r = await cli(['test', 'work']);
    expect(r.code).toBe(4);
    expect(line(r, 'token')).toMatch(/^FAIL {2}token +the stored sign-in was revoked .*\(AADSTS50173\)/);
    expect(fixOf(r, 'token')).toMatch(/oauthmail login work/);
  });
});

describe('scopes, consent-url, guide', () => {
  it('scopes --provider microsoft: the catalogue on stdout; --json', async () => {
    const r = await cli(['scopes', '--provider', 'microsoft']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('https://outlook.office.com/SMTP.Send  (delegated)');
    expect(r.stdout).not.toContain('mail.google.com');
    const j = await cli(['scopes', '--json']);
    expect(JSON.parse(j.stdout).some((x: { scope: string }) => x.scope === 'https://mail.google.com/')).toBe(
      true,
    );
    expect((await cli(['scopes', '--provider', 'yahoo'])).code).toBe(2);
  });

  it('consent-url: the URL alone on stdout; --admin the tenant adminconsent URL', async () => {
    const u = await cli(['consent-url', 'work']);
    expect(u.code).toBe(0);
    expect(u.stdout.trim()).toMatch(
      new RegExp(`^${s.idpUrl}/${TID}/oauth2/v2\\.0/authorize\\?client_id=${PUBLIC}&.*prompt=consent(&|$)`),
    );
    expect(u.stderr).toMatch(/user consent/);
    const a = await cli(['consent-url', '-p', 'work', '--admin']);
    expect(a.stdout.trim()).toMatch(
      new RegExp(`^${s.idpUrl}/${TID}/v2\\.0/adminconsent\\?client_id=${PUBLIC}&`),
    );
    expect(a.stderr).toMatch(/Global Administrator/);
  });

  it("guide: the profile's values filled in; Google profile gets the Google console steps", async () => {
    const m = await cli(['guide', 'work']);
    expect(m.code).toBe(0);
    expect(m.stdout).toContain(`"Application (client) ID" must be ${PUBLIC}`);
    const g = await cli(['guide', 'gmail']);
    expect(g.stdout).toContain('Enable the Gmail API');
    expect((await cli(['guide', '--provider', 'google'])).stdout).toContain('profile "NAME"');
  });
});
