/**
 * Retries at Google's and a custom provider's token endpoint (issue 8), as they are at Entra's
 * (hardening-idp.test.ts): 429/503 honour Retry-After and the profile's retry policy, exhausted
 * tries give exit 6 with the provider's words, OAuth 4xx errors are never retried, `retry.mode=none`
 * means one call, and an unreachable provider is tried again before exit 6. Real CLI processes
 * (google-auth-library and openid-client unmodified) against a private fake IdP; the refresh token
 * comes in with `oauthmail import` (minted by the IdP), so no browser is needed.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { cliSession, type Json } from '../support/cli-session.js';
import type { CliHome } from '../support/cli.js';
import { fixtures } from '../support/signin.js';

const { url, adminGet, admin, home, cli, transcript } = cliSession();
const CLIENT = fixtures.google.clients[0]!;
const CAROL = fixtures.google.users[0]! as { email: string };

type Kind = 'google' | 'custom';
const ENDPOINT: Record<Kind, string> = { google: 'google.token', custom: 'custom.token' };
const secrets = new Set<string>([CLIENT.secret]);
/** The refresh token the last profile() imported. */
let lastRefreshToken = '';

beforeEach(async () => {
  await admin('reset', {});
});

/** Where the profile finds the provider: the fake IdP's endpoints, or (custom) its issuer. */
function endpoints(kind: Kind | 'custom-issuer'): string[] {
  const idp = url();
  if (kind === 'google')
    return [
      '--provider',
      'google',
      '--authorization-endpoint',
      `${idp}/o/oauth2/v2/auth`,
      '--token-endpoint',
      `${idp}/token`,
    ];
  if (kind === 'custom-issuer')
    return ['--provider', 'custom', '--scopes', 'mail', '--issuer', `${idp}/custom`];
  return [
    '--provider',
    'custom',
    '--scopes',
    'mail',
    '--authorization-endpoint',
    `${idp}/custom/authorize`,
    '--token-endpoint',
    `${idp}/custom/token`,
  ];
}

/** `profile add p` in a fresh home, Carol with the Google client (which the custom shape shares). */
async function addProfile(kind: Kind | 'custom-issuer', extra: string[]): Promise<CliHome> {
  const h = home();
  const add = await cli(
    h,
    [
      'profile',
      'add',
      'p',
      ...endpoints(kind),
      '--client-id',
      CLIENT.clientId,
      '--client-type',
      'secret',
      '--client-secret-stdin',
      '--user',
      CAROL.email,
      '--storage',
      'file',
      ...extra,
    ],
    CLIENT.secret,
  );
  expect(add.code, add.stderr).toBe(0);
  return h;
}

/** A live refresh token minted by the IdP, in a token file for `oauthmail import`. */
async function mintedTokenFile(kind: Kind, h: CliHome): Promise<string> {
  const minted: Json = await admin('mint', {
    provider: kind,
    user: CAROL.email,
    clientId: CLIENT.clientId,
    refreshToken: true,
  });
  expect(typeof minted.refresh_token).toBe('string');
  secrets.add(minted.refresh_token);
  secrets.add(minted.access_token);
  lastRefreshToken = minted.refresh_token;
  const file = join(h.dir, 'tokens.json');
  writeFileSync(file, JSON.stringify({ refresh_token: minted.refresh_token }), { mode: 0o600 });
  return file;
}

/** A signed-in profile of this kind: added, then a minted refresh token imported (redeemed once). */
async function profile(kind: Kind, extra: string[] = []): Promise<CliHome> {
  const h = await addProfile(kind, extra);
  const imp = await cli(h, ['import', 'p', '--file', await mintedTokenFile(kind, h)]);
  expect(imp.code, imp.stderr).toBe(0);
  return h;
}

async function refreshCalls(kind: Kind): Promise<number> {
  const s: Json = await adminGet('stats');
  return s[ENDPOINT[kind]]?.refresh_token ?? 0;
}

const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at .+:\d+:\d+\)?/);

describe.each<Kind>(['google', 'custom'])('%s token endpoint', (kind) => {
  it('429 with Retry-After twice, then success: three calls, exit 0, a token on stdout', async () => {
    const h = await profile(kind);
    const before = await refreshCalls(kind);
    await admin('faults', {
      endpoint: ENDPOINT[kind],
      grantType: 'refresh_token',
      status: 429,
      retryAfter: 1,
      times: 2,
    });
    const r = await cli(h, ['token', 'p', '--force-refresh', '--verbose']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().length).toBeGreaterThan(20);
    expect(r.stderr).toMatch(/retrying in \d+\.\d s \(attempt 2 of 4, Retry-After 1 s\)/);
    expect(r.stderr).toMatch(/retrying in \d+\.\d s \(attempt 3 of 4, Retry-After 1 s\)/);
    expect((await refreshCalls(kind)) - before).toBe(3);
  }, 60_000);

  it('503 for ever: exit 6 with the provider’s words after the policy’s attempts (maxAttempts 2)', async () => {
    const h = await profile(kind, ['--set', 'retry.maxAttempts=2']);
    const before = await refreshCalls(kind);
    await admin('faults', {
      endpoint: ENDPOINT[kind],
      grantType: 'refresh_token',
      status: 503,
      retryAfter: 1,
      message: 'The service is down for maintenance',
      times: -1,
    });
    const r = await cli(h, ['token', 'p', '--force-refresh']);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('The service is down for maintenance');
    expect(r.stderr.trim().split('\n')[0]).toMatch(/^oauthmail: /);
    noStack(r.stderr);
    expect((await refreshCalls(kind)) - before).toBe(2);
  }, 60_000);

  it('400 invalid_grant is never retried: one call, exit 4 naming the login command', async () => {
    const h = await profile(kind);
    const before = await refreshCalls(kind);
    await admin('faults', {
      endpoint: ENDPOINT[kind],
      grantType: 'refresh_token',
      status: 400,
      error: 'invalid_grant',
      message: 'Token has been expired or revoked.',
      times: -1,
    });
    const r = await cli(h, ['token', 'p', '--force-refresh']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain('oauthmail login p');
    noStack(r.stderr);
    expect((await refreshCalls(kind)) - before).toBe(1);
  }, 60_000);

  it('retry.mode=none: a 503 is not tried again (one call, exit 6)', async () => {
    const h = await profile(kind, ['--set', 'retry.mode=none']);
    const before = await refreshCalls(kind);
    await admin('faults', { endpoint: ENDPOINT[kind], grantType: 'refresh_token', status: 503, times: -1 });
    const r = await cli(h, ['token', 'p', '--force-refresh']);
    expect(r.code, r.stderr).toBe(6);
    expect((await refreshCalls(kind)) - before).toBe(1);
  }, 60_000);

  it('an unreachable provider is tried again per the policy, then exit 6 naming the host', async () => {
    // a port that refuses connections: bind one, note it, close it
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const h = await profile(kind, ['--set', 'retry.maxAttempts=3', '--set', 'retry.initialDelayMs=50']);
    const dead = `https://127.0.0.1:${port}/token`;
    const edit = await cli(h, ['profile', 'edit', 'p', '--set', `tokenEndpoint=${dead}`]);
    expect(edit.code, edit.stderr).toBe(0);
    const r = await cli(h, ['token', 'p', '--force-refresh', '--verbose']);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toContain(`127.0.0.1:${port}`);
    expect(r.stderr.match(/→ ECONNREFUSED/g)?.length).toBe(3);
    expect(r.stderr).toMatch(/retrying in \d+\.\d s \(attempt 3 of 3\)/);
    noStack(r.stderr);
  }, 60_000);
});

describe.each<Kind>(['google', 'custom'])('%s token health', (kind) => {
  it('a silent refresh during `token` is recorded (used, rotated); a refused one too', async () => {
    const h = await profile(kind);
    const health = async (exit = 0) => {
      const st = await cli(h, ['status', 'p', '--json']);
      expect(st.code, st.stderr).toBe(exit);
      return JSON.parse(st.stdout)[0].health as Record<string, string | undefined>;
    };
    const first = await health();
    expect(first.obtainedAt).toBeTruthy();
    // the custom provider rotates on every refresh; Google only when configured to
    await admin('config', { rotateGoogleRefreshTokens: true });
    const r = await cli(h, ['token', 'p', '--force-refresh']);
    expect(r.code, r.stderr).toBe(0);
    const after = await health();
    expect(Date.parse(after.lastUsedAt!)).toBeGreaterThan(Date.parse(first.lastUsedAt!));
    expect(after.lastRotatedAt).toBe(after.lastUsedAt);
    await admin('faults', {
      endpoint: ENDPOINT[kind],
      grantType: 'refresh_token',
      status: 400,
      error: 'invalid_grant',
      times: 1,
    });
    expect((await cli(h, ['token', 'p', '--force-refresh'])).code).toBe(4);
    // the refused refresh ended the sign-in: status says so and exits 4 (issue 13)
    expect((await health(4)).lastFailureAt).toBeTruthy();
    // the record goes with a rename, and away with logout
    expect((await cli(h, ['profile', 'rename', 'p', 'q'])).code).toBe(0);
    const renamed = JSON.parse((await cli(h, ['status', 'q', '--json'])).stdout)[0];
    expect(renamed.health.obtainedAt).toBe(first.obtainedAt);
    expect((await cli(h, ['logout', 'q', '--no-revoke'])).code).toBe(0);
    expect(JSON.parse((await cli(h, ['status', 'q', '--json'])).stdout)[0].health).toBeNull();
  }, 60_000);
});

describe.each<Kind>(['google', 'custom'])('%s logout', (kind) => {
  const revokeEndpoint = kind === 'google' ? 'google.revoke' : 'custom.revoke';
  const revokeUrl = () => (kind === 'google' ? `${url()}/revoke` : `${url()}/custom/revoke`);
  const revokeCalls = async (): Promise<number> => (await adminGet('stats'))[revokeEndpoint] ?? 0;

  it('revokes the refresh token at the provider, then removes it here', async () => {
    const h = await profile(kind, ['--set', `revocationEndpoint=${revokeUrl()}`]);
    const rt = lastRefreshToken;
    const before = await revokeCalls();
    const r = await cli(h, ['logout', 'p', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ profile: 'p', removed: true, revokedAtProvider: true });
    expect(r.stderr).toContain('The refresh token was revoked at the identity provider');
    expect((await revokeCalls()) - before).toBe(1);
    // the provider refuses it now: importing it elsewhere needs a new sign-in
    const other = home();
    const add = await cli(other, ['profile', 'show', 'p']);
    expect(add.code).toBe(3);
    const h2 = await profile(kind, ['--set', `revocationEndpoint=${revokeUrl()}`]);
    const file = join(h2.dir, 'old.json');
    writeFileSync(file, JSON.stringify({ refresh_token: rt }), { mode: 0o600 });
    const imp = await cli(h2, ['import', 'p', '--file', file]);
    expect(imp.code, imp.stderr).toBe(4);
  }, 60_000);

  it('when the provider cannot be told, the tokens are kept (exit 6, the way out named); --no-revoke removes them here only', async () => {
    const h = await profile(kind, ['--set', `revocationEndpoint=${revokeUrl()}`, '--set', 'retry.mode=none']);
    await admin('faults', { endpoint: revokeEndpoint, status: 503, times: -1 });
    const r = await cli(h, ['logout', 'p']);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toContain('oauthmail logout p --no-revoke');
    const st = await cli(h, ['status', 'p', '--json']);
    expect(JSON.parse(st.stdout)[0].signedIn).toBe(true);
    const before = await revokeCalls();
    const local = await cli(h, ['logout', 'p', '--no-revoke']);
    expect(local.code, local.stderr).toBe(0);
    expect(local.stderr).toContain('Removed the stored tokens of p.');
    expect(local.stderr).toContain('stay valid at the identity provider');
    expect(await revokeCalls()).toBe(before);
    const st2 = await cli(h, ['status', 'p', '--json']);
    expect(JSON.parse(st2.stdout)[0].signedIn).toBe(false);
  }, 60_000);
});

it('a custom provider’s discovery document is retried after a 503', async () => {
  const h = await addProfile('custom-issuer', []);
  const file = await mintedTokenFile('custom', h);
  await admin('faults', { endpoint: 'custom.discovery', status: 503, retryAfter: 0, times: 1 });
  const r = await cli(h, ['import', 'p', '--file', file, '--verbose']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toMatch(/GET \S+\/\.well-known\/\S+ → 503/);
  expect(r.stderr).toMatch(/retrying in/);
}, 60_000);

it('no token, refresh token or client secret in anything printed', () => {
  expect(transcript.length).toBeGreaterThan(10);
  for (const t of transcript) {
    for (const s of secrets) {
      expect(t.stdout.includes(s) && t.args[0] !== 'token', `${t.args.join(' ')} printed a secret`).toBe(
        false,
      );
      expect(t.stderr.includes(s), `${t.args.join(' ')} printed a secret on stderr`).toBe(false);
    }
  }
});
