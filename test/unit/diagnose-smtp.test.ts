/**
 * The SMTP check of `oauthmail test` against a scripted server on loopback (no stack): it signs in
 * with the OAuth mechanism even when the server lists PLAIN first, answers the error challenge
 * (RFC 7628 §3.2.3) and reports the server's reason; the token never reaches the transcript.
 */
import { describe, it, expect, afterEach } from 'vitest';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { runChecks } from '../../src/diagnose/checks.js';
import { DEFAULT_RETRY, type Profile } from '../../src/config/schema.js';

const TOKEN = 'opaque-test-token-0123456789';
const USER = 'alice@contoso.test';

/** A plain SMTP server offering PLAIN first; AUTH answers with `auth` (lines; CLOSE hangs up). */
function server(auth: string[]): Promise<{ port: number; lines: string[]; close(): void }> {
  const lines: string[] = [];
  const srv = net.createServer((s) => {
    s.write('220 fake ESMTP\r\n');
    let step = 0;
    s.on('error', () => undefined);
    createInterface({ input: s, crlfDelay: Infinity }).on('line', (line) => {
      lines.push(line);
      const cmd = line.split(' ')[0]!.toUpperCase();
      if (cmd === 'EHLO') s.write('250-fake\r\n250 AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n');
      else if (cmd === 'QUIT') s.end('221 bye\r\n');
      else if (auth[step] === 'CLOSE') s.destroy();
      else if (cmd === 'AUTH' || step > 0) s.write(`${auth[step++] ?? '503 5.5.1 no'}\r\n`);
      else s.write('250 ok\r\n');
    });
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({ port: (srv.address() as net.AddressInfo).port, lines, close: () => srv.close() }),
    ),
  );
}

let close: (() => void) | undefined;
afterEach(() => close?.());

async function check(auth: string[], sasl: Profile['sasl'] = 'auto') {
  const srv = await server(auth);
  close = () => srv.close();
  const transcript: string[] = [];
  const rep = await runChecks({
    name: 'work',
    token: TOKEN,
    profile: {
      provider: 'custom',
      clientId: 'c',
      clientType: 'public',
      flow: 'device',
      capabilities: ['send'],
      scopes: ['mail'],
      sasl,
      storage: 'file',
      retry: { ...DEFAULT_RETRY },
      user: USER,
      smtp: { host: '127.0.0.1', port: srv.port, security: 'none' },
    },
    provider: () => Promise.reject(new Error('not used: a token is given')),
    transcript: (l) => transcript.push(l),
    timeoutMs: 5000,
  });
  const smtp = rep.checks.find((c) => c.id === 'smtp')!;
  expect(transcript.join('\n')).not.toContain(TOKEN);
  return { smtp, rep, lines: srv.lines, transcript };
}

describe('oauthmail test: the SMTP check', () => {
  it('PLAIN offered first: signs in with XOAUTH2 (never PLAIN); the transcript hides the SASL string', async () => {
    const { smtp, lines, transcript } = await check(['235 2.7.0 ok']);
    expect(smtp.status).toBe('pass');
    expect(smtp.summary).toMatch(
      /^connect, EHLO, XOAUTH2 offered, AUTH: signed in to 127\.0\.0\.1:\d+ as alice/,
    );
    const auth = lines.filter((l) => l.startsWith('AUTH '));
    expect(auth).toHaveLength(1);
    expect(auth[0]).toBe(
      `AUTH XOAUTH2 ${Buffer.from(`user=${USER}\x01auth=Bearer ${TOKEN}\x01\x01`).toString('base64')}`,
    );
    expect(transcript).toContain('smtp C: AUTH XOAUTH2 [REDACTED]');
    expect(transcript).toContain('smtp S: 235 2.7.0 ok');
  });

  it("an error challenge: answered, the final 535 with the server's reason, exit 5; OAUTHBEARER too", async () => {
    const challenge = Buffer.from('{"status":"invalid_token","scope":"mail"}').toString('base64');
    const { smtp, rep } = await check([`334 ${challenge}`, '535 5.7.8 Authentication failed']);
    expect(smtp).toMatchObject({ status: 'fail', code: 'smtp_auth_refused', exitCode: 5, kind: 'mail' });
    expect(smtp.summary).toBe(
      `SMTP AUTH refused for ${USER} (535 5.7.8 Authentication failed); server's reason: the token is invalid or expired; required scope: mail`,
    );
    expect(rep.exitCode).toBe(5);
    const b = await check([`334 ${challenge}`, '535 5.7.8 no'], 'oauthbearer');
    expect(b.lines.filter((l) => l.startsWith('AUTH ')).map((l) => l.slice(0, 17))).toEqual([
      'AUTH OAUTHBEARER ',
    ]);
    expect(b.lines).toContain('AQ==');
    expect(b.smtp.summary).toMatch(/^SMTP AUTH refused .*server's reason: the token is invalid/);
  });

  it('the server hangs up during AUTH: a network failure (exit 6) at once, not a wait', async () => {
    const { smtp } = await check(['CLOSE']);
    expect(smtp).toMatchObject({ status: 'fail', code: 'smtp_network', exitCode: 6 });
    expect(smtp.summary).toMatch(/^the SMTP connection failed during AUTH: /);
    expect(smtp.durationMs).toBeLessThan(4000);
  });
});
