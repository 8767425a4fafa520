/**
 * TLS rules shared by SMTP and IMAP: a server must be set, plain text only on loopback (decided on
 * the resolved address, which is then the one connected to: plainLoopbackAddress), certificates
 * verified (TLS 1.2 or newer, the host name as SNI) unless --insecure-tls, a private CA from a file.
 */
import dns from 'node:dns';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { ConfigError, TransientError, UsageError } from '../errors/index.js';

export interface TlsChoices {
  /** --ca FILE */
  caFile?: string;
  /** --insecure-tls (warns) */
  insecureTls?: boolean;
  warn?: (line: string) => void;
  /** The profile's name, for the `profile edit` command in hints. */
  profile?: string;
}

const PROTOCOL = {
  smtp: {
    name: 'SMTP',
    example: 'smtp.example.com:587 --smtp-security starttls',
    secure: '--smtp-security starttls (port 587) or tls (port 465)',
  },
  imap: {
    name: 'IMAP',
    example: 'imap.example.com:993 --imap-security tls',
    secure: '--imap-security tls (port 993) or starttls (port 143)',
  },
} as const;

/**
 * The profile's server for `protocol`, checked (set; TLS unless on loopback), with the host as the
 * libraries want it (no IPv6 brackets) and the Node TLS options.
 */
export function serverTls<S extends { host: string; port: number; security: string }>(
  protocol: 'smtp' | 'imap',
  server: S | undefined,
  opts: TlsChoices,
): {
  server: S;
  host: string;
  tls: { rejectUnauthorized: boolean; minVersion: 'TLSv1.2'; servername?: string; ca?: string };
} {
  const p = PROTOCOL[protocol];
  if (!server) {
    throw new ConfigError(`the profile has no ${p.name} server`, {
      code: `no_${protocol}`,
      hint: `set it: oauthmail profile edit ${opts.profile ?? 'NAME'} --${protocol} ${p.example}`,
    });
  }
  if (server.security === 'none' && !isLoopbackHost(server.host)) {
    throw new ConfigError(`refusing to send a token to ${server.host} without TLS`, {
      code: 'tls_required',
      hint: `use ${p.secure}; plain ${p.name} is allowed only on loopback`,
    });
  }
  const ca = opts.caFile ? readCaFile(opts.caFile) : undefined;
  if (opts.insecureTls) {
    opts.warn?.(
      `--insecure-tls: the certificate of ${server.host} is NOT verified; anyone on the path can read your token`,
    );
  }
  const host = server.host.replace(/^\[|\]$/g, '');
  return {
    server,
    host,
    tls: {
      rejectUnauthorized: !opts.insecureTls,
      minVersion: 'TLSv1.2',
      ...(isIP(host) ? {} : { servername: host }),
      ...(ca ? { ca } : {}),
    },
  };
}

/**
 * For security "none": the loopback address to connect to for `host`, resolved here so that the
 * decision is made on the address actually connected to. A name is only a name (on Debian
 * `*.localhost` goes through /etc/hosts and DNS like any other): `mail.localhost` pointing to
 * 10.9.9.9 would otherwise get the token in clear text. The caller connects to the returned
 * address, so no second lookup can answer differently.
 */
export async function plainLoopbackAddress(protocol: 'smtp' | 'imap', host: string): Promise<string> {
  const h = host.replace(/^\[|\]$/g, '');
  let addresses: string[];
  if (isIP(h)) addresses = [h];
  else {
    try {
      // dns.lookup (getaddrinfo: hosts file, then DNS), read at call time
      addresses = await new Promise<string[]>((resolve, reject) =>
        dns.lookup(h, { all: true }, (err, list) =>
          err ? reject(err) : resolve(list.map((a) => a.address)),
        ),
      );
    } catch (e) {
      throw new TransientError(`could not resolve the ${PROTOCOL[protocol].name} server ${host}`, {
        code: 'dns_failed',
        hint: "check the profile's host name and the network; this is safe to retry",
        cause: e,
      });
    }
  }
  const loop = addresses.find(isLoopbackAddress);
  if (loop) return loop;
  const p = PROTOCOL[protocol];
  throw new ConfigError(
    `refusing to send a token to ${host} without TLS: it resolves to ${addresses.join(', ')}, not a loopback address`,
    { code: 'tls_required', hint: `use ${p.secure}; plain ${p.name} is allowed only on loopback` },
  );
}

/** 127.0.0.0/8, ::1, and 127.x.x.x mapped into IPv6. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '');
  if (isIP(a) === 4) return a.startsWith('127.');
  if (isIP(a) === 6) return /^(0{0,4}:){2,7}0{0,3}1$/.test(a) || a === '::1';
  return false;
}

/** A first check on the name, before any sign-in; plainLoopbackAddress decides on the address. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h.endsWith('.localhost');
}

/** The PEM certificates of `--ca FILE`, checked to be PEM. */
export function readCaFile(caFile: string): string {
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (e) {
    throw new UsageError(`--ca ${caFile}: cannot read it`, { code: 'bad_ca', cause: e });
  }
  if (!/-----BEGIN CERTIFICATE-----/.test(ca)) {
    throw new UsageError(`--ca ${caFile}: not a PEM certificate`, { code: 'bad_ca' });
  }
  return ca;
}
