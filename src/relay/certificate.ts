/**
 * The relay's TLS certificate: the files the user gave (--tls-cert/--tls-key or relay.json's
 * tls), or one made here on first use (ECDSA P-256, self-signed, for localhost, the loopback
 * addresses and every address the relay listens on) and kept in `<dataDir>/relay-tls/` (0600).
 * Devices that check certificates are told its SHA-256 fingerprint (printed at start).
 */
import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { buildCertificate } from '../auth/self-signed.js';
import { ConfigError } from '../errors/index.js';
import { atomicWriteFile, ensurePrivateDir, readFileIfExists } from '../util/fs.js';

export interface RelayTls {
  key: string;
  cert: string;
  fingerprint: string;
  /** Made by oauthmail (self-signed), and whether just now. */
  selfSigned: boolean;
  created: boolean;
}

export function fingerprintOf(certPem: string): string {
  return createHash('sha256')
    .update(new X509Certificate(certPem).raw)
    .digest('hex')
    .toUpperCase()
    .replace(/(..)(?!$)/g, '$1:');
}

function ipBytes(ip: string): Buffer | undefined {
  const f = isIP(ip);
  if (f === 4) return Buffer.from(ip.split('.').map(Number));
  if (f !== 6) return undefined;
  const [a, b = ''] = ip.split('::') as [string, string?];
  const head = a ? a.split(':') : [];
  const tail = ip.includes('::') && b ? b.split(':') : [];
  const groups = ip.includes('::')
    ? [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail]
    : head;
  if (groups.length !== 8 || groups.some((g) => g.includes('.'))) return undefined;
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

/** The certificate from files the user named; a ConfigError naming the file when unusable. */
export function tlsFromFiles(certFile: string, keyFile: string): RelayTls {
  const read = (f: string, what: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new ConfigError(
        `cannot read the relay's TLS ${what} ${f}: ${(e as NodeJS.ErrnoException).code}`,
        {
          code: 'relay_tls_file',
          hint: 'give readable PEM files with --tls-cert and --tls-key (or leave both out for a self-signed one)',
          cause: e,
        },
      );
    }
  };
  const cert = read(certFile, 'certificate');
  const key = read(keyFile, 'key');
  try {
    if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key)))
      throw new Error('key does not match');
  } catch (e) {
    throw new ConfigError(`the relay's TLS key ${keyFile} does not fit the certificate ${certFile}`, {
      code: 'relay_tls_mismatch',
      hint: 'give the certificate and the private key that belong together (PEM)',
      cause: e,
    });
  }
  return { key, cert, fingerprint: fingerprintOf(cert), selfSigned: false, created: false };
}

/** The self-signed certificate in dataDir/relay-tls, made again when it lacks a listener's address. */
export async function selfSignedTls(dataDir: string, hosts: string[], now = new Date()): Promise<RelayTls> {
  const dir = path.join(dataDir, 'relay-tls');
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  const ips = [...new Set(['127.0.0.1', '::1', ...hosts.filter((h) => h !== '0.0.0.0' && h !== '::')])];
  let key = await readFileIfExists(keyFile);
  let cert = await readFileIfExists(certFile);
  let ok = false;
  if (key && cert) {
    try {
      const x = new X509Certificate(cert);
      ok =
        Date.parse(x.validTo) > now.getTime() + 86_400_000 &&
        x.checkPrivateKey(createPrivateKey(key)) &&
        ips.every((ip) => x.checkIP(ip) !== undefined);
    } catch {
      ok = false;
    }
  }
  if (ok)
    return { key: key!, cert: cert!, fingerprint: fingerprintOf(cert!), selfSigned: true, created: false };
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  key = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  cert = buildCertificate(key, now, {
    cn: 'oauthmail relay',
    dns: ['localhost'],
    ips: ips.map(ipBytes).filter((b): b is Buffer => !!b),
  });
  await ensurePrivateDir(dir);
  await atomicWriteFile(keyFile, key);
  await atomicWriteFile(certFile, cert);
  return { key, cert, fingerprint: fingerprintOf(cert), selfSigned: true, created: true };
}
