/**
 * Addresses the relay deals in: its listeners ("ADDR:PORT", "tls://ADDR:PORT", "[::1]:PORT") and
 * the allowlists of devices that send without AUTH (IPs and CIDRs, IPv4 and IPv6).
 */
import { BlockList, isIP } from 'node:net';
import { UsageError } from '../errors/index.js';

export interface Listener {
  host: string;
  port: number;
  /** tls: implicit TLS from the first byte (RFC 8314, port 465); starttls: RFC 3207. */
  mode: 'starttls' | 'tls';
}

/** "127.0.0.1:2587", "starttls://[::1]:587", "tls://0.0.0.0:465". Port 0: any free port. */
export function parseListen(spec: string): Listener {
  const m = /^(?:(starttls|smtp|tls|smtps):\/\/)?(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(spec.trim());
  const host = m?.[2]?.replace(/^\[|\]$/g, '');
  const port = Number(m?.[3]);
  if (!m || !host || !isIP(host) || port > 65535) {
    throw new UsageError(`--listen ${JSON.stringify(spec)} is not ADDR:PORT`, {
      code: 'bad_listen',
      hint: 'give an IP address and a port, e.g. --listen 127.0.0.1:2587 or --listen tls://192.168.1.10:465',
    });
  }
  const mode = m[1] === 'tls' || m[1] === 'smtps' ? 'tls' : 'starttls';
  return { host, port, mode };
}

export function listenText(l: Listener, port = l.port): string {
  const h = l.host.includes(':') ? `[${l.host}]` : l.host;
  return `${l.mode === 'tls' ? 'tls://' : ''}${h}:${port}`;
}

/** "::ffff:127.0.0.2" is 127.0.0.2. */
export function plainAddress(a: string | undefined): string {
  const s = (a ?? '').trim();
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  return m ? m[1]! : s;
}

export function isLoopbackIp(a: string | undefined): boolean {
  const s = plainAddress(a);
  return s === '::1' || /^127\./.test(s);
}

/** An allowlist (IPs and CIDRs); throws a plain Error naming the bad entry. */
export function parseAllow(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const raw of entries) {
    const e = String(raw).trim();
    const [ip, bits] = e.split('/') as [string, string | undefined];
    const family = isIP(ip);
    if (!family) throw new Error(`${JSON.stringify(e)} is not an IP address or CIDR`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) {
      list.addAddress(ip, type);
      continue;
    }
    const n = Number(bits);
    if (!/^\d{1,3}$/.test(bits) || n > (family === 6 ? 128 : 32))
      throw new Error(`${JSON.stringify(e)} has a bad prefix length`);
    list.addSubnet(ip, n, type);
  }
  return list;
}

/** Whether `address` (as the socket reports it) is in the list. */
export function allowed(list: BlockList, address: string | undefined): boolean {
  const a = plainAddress(address);
  const family = isIP(a);
  if (!family) return false;
  return list.check(a, family === 6 ? 'ipv6' : 'ipv4');
}
