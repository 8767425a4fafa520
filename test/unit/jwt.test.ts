import { describe, it, expect } from 'vitest';
import { decodeJwt, summarizeJwt } from '../../src/auth/jwt.js';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (claims: unknown, header: unknown = { typ: 'JWT', alg: 'RS256' }) =>
  `${b64(header)}.${b64(claims)}.c2ln`;

describe('decodeJwt', () => {
  it('reads header and claims without verifying', () => {
    const d = decodeJwt(jwt({ sub: 'x', exp: 1 }));
    expect(d?.header).toEqual({ typ: 'JWT', alg: 'RS256' });
    expect(d?.claims).toEqual({ sub: 'x', exp: 1 });
  });
  it('returns undefined for opaque tokens, JWE and garbage', () => {
    expect(decodeJwt('ya29.opaque')).toBeUndefined();
    expect(decodeJwt('a.b.c.d.e')).toBeUndefined();
    expect(decodeJwt(`${b64({ alg: 'none' })}.bm90IGpzb24.x`)).toBeUndefined();
    expect(decodeJwt(`${b64([1, 2])}.${b64({})}.x`)).toBeUndefined();
    expect(decodeJwt('')).toBeUndefined();
  });
});

describe('summarizeJwt', () => {
  it('summarizes an Exchange delegated token', () => {
    const s = summarizeJwt(
      jwt({
        aud: 'https://outlook.office.com',
        upn: 'a@b.test',
        scp: 'SMTP.Send IMAP.AccessAsUser.All',
        exp: 2000000000,
        iat: 1999990000,
        tid: 't',
        appid: 'app',
      }),
    );
    expect(s).toMatchObject({
      audience: 'https://outlook.office.com',
      user: 'a@b.test',
      scopes: ['SMTP.Send', 'IMAP.AccessAsUser.All'],
      roles: [],
      tenantId: 't',
      appId: 'app',
    });
    expect(s?.expiresAt?.toISOString()).toBe('2033-05-18T03:33:20.000Z');
  });
  it('summarizes an app-only token with roles and an array audience', () => {
    const s = summarizeJwt(
      jwt({ aud: ['https://outlook.office365.com'], roles: ['SMTP.SendAsApp', 3], sub: 'sp' }),
    );
    expect(s).toMatchObject({
      audience: 'https://outlook.office365.com',
      roles: ['SMTP.SendAsApp'],
      scopes: [],
      subject: 'sp',
    });
    expect(s?.expiresAt).toBeUndefined();
  });
});
