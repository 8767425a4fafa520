/**
 * Plain text (security "none") is allowed only to a loopback server, and "loopback" is decided by
 * the address actually connected to, not by the name: on Debian `mail.localhost` is resolved
 * through /etc/hosts and DNS like any name and can point anywhere.
 *
 * Real servers listen on this machine's non-loopback address (hostname -I; 192.0.2.2 here) and on
 * 127.0.0.1; name resolution is the only part simulated: `dns.lookup` (getaddrinfo: /etc/hosts,
 * then DNS) and nodemailer's dns.resolve4/resolve6 answer `mail.localhost` with the address under
 * test, as a hostile or careless hosts file or DNS server would. The servers record every
 * connection and every line: no AUTH (and no token) may reach the non-loopback one.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import dns from 'node:dns';
import net from 'node:net';
import os from 'node:os';
import type { Profile } from '../../src/config/schema.js';
import { DEFAULT_RETRY } from '../../src/config/schema.js';
import { SmtpClient } from '../../src/mail/smtp.js';
import { connectImap } from '../../src/mail/imap.js';
import { staticTokenSource } from '../../src/mail/token-source.js';
import { buildMessage } from '../../src/mail/message.js';

const TOKEN = 'eyJhbGciOiJub25lIn0.plaintext-test-token.sig';
const USER = 'alice@contoso.test';

/** A non-loopback IPv4 address of this machine (the test is meaningless without one). */
function externalAddress(): string {
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  throw new Error('this machine has no non-loopback IPv4 address to test with');
}

interface FakeServer {
  port: number;
  connections: number;
  lines: string[];
  close(): Promise<void>;
}

/** A plain SMTP server that offers XOAUTH2 and accepts any token (so a leak goes all the way). */
function smtpServer(host: string): Promise<FakeServer> {
  const st: FakeServer = { port: 0, connections: 0, lines: [], close: () => Promise.resolve() };
  const srv = net.createServer((s) => {
    st.connections++;
    let buf = '';
    let data = false;
    s.write('220 fake ESMTP\r\n');
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        st.lines.push(line);
        if (data) {
          if (line === '.') {
            data = false;
            s.write('250 2.0.0 queued\r\n');
          }
          continue;
        }
        const cmd = line.split(' ')[0]!.toUpperCase();
        if (cmd === 'EHLO') s.write('250-fake\r\n250 AUTH XOAUTH2 OAUTHBEARER\r\n');
        else if (cmd === 'AUTH') s.write('235 2.7.0 ok\r\n');
        else if (cmd === 'DATA') {
          data = true;
          s.write('354 go\r\n');
        } else if (cmd === 'QUIT') s.end('221 bye\r\n');
        else s.write('250 ok\r\n');
      }
    });
    s.on('error', () => undefined);
  });
  return new Promise((resolve) =>
    srv.listen(0, host, () => {
      st.port = (srv.address() as net.AddressInfo).port;
      st.close = () => new Promise((r) => srv.close(() => r()));
      resolve(st);
    }),
  );
}

/** A plain IMAP server that offers AUTH=XOAUTH2 and accepts any token. */
function imapServer(host: string): Promise<FakeServer> {
  const st: FakeServer = { port: 0, connections: 0, lines: [], close: () => Promise.resolve() };
  const caps = 'IMAP4rev1 AUTH=XOAUTH2';
  const srv = net.createServer((s) => {
    st.connections++;
    let buf = '';
    s.write(`* OK [CAPABILITY ${caps}] fake ready\r\n`);
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        st.lines.push(line);
        const [tag, cmd] = line.split(' ') as [string, string | undefined];
        const c = (cmd ?? '').toUpperCase();
        if (c === 'CAPABILITY') s.write(`* CAPABILITY ${caps}\r\n${tag} OK done\r\n`);
        else if (c === 'AUTHENTICATE') s.write(`${tag} OK [CAPABILITY ${caps}] signed in\r\n`);
        else if (c === 'LOGOUT') s.end(`* BYE\r\n${tag} OK bye\r\n`);
        else s.write(`${tag} OK done\r\n`);
      }
    });
    s.on('error', () => undefined);
  });
  return new Promise((resolve) =>
    srv.listen(0, host, () => {
      st.port = (srv.address() as net.AddressInfo).port;
      st.close = () => new Promise((r) => srv.close(() => r()));
      resolve(st);
    }),
  );
}

// --- the name resolution under test: mail.localhost -> `target` -----------------------------
const realLookup = dns.lookup;
const realResolve4 = dns.resolve4;
const realResolve6 = dns.resolve6;
let target = '';
let pointed = 'mail.localhost';
const lookups: string[] = [];

function pointMailLocalhostAt(address: string, name = 'mail.localhost'): void {
  target = address;
  pointed = name;
  type Cb = (err: NodeJS.ErrnoException | null, a?: unknown, f?: number) => void;
  const notFound = (host: string) =>
    Object.assign(new Error(`queryA ENOTFOUND ${host}`), { code: 'ENOTFOUND', hostname: host });
  (dns as { lookup: unknown }).lookup = function (host: string, o: unknown, cb?: Cb) {
    const callback = (typeof o === 'function' ? o : cb) as Cb;
    const opts = (typeof o === 'object' && o !== null ? o : {}) as { all?: boolean };
    if (host !== pointed) return (realLookup as (...a: unknown[]) => void).call(dns, host, o, cb);
    lookups.push(host);
    const family = net.isIP(target);
    process.nextTick(() =>
      opts.all ? callback(null, [{ address: target, family }]) : callback(null, target, family),
    );
  };
  // nodemailer asks DNS first: answer as the (hostile) DNS server would
  (dns as { resolve4: unknown }).resolve4 = function (host: string, ...rest: unknown[]) {
    const cb = rest[rest.length - 1] as Cb;
    if (host !== pointed) return (realResolve4 as (...a: unknown[]) => void).call(dns, host, ...rest);
    lookups.push(host);
    process.nextTick(() => (net.isIPv4(target) ? cb(null, [target]) : cb(notFound(host))));
  };
  (dns as { resolve6: unknown }).resolve6 = function (host: string, ...rest: unknown[]) {
    const cb = rest[rest.length - 1] as Cb;
    if (host !== pointed) return (realResolve6 as (...a: unknown[]) => void).call(dns, host, ...rest);
    process.nextTick(() => cb(notFound(host)));
  };
}

afterEach(() => {
  pointed = 'mail.localhost';
  dns.lookup = realLookup;
  dns.resolve4 = realResolve4;
  dns.resolve6 = realResolve6;
  lookups.length = 0;
});

let external: string;
beforeAll(() => {
  external = externalAddress();
});

function profile(kind: 'smtp' | 'imap', port: number): Profile {
  return {
    provider: 'microsoft',
    clientId: '11111111-1111-4111-8111-111111111111',
    clientType: 'public',
    flow: 'device',
    scopes: ['https://outlook.office.com/SMTP.Send'],
    capabilities: ['send', 'read'],
    user: USER,
    [kind]: { host: 'mail.localhost', port, security: 'none' },
    sasl: 'xoauth2',
    retry: { ...DEFAULT_RETRY, mode: 'none', maxAttempts: 1 },
    storage: 'file',
  };
}

async function sendOne(p: Profile) {
  const c = await SmtpClient.create(p, staticTokenSource(USER, TOKEN), { connectionTimeoutMs: 5000 });
  try {
    const built = await buildMessage({ to: ['bob@contoso.test'], subject: 'plain', text: 'hi' }, p);
    return await c.send(built);
  } finally {
    c.close();
  }
}

const leaked = (lines: string[]) =>
  lines.some(
    (l) => /^AUTH|AUTHENTICATE/i.test(l) || l.includes(Buffer.from(TOKEN).toString('base64').slice(0, 20)),
  );

describe('security "none": loopback by the address connected to', () => {
  it('SMTP: mail.localhost resolving to a non-loopback address gets no token (config error, exit 3)', async () => {
    const srv = await smtpServer(external);
    try {
      pointMailLocalhostAt(external);
      const err = await sendOne(profile('smtp', srv.port)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(lookups.length).toBeGreaterThan(0); // the name was resolved through our stand-in
      expect(leaked(srv.lines), srv.lines.join('\n')).toBe(false);
      expect(srv.connections).toBe(0); // refused before connecting
      expect(err).toMatchObject({ code: 'tls_required', exitCode: 3 });
      expect((err as Error).message).toContain('mail.localhost');
      expect((err as Error).message).toContain(external);
    } finally {
      await srv.close();
    }
  });

  it('IMAP: mail.localhost resolving to a non-loopback address gets no token (config error, exit 3)', async () => {
    const srv = await imapServer(external);
    try {
      pointMailLocalhostAt(external);
      const err = await connectImap(profile('imap', srv.port), staticTokenSource(USER, TOKEN), {
        connectionTimeoutMs: 5000,
      }).then(
        async (c) => {
          await c.client.logout().catch(() => undefined);
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(lookups.length).toBeGreaterThan(0);
      expect(leaked(srv.lines), srv.lines.join('\n')).toBe(false);
      expect(srv.connections).toBe(0);
      expect(err).toMatchObject({ code: 'tls_required', exitCode: 3 });
      expect((err as Error).message).toContain(external);
    } finally {
      await srv.close();
    }
  });

  it('mail.localhost resolving to 127.0.0.1: plain SMTP and IMAP still work (and connect to that address)', async () => {
    const smtp = await smtpServer('127.0.0.1');
    const imap = await imapServer('127.0.0.1');
    try {
      pointMailLocalhostAt('127.0.0.1');
      const r = await sendOne(profile('smtp', smtp.port));
      expect(r.response).toMatch(/^250/);
      expect(smtp.lines.some((l) => l.startsWith('AUTH XOAUTH2'))).toBe(true);
      const c = await connectImap(profile('imap', imap.port), staticTokenSource(USER, TOKEN), {
        connectionTimeoutMs: 5000,
      });
      await c.client.logout().catch(() => undefined);
      expect(imap.lines.some((l) => /AUTHENTICATE XOAUTH2/i.test(l))).toBe(true);
    } finally {
      await smtp.close();
      await imap.close();
    }
  });
});

describe('oauthmail test (the SMTP AUTH check) with security "none"', () => {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const token = `${b64({ typ: 'JWT', alg: 'RS256' })}.${b64({
    exp: Math.floor(Date.now() / 1000) + 3600,
    aud: 'https://outlook.office.com',
    scp: 'SMTP.Send',
    upn: USER,
    tid: 't',
    appid: '11111111-1111-4111-8111-111111111111',
  })}.c2lnbmF0dXJl`;

  it('"localhost" that resolves to a non-loopback address: no AUTH is sent, the check fails as a config error', async () => {
    const { runChecks } = await import('../../src/diagnose/checks.js');
    const srv = await smtpServer(external);
    try {
      pointMailLocalhostAt(external, 'localhost');
      const p = {
        ...profile('smtp', srv.port),
        capabilities: ['send'],
        smtp: { host: 'localhost', port: srv.port, security: 'none' },
      };
      const rep = await runChecks({
        name: 'work',
        profile: p as Profile,
        provider: () => Promise.reject(new Error('not used: --token-stdin')),
        token,
        timeoutMs: 5000,
      });
      expect(leaked(srv.lines), srv.lines.join('\n')).toBe(false);
      expect(rep.checks.find((c) => c.id === 'smtp')).toMatchObject({
        status: 'fail',
        code: 'tls_required',
        exitCode: 3,
      });
    } finally {
      await srv.close();
    }
  });
});
