/**
 * Issue 17, the relay's pieces without a network: listener and allowlist parsing, the bad-password
 * guard and the rate limit on a clock of their own, the sender policy on raw bytes, password
 * hashes, relay.json checks, and the command's pure option functions.
 */
import { describe, it, expect } from 'vitest';
import { allowed, parseAllow, parseListen, isLoopbackIp } from '../../src/relay/addresses.js';
import { AuthGuard, RateLimit } from '../../src/relay/guard.js';
import { applySenderPolicy, envelopeSender, SenderRefused } from '../../src/relay/sender.js';
import {
  generatePassword,
  hashPassword,
  verifyPassword,
  VerifiedPasswords,
} from '../../src/relay/password.js';
import { parseRelayConfig } from '../../src/relay/config.js';
import { relayOptions, userSettings } from '../../src/cli/commands/relay.js';

describe('listeners and allowlists', () => {
  it.each([
    ['127.0.0.1:2587', { host: '127.0.0.1', port: 2587, mode: 'starttls' }],
    ['tls://192.168.1.5:465', { host: '192.168.1.5', port: 465, mode: 'tls' }],
    ['smtps://[::1]:0', { host: '::1', port: 0, mode: 'tls' }],
    ['starttls://0.0.0.0:25', { host: '0.0.0.0', port: 25, mode: 'starttls' }],
  ])('%s', (spec, want) => expect(parseListen(spec)).toEqual(want));

  it.each(['localhost:25', '127.0.0.1', '1.2.3.4:70000', 'ftp://1.2.3.4:21'])('refuses %s', (spec) =>
    expect(() => parseListen(spec)).toThrow(/is not ADDR:PORT/),
  );

  it('matches addresses and CIDRs, IPv4-mapped IPv6 included', () => {
    const list = parseAllow(['127.0.0.2', '10.9.8.0/24', 'fd00::/8']);
    expect(allowed(list, '127.0.0.2')).toBe(true);
    expect(allowed(list, '::ffff:127.0.0.2')).toBe(true);
    expect(allowed(list, '127.0.0.3')).toBe(false);
    expect(allowed(list, '10.9.8.200')).toBe(true);
    expect(allowed(list, '10.9.9.1')).toBe(false);
    expect(allowed(list, 'fd12::1')).toBe(true);
    expect(allowed(list, undefined)).toBe(false);
    expect(() => parseAllow(['10.0.0.0/33'])).toThrow(/bad prefix length/);
    expect(() => parseAllow(['printer.local'])).toThrow(/not an IP address/);
    expect(isLoopbackIp('::ffff:127.0.0.9')).toBe(true);
    expect(isLoopbackIp('192.168.1.1')).toBe(false);
  });
});

describe('the bad-password guard and the rate limit', () => {
  it('slows from slowAfter, refuses from lockAfter for lockSeconds, then forgets', () => {
    let now = 1_000_000;
    const g = new AuthGuard({ slowAfter: 3, lockAfter: 5, lockSeconds: 900 }, () => now);
    expect([g.failed('a'), g.failed('a'), g.failed('a'), g.failed('a')]).toEqual([0, 0, 1000, 2000]);
    expect(g.lockedFor('a')).toBe(0);
    g.failed('a');
    expect(g.lockedFor('a')).toBe(900);
    expect(g.lockedFor('b')).toBe(0);
    expect(g.lockedCount()).toBe(1);
    now += 899_000;
    expect(g.lockedFor('a')).toBe(1);
    now += 1_000;
    expect(g.lockedFor('a')).toBe(0);
    expect(g.failed('a')).toBe(0); // the failures before the lock are forgotten with it
  });

  it('a success forgets the failures; old failures age out', () => {
    let now = 0;
    const g = new AuthGuard({ slowAfter: 2, lockAfter: 3, lockSeconds: 60 }, () => now);
    g.failed('a');
    g.succeeded('a');
    expect(g.failed('a')).toBe(0);
    now += 61_000;
    expect(g.failed('a')).toBe(0);
    expect(g.failed('a')).toBe(1000);
  });

  it('rate: perMinute messages in a sliding minute', () => {
    let now = 0;
    const r = new RateLimit(() => now);
    expect([r.take('d', 2), r.take('d', 2), r.take('d', 2), r.take('e', 2)]).toEqual([
      true,
      true,
      false,
      true,
    ]);
    now = 60_001;
    expect(r.take('d', 2)).toBe(true);
  });
});

describe('sender policy', () => {
  const raw = (head: string, body = 'line 1\r\n.\r\nüñí\r\n') => Buffer.from(`${head}\r\n\r\n${body}`);
  const rewrite = { mailbox: 'alice@contoso.test' };
  const sendAs = { mailbox: 'alice@contoso.test', sendAs: ['shared@contoso.test'] };

  it('rewrite: From becomes the mailbox (display name kept), Bcc goes, the body bytes stay', () => {
    const input = raw(
      'From: "Scanner" <scan@printers.invalid>\r\nBcc: carol@fabrikam.test,\r\n dave@x.test\r\nTo: bob@contoso.test',
    );
    const out = applySenderPolicy(rewrite, input);
    expect(out.toString()).toBe(
      'From: "Scanner" <alice@contoso.test>\r\nTo: bob@contoso.test\r\n\r\nline 1\r\n.\r\nüñí\r\n',
    );
    expect(envelopeSender(rewrite, 'scan@printers.invalid')).toBe('alice@contoso.test');
  });

  it('rewrite: a message without From gets one; LF-only messages keep LF', () => {
    expect(applySenderPolicy(rewrite, Buffer.from('Subject: x\n\nbody\n')).toString()).toBe(
      'From: alice@contoso.test\nSubject: x\n\nbody\n',
    );
  });

  it('Send-As: listed addresses and the mailbox pass; others are refused (5.7.1)', () => {
    const ok = raw('From: Shared <SHARED@contoso.test>');
    expect(applySenderPolicy(sendAs, ok)).toEqual(ok);
    expect(envelopeSender(sendAs, 'alice@contoso.test')).toBe('alice@contoso.test');
    expect(() => envelopeSender(sendAs, 'ceo@contoso.test')).toThrow(SenderRefused);
    expect(() => applySenderPolicy(sendAs, raw('From: ceo@contoso.test'))).toThrow(
      /5\.7\.1 From ceo@contoso\.test is not in this device's Send-As list/,
    );
    expect(() => applySenderPolicy(sendAs, raw('From: shared@contoso.test, ceo@contoso.test'))).toThrow(
      SenderRefused,
    );
  });
});

describe('passwords', () => {
  it('generated: 20 letters and digits, different each time', () => {
    const a = generatePassword();
    expect(a).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(generatePassword()).not.toBe(a);
  });

  it('a scrypt hash that verifies the password and nothing else; bad parameters are refused', async () => {
    const h = await hashPassword('correct horse');
    expect(h).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(h).not.toContain('correct');
    expect(await verifyPassword('correct horse', h)).toBe(true);
    expect(await verifyPassword('correct horsf', h)).toBe(false);
    expect(await verifyPassword('correct horse', h.replace('$16384$', '$1073741824$'))).toBe(false);
    expect(await verifyPassword('x', 'plain')).toBe(false);
    const v = new VerifiedPasswords();
    expect(await v.verify('u', 'correct horse', h)).toBe(true);
    expect(await v.verify('u', 'correct horse', h)).toBe(true);
    expect(await v.verify('u', 'wrong', h)).toBe(false);
    const h2 = await hashPassword('new one');
    expect(await v.verify('u', 'correct horse', h2)).toBe(false); // a new hash forgets the old password
  });
});

describe('relay.json', () => {
  const hash = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  it('is checked field by field, naming the file and the field', () => {
    const f = '/x/relay.json';
    const ok = {
      version: 1,
      users: [{ name: 'scanner', hash, createdAt: 'now', allowFrom: ['10.0.0.0/8'] }],
    };
    expect(parseRelayConfig(JSON.stringify(ok), f).users[0]!.name).toBe('scanner');
    const bad = (c: unknown) => () => parseRelayConfig(JSON.stringify(c), f);
    expect(bad({ ...ok, version: 2 })).toThrow(/cannot read \/x\/relay\.json: version must be 1/);
    expect(bad({ version: 1, users: [{ ...ok.users[0], hash: 'secret' }] })).toThrow(
      /users\[0\]\.hash is not a scrypt hash/,
    );
    expect(bad({ version: 1, users: [{ ...ok.users[0], allowFrom: ['x'] }] })).toThrow(
      /users\[0\]\.allowFrom/,
    );
    expect(bad({ version: 1, users: [ok.users[0], { ...ok.users[0], name: 'SCANNER' }] })).toThrow(
      /appears twice/,
    );
    expect(bad({ version: 1, users: [{ ...ok.users[0], sendAs: ['nope'] }] })).toThrow(/sendAs/);
    expect(() => parseRelayConfig('{"version":1,', f)).toThrow(/cannot read \/x\/relay\.json/);
  });
});

describe('relay options (pure)', () => {
  it('flags become options; bad ones are usage errors', async () => {
    const o = await relayOptions(
      { listen: ['127.0.0.1:2525', 'tls://127.0.0.1:4650'], queueEvery: '5s', metrics: '127.0.0.1:9100' },
      { profile: 'work', json: true },
    );
    expect(o).toEqual({
      listen: [
        { host: '127.0.0.1', port: 2525, mode: 'starttls' },
        { host: '127.0.0.1', port: 4650, mode: 'tls' },
      ],
      metrics: '127.0.0.1:9100',
      queueEverySeconds: 5,
      profile: 'work',
      json: true,
    });
    await expect(relayOptions({ tlsCert: 'c.pem' }, {})).rejects.toThrow(
      /--tls-cert and --tls-key go together/,
    );
    await expect(relayOptions({ listen: ['nowhere'] }, {})).rejects.toMatchObject({ exitCode: 2 });
  });

  it('user settings: lists, sizes, rates', () => {
    expect(
      userSettings(
        { allowFrom: '127.0.0.2, 10.0.0.0/8', sendAs: 'a@b.test', maxSize: '25m', rate: '30' },
        { profile: 'work' },
      ),
    ).toEqual({
      profile: 'work',
      allowFrom: ['127.0.0.2', '10.0.0.0/8'],
      sendAs: ['a@b.test'],
      maxSize: 25 * 1048576,
      ratePerMinute: 30,
    });
    expect(() => userSettings({ rate: '0' }, {})).toThrow(/--rate "0" is not a positive number/);
  });
});
