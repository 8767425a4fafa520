/**
 * The per-sign-in secrets of an authorization-code flow: a PKCE verifier and its S256 challenge
 * (RFC 7636 §4.1-4.2), state (RFC 6749 §10.12) and an OpenID Connect nonce, 256/128 bits each.
 * The verifier is registered for redaction; it never leaves this process.
 */
import { createHash, randomBytes } from 'node:crypto';
import { registerSecret } from '../util/redact.js';

export interface Pkce {
  verifier: string;
  challenge: string;
  state: string;
  nonce: string;
}

export function newPkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  registerSecret(verifier);
  return {
    verifier,
    challenge: createHash('sha256').update(verifier).digest('base64url'),
    state: randomBytes(32).toString('base64url'),
    nonce: randomBytes(16).toString('base64url'),
  };
}
