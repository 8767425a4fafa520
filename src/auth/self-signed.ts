/**
 * The per-install certificate of the HTTPS loopback redirect (`https://localhost:PORT/`), for
 * app registrations that accept only https redirect URIs. Made once on this computer: an
 * ECDSA P-256 key and a self-signed X.509 v3 certificate for localhost, 127.0.0.1 and ::1,
 * valid for 10 years, kept in `<dataDir>/loopback-tls/` (mode 0600). The browser warns about it
 * once (it is signed by nobody it knows); the person checks the fingerprint we print and goes on.
 *
 * Node can sign but cannot build certificates, and a dependency (or the openssl binary) for one
 * certificate is not worth it: the DER below follows RFC 5280 §4.1 field by field.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import path from 'node:path';
import { resolvePaths } from '../config/paths.js';
import { atomicWriteFile, ensurePrivateDir, readFileIfExists } from '../util/fs.js';

// ---- minimal DER (X.690) ----------------------------------------------------------------------

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n >>= 8;
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), len(body.length), body]);
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const ctx = (n: number, body: Buffer, constructed = true) => tlv((constructed ? 0xa0 : 0x80) | n, body);
function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack = [p & 0x7f];
    let v = p >> 7;
    while (v > 0) {
      stack.unshift((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}
function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
function time(d: Date): Buffer {
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

const LOOPBACK_NAMES = {
  cn: 'oauthmail loopback (localhost)',
  dns: ['localhost'],
  ips: [Buffer.from([127, 0, 0, 1]), Buffer.concat([Buffer.alloc(15), Buffer.from([1])])],
};

/** A self-signed certificate (PEM) for `names` (also the relay's, src/relay/certificate.ts). */
export function buildCertificate(
  privateKeyPem: string,
  now: Date,
  names: { cn: string; dns: string[]; ips: Buffer[] } = LOOPBACK_NAMES,
): string {
  const key = createPrivateKey(privateKeyPem);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const name = seq(set(seq(oid('2.5.4.3'), utf8(names.cn))));
  const notBefore = new Date(now.getTime() - 60_000);
  const notAfter = new Date(now.getTime() + 10 * 365 * 86_400_000);
  const san = seq(
    ...names.dns.map((d) => ctx(2, Buffer.from(d), false)), // dNSName
    ...names.ips.map((ip) => ctx(7, ip, false)), // iPAddress (4 or 16 bytes)
  );
  const extensions = ctx(
    3,
    seq(
      seq(oid('2.5.29.17'), tlv(0x04, san)), // subjectAltName
      seq(oid('2.5.29.19'), tlv(0x01, Buffer.from([0xff])), tlv(0x04, seq())), // basicConstraints: critical, not a CA
      seq(oid('2.5.29.37'), tlv(0x04, seq(oid('1.3.6.1.5.5.7.3.1')))), // extKeyUsage: serverAuth
    ),
  );
  const tbs = seq(
    ctx(0, integer(Buffer.from([2]))), // v3
    integer(randomBytes(16)),
    ECDSA_SHA256,
    name,
    seq(time(notBefore), time(notAfter)),
    name,
    spki,
    extensions,
  );
  const signature = sign('sha256', tbs, key); // DER-encoded ECDSA-Sig-Value
  const der = seq(tbs, ECDSA_SHA256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64.trimEnd()}\n-----END CERTIFICATE-----\n`;
}

export interface LoopbackTls {
  key: string;
  cert: string;
  /** SHA-256 fingerprint, as browsers show it (AA:BB:...). */
  fingerprint: string;
  /** True when it was made just now (first use: explain the browser warning at length). */
  created: boolean;
  dir: string;
}

/** The per-install certificate, made on first use. */
export async function loopbackTls(env: NodeJS.ProcessEnv, now = new Date()): Promise<LoopbackTls> {
  const dir = path.join(resolvePaths(env).dataDir, 'loopback-tls');
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  let key = await readFileIfExists(keyFile);
  let cert = await readFileIfExists(certFile);
  let created = false;
  let valid = false;
  if (key && cert) {
    try {
      const x = new X509Certificate(cert);
      valid = Date.parse(x.validTo) > now.getTime() + 86_400_000 && x.checkPrivateKey(createPrivateKey(key));
    } catch {
      valid = false;
    }
  }
  if (!key || !cert || !valid) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    key = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    cert = buildCertificate(key, now);
    await ensurePrivateDir(dir);
    await atomicWriteFile(keyFile, key);
    await atomicWriteFile(certFile, cert);
    created = true;
  }
  const der = new X509Certificate(cert).raw;
  const fingerprint = createHash('sha256')
    .update(der)
    .digest('hex')
    .toUpperCase()
    .replace(/(..)(?!$)/g, '$1:');
  return { key, cert, fingerprint, created, dir };
}
