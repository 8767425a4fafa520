/**
 * An Entra-shaped access token signed with the stack's JWT key, which Dovecot (IMAP, and SMTP AUTH
 * for Postfix) checks locally: for tests that talk to the mail servers without the identity
 * provider, or that need a token the servers refuse (wrong scope, expired).
 */
import { createSign, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export function mintStackToken(
  s: { pkiDir: string; kid: string; msIssuer: string },
  user: string,
  opts: { scope: string; lifetimeSeconds?: number },
): string {
  const key = readFileSync(path.join(s.pkiDir, 'jwt-key.pem'));
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const h = b64({ alg: 'RS256', typ: 'JWT', kid: s.kid });
  const p = b64({
    iss: s.msIssuer,
    sub: `sub-${user}`,
    email: user,
    scope: opts.scope,
    aud: 'https://outlook.office.com',
    iat: now,
    exp: now + (opts.lifetimeSeconds ?? 3600),
    jti: randomBytes(8).toString('hex'),
  });
  const sig = createSign('RSA-SHA256').update(`${h}.${p}`).sign(key).toString('base64url');
  return `${h}.${p}.${sig}`;
}
