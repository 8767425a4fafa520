// JWT signing/verification and small crypto helpers for the fake identity provider.
// Node built-ins only (RFC 7515 JWS compact serialization, RFC 7517 JWK).
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  randomUUID,
  sign,
  verify,
  constants,
  X509Certificate,
} from 'node:crypto';

/** @param {Buffer|string} buf */
export function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

/** @param {string} s */
export function b64urlDecode(s) {
  return Buffer.from(s, 'base64url');
}

/** @param {unknown} obj */
export function b64urlJson(obj) {
  return b64url(JSON.stringify(obj));
}

/** Random URL-safe string of `bytes` random bytes. */
export function randomToken(bytes = 32) {
  return randomBytes(bytes).toString('base64url');
}

export { randomUUID };

/** Deterministic UUID-shaped id derived from a string (for service principal ids etc.). */
export function stableUuid(seed) {
  const h = createHash('sha256').update(String(seed)).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function sha256(data) {
  return createHash('sha256').update(data).digest();
}

/** RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))). */
export function pkceS256(verifier) {
  return b64url(sha256(verifier));
}

/**
 * A signer bound to one RSA key.
 * @param {{privateKeyPem: string, publicKeyPem: string, kid: string}} opts
 */
export function createSigner({ privateKeyPem, publicKeyPem, kid }) {
  const privateKey = createPrivateKey(privateKeyPem);
  const publicKey = createPublicKey(publicKeyPem);
  return {
    kid,
    publicKey,
    publicKeyPem,
    /** Sign claims as an RS256 JWT with header {typ:'JWT', alg:'RS256', kid}. */
    sign(claims, extraHeader = {}) {
      const header = { typ: 'JWT', alg: 'RS256', kid, ...extraHeader };
      const input = `${b64urlJson(header)}.${b64urlJson(claims)}`;
      const sig = sign('sha256', Buffer.from(input), privateKey);
      return `${input}.${b64url(sig)}`;
    },
    /** Verify a token this signer issued; returns claims or null (signature/format only). */
    verifyOwn(token) {
      const parsed = decodeJwt(token);
      if (!parsed || parsed.header.alg !== 'RS256') return null;
      return verifyJwtSignature(parsed, publicKey) ? parsed.payload : null;
    },
    jwk() {
      const jwk = publicKey.export({ format: 'jwk' });
      return { kty: 'RSA', use: 'sig', alg: 'RS256', kid, x5t: kid, n: jwk.n, e: jwk.e };
    },
  };
}

/**
 * Split and decode a compact JWS without verifying it.
 * @returns {{header: any, payload: any, signingInput: string, signature: Buffer} | null}
 */
export function decodeJwt(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(b64urlDecode(parts[0]).toString('utf8'));
    const payload = JSON.parse(b64urlDecode(parts[1]).toString('utf8'));
    if (!header || typeof header !== 'object' || !payload || typeof payload !== 'object') return null;
    return { header, payload, signingInput: `${parts[0]}.${parts[1]}`, signature: b64urlDecode(parts[2]) };
  } catch {
    return null;
  }
}

/**
 * Verify RS256/PS256 (what MSAL's client assertions and Google's service-account assertions use).
 * @param {{header: any, signingInput: string, signature: Buffer}} parsed
 * @param {import('node:crypto').KeyObject} publicKey
 */
export function verifyJwtSignature(parsed, publicKey) {
  const data = Buffer.from(parsed.signingInput);
  try {
    switch (parsed.header.alg) {
      case 'RS256':
        return verify('sha256', data, publicKey, parsed.signature);
      case 'PS256':
        return verify(
          'sha256',
          data,
          {
            key: publicKey,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: constants.RSA_PSS_SALTLEN_AUTO,
          },
          parsed.signature,
        );
      default:
        return false;
    }
  } catch {
    return false;
  }
}

/**
 * Parse a PEM that is either a public key or an X.509 certificate.
 * Returns the public key and, for certificates, both thumbprints as base64url
 * (the form MSAL puts in the `x5t` / `x5t#S256` JWT headers).
 */
export function parseKeyOrCert(pem) {
  if (/BEGIN CERTIFICATE/.test(pem)) {
    const cert = new X509Certificate(pem);
    return {
      publicKey: cert.publicKey,
      x5t: b64url(createHash('sha1').update(cert.raw).digest()),
      x5tS256: b64url(createHash('sha256').update(cert.raw).digest()),
    };
  }
  return { publicKey: createPublicKey(pem), x5t: undefined, x5tS256: undefined };
}
