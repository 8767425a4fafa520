// Token health rules (src/auth/health.ts) and the issue-9 catalogue entries, without a network.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyEvent,
  healthWarnings,
  readHealth,
  recordHealth,
  thresholdsFrom,
  type HealthInput,
} from '../../src/auth/health.js';
import { parsePasted } from '../../src/auth/pasted.js';
import { sshGuidance } from '../../src/cli/signin/remote.js';
import { entraError } from '../../src/auth/errors/aadsts.js';
import { adviseSmtpReply } from '../../src/mail/smtp-replies.js';
import type { Profile } from '../../src/config/schema.js';

const DAY = 86_400_000;
const now = new Date('2026-06-01T00:00:00Z');
const ago = (days: number) => new Date(now.getTime() - days * DAY).toISOString();
const t = thresholdsFrom({});
const ms: HealthInput = {
  name: 'work',
  provider: 'microsoft',
  flow: 'browser',
  clientType: 'public',
  signedIn: true,
};

describe('health thresholds', () => {
  it('default to 60/90 days, 7.5 days, 30 days; the environment overrides them', () => {
    expect(t).toEqual({
      idleWarnSeconds: 60 * 86_400,
      idleLimitSeconds: 90 * 86_400,
      shortLifetimeSeconds: 7.5 * 86_400,
      secretWarnDays: 30,
    });
    const e = thresholdsFrom({
      OAUTHMAIL_HEALTH_IDLE_WARN_SECONDS: '3',
      OAUTHMAIL_HEALTH_SECRET_WARN_DAYS: 'x',
    });
    expect(e.idleWarnSeconds).toBe(3);
    expect(e.secretWarnDays).toBe(30);
  });
});

describe('health warnings', () => {
  it('Microsoft: no warning at 59 days unused, a warning with the days left after 60', () => {
    expect(
      healthWarnings(ms, { provider: 'microsoft', obtainedAt: ago(100), lastUsedAt: ago(59) }, t, now),
    ).toEqual([]);
    const w = healthWarnings(
      ms,
      { provider: 'microsoft', obtainedAt: ago(100), lastUsedAt: ago(61) },
      t,
      now,
    );
    expect(w).toHaveLength(1);
    expect(w[0]!.code).toBe('refresh_token_idle');
    expect(w[0]!.problem).toBe(
      'the refresh token has not been used for 61 days; Microsoft ends a sign-in unused for 90 days (in about 29 days)',
    );
    expect(w[0]!.fix).toBe('oauthmail refresh work (and schedule: oauthmail refresh --all)');
  });

  it('Microsoft: not for app-only profiles, nor when signed out', () => {
    const rec = { provider: 'microsoft', obtainedAt: ago(80) };
    expect(healthWarnings({ ...ms, flow: 'client-credentials' }, rec, t, now)).toEqual([]);
    expect(healthWarnings({ ...ms, signedIn: false }, rec, t, now)).toEqual([]);
  });

  it('Google: a sign-in that lasted 7 days suggests Testing status; 30 days does not', () => {
    const g: HealthInput = { ...ms, provider: 'google' };
    const w = healthWarnings(g, { provider: 'google', lifetimes: [7 * 86_400 - 60] }, t, now);
    expect(w.map((x) => x.code)).toEqual(['google_testing_status']);
    expect(w[0]!.problem).toMatch(/lasted only 6 days: the Google app is probably in "Testing" status/);
    expect(w[0]!.fix).toMatch(/Publish app/);
    expect(healthWarnings(g, { provider: 'google', lifetimes: [30 * 86_400] }, t, now)).toEqual([]);
  });

  it('client secret: warns within 30 days, and once expired', () => {
    const s = { ...ms, clientType: 'secret' };
    expect(healthWarnings({ ...s, clientSecretExpires: '2026-07-15' }, undefined, t, now)).toEqual([]);
    expect(healthWarnings({ ...s, clientSecretExpires: '2026-06-11' }, undefined, t, now)[0]).toMatchObject({
      code: 'client_secret_expiring',
      problem: 'the client secret expires in 10 days (2026-06-11)',
    });
    expect(healthWarnings({ ...s, clientSecretExpires: '2026-05-01' }, undefined, t, now)[0]!.code).toBe(
      'client_secret_expired',
    );
  });
});

describe('health events', () => {
  it('sign-in, refresh (rotated or not), refused: timestamps and one lifetime per death', () => {
    const t0 = new Date('2026-01-01T00:00:00Z');
    let r = applyEvent(undefined, 'google', { kind: 'sign-in' }, t0);
    expect(r).toMatchObject({
      provider: 'google',
      obtainedAt: t0.toISOString(),
      lastUsedAt: t0.toISOString(),
    });
    const t1 = new Date(t0.getTime() + DAY);
    r = applyEvent(r, 'google', { kind: 'refresh', rotated: false }, t1);
    expect(r.lastUsedAt).toBe(t1.toISOString());
    expect(r.lastRotatedAt).toBe(t0.toISOString());
    const t2 = new Date(t0.getTime() + 7 * DAY);
    r = applyEvent(r, 'google', { kind: 'refresh-refused', code: 'invalid_grant' }, t2);
    r = applyEvent(
      r,
      'google',
      { kind: 'refresh-refused', code: 'invalid_grant' },
      new Date(t2.getTime() + DAY),
    );
    expect(r.lifetimes).toEqual([7 * 86_400]);
    expect(r.lastFailureCode).toBe('invalid_grant');
    r = applyEvent(r, 'google', { kind: 'sign-in' }, t2);
    expect(r.lastFailureAt).toBeUndefined();
    expect(r.lifetimes).toEqual([7 * 86_400]);
  });

  it('recordHealth writes health.json with mode 0600 and no secrets; a damaged file is rebuilt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'health-'));
    const env = { OAUTHMAIL_DATA_DIR: dir };
    const lock = <T>(_n: string, fn: () => Promise<T>) => fn();
    await recordHealth({ env, lock }, 'work', 'microsoft', { kind: 'sign-in' });
    await recordHealth({ env, lock }, 'work', 'microsoft', { kind: 'refresh', rotated: true });
    const file = join(dir, 'health.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const h = await readHealth(env);
    expect(Object.keys(h.profiles)).toEqual(['work']);
    expect(Object.keys(h.profiles.work!).sort()).toEqual([
      'lastRotatedAt',
      'lastUsedAt',
      'obtainedAt',
      'provider',
    ]);
    expect(readFileSync(file, 'utf8')).not.toMatch(/token"|secret/i);
  });
});

describe('login --paste input', () => {
  it('takes a redirect URL (query or fragment) or a bare code', () => {
    expect(parsePasted('http://localhost/?code=abc.DEF-1&state=s1&client_info=ci')).toEqual(
      expect.objectContaining({ code: 'abc.DEF-1', state: 's1', client_info: 'ci' }),
    );
    expect(parsePasted('  "http://localhost:8400/cb#code=x&state=y"  ')).toMatchObject({
      code: 'x',
      state: 'y',
    });
    expect(parsePasted('0.AQEA-xyz_123')).toEqual({ code: '0.AQEA-xyz_123' });
    // a URL without a state never passes as a bare code
    expect(parsePasted('http://localhost/?code=abc')).toMatchObject({ code: 'abc', state: '' });
    expect(parsePasted('http://localhost/?error=access_denied&error_description=no')).toMatchObject({
      error: 'access_denied',
    });
    expect(parsePasted('hello world')).toBeUndefined();
    expect(parsePasted('http://localhost/')).toBeUndefined();
  });
});

describe('SSH guidance', () => {
  it('names the ssh -L command for a fixed port, and --paste', () => {
    const p = { provider: 'microsoft', clientType: 'public', redirectPort: 53682 } as Profile;
    const lines = sshGuidance('work', p, { SSH_CONNECTION: '10.0.0.1 5000 10.0.0.2 22' }).join('\n');
    expect(lines).toMatch(/ssh -L 53682:localhost:53682 10\.0\.0\.2/);
    expect(lines).toMatch(/oauthmail login work --paste/);
    expect(lines).toMatch(/oauthmail login work --device/);
  });
});

describe('issue 9 catalogue entries', () => {
  const ctx = { profile: 'work', clientId: 'c', authority: 'https://login.microsoftonline.com/contoso.com/' };
  const desc = (code: number) => `AADSTS${code}: Something.\r\nTrace ID: x`;
  it('700082: idle expiry, exit 4, with the keep-alive advice', () => {
    const e = entraError({ error: 'invalid_grant', description: desc(700082) }, ctx);
    expect(e.exitCode).toBe(4);
    expect(e.message).toBe(
      'the sign-in expired because it was not used for 90 days (Microsoft ends idle refresh tokens) (AADSTS700082)',
    );
    expect(e.hint).toMatch(/oauthmail refresh --all/);
  });
  it('700025 and 7000012 and 7000218: configuration, exit 3', () => {
    const a = entraError({ error: 'invalid_client', description: desc(700025) }, ctx);
    expect(a.exitCode).toBe(3);
    expect(a.hint).toMatch(/--set clientType=public/);
    const b = entraError({ error: 'invalid_grant', description: desc(7000012) }, ctx);
    expect(b.exitCode).toBe(3);
    expect(b.message).toMatch(/authorize and token URLs name different tenants/);
    const c = entraError({ error: 'invalid_client', description: desc(7000218) }, ctx);
    expect(c.exitCode).toBe(3);
    expect(c.hint).toMatch(/Allow public client flows/);
  });
  it("Exchange's 430 4.2.0 STOREDRV: the app has no permission on the mailbox", () => {
    const a = adviseSmtpReply('430 4.2.0 STOREDRV.Submission.Exception:ConnectionFailedTransientException', {
      user: 'shared@contoso.com',
    });
    expect(a.message).toMatch(/430 4\.2\.0 STOREDRV.*no permission/);
    expect(a.hint).toMatch(/Add-MailboxPermission -Identity shared@contoso\.com/);
    expect(a.hint).toMatch(/New-ServicePrincipal/);
  });
});
