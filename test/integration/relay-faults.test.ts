/**
 * Issue 17, the relay when things go wrong and while it runs: the mail server down and a sign-in
 * revoked (250 only once the message is in the queue; the relay delivers it itself once the fault
 * is gone, exactly once), bad passwords slowed and then refused, AUTH in clear text on a LAN
 * address, a rate limit, SIGHUP reloads, --json log lines, /metrics, and a graceful SIGTERM.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CliHome } from '../support/cli.js';
import { ALICE, type TestIdp } from '../support/signin.js';
import { mailbox, waitForMail, type Stack } from './send-support.js';
import { bodyOf, signInWork, smtpDown, smtpUp } from './queue-support.js';
import * as R from '../support/relay-support.js';

const { addDevice, auth, message, REFUSED, startRelay, swaks, tool } = R;
let s: Stack, h: CliHome, idp: TestIdp, relay: R.RunningRelay;
let pw: string;
let metricsUrl: string;
const BOB = 'bob@contoso.test';
const tag = () => `f${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

/** A non-loopback IPv4 address of this machine (a LAN address, as a relay for printers has). */
function lanAddress(): string {
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  throw new Error('this machine has no non-loopback IPv4 address: the clear-text AUTH test needs one');
}
const LAN = lanAddress();

function queueFiles(): string[] {
  try {
    return readdirSync(path.join(h.env.OAUTHMAIL_DATA_DIR!, 'queue')).filter((f) => f.endsWith('.msg'));
  } catch {
    return [];
  }
}

/** JSON log lines of the relay (stdout with --json). */
function events(kind?: string): Array<Record<string, unknown>> {
  return relay
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => !kind || e.event === kind);
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${relay.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function hup(): Promise<void> {
  const before = events('reloaded').length;
  relay.signal('SIGHUP');
  await until('the reload', () => events('reloaded').length > before);
}

const send = (t: string, extra: string[] = [], user = 'scanner', pass = () => pw) =>
  swaks(
    relay.ports[0]!,
    [...auth('LOGIN', user, pass(), 'dev@printers.invalid', BOB), ...extra],
    message(t),
    h.dir,
  );

beforeAll(async () => {
  ({ s, h, idp } = await R.relayLab());
  pw = await addDevice(h, 'scanner');
  await addDevice(h, 'burst', ['--rate', '2', '--allow-from', '127.0.0.5']);
  // bad passwords: slowed from the 3rd, refused from the 4th (for 10 minutes)
  const file = path.join(h.env.OAUTHMAIL_CONFIG_DIR!, 'relay.json');
  const c = JSON.parse(readFileSync(file, 'utf8'));
  c.auth = { slowAfter: 3, lockAfter: 4, lockSeconds: 600 };
  writeFileSync(file, JSON.stringify(c));
  relay = await startRelay(
    h,
    ['--listen', '127.0.0.1:0', '--listen', `${LAN}:0`, '--queue-every', '1s', '--metrics', '127.0.0.1:0'],
    ['--json'],
  );
  metricsUrl = String(events('ready')[0]!.metrics);
}, 120_000);

afterAll(async () => {
  await idp?.close();
  // for a failure's diagnosis: what the relay logged
  writeFileSync(path.join(h.dir, 'relay-log.txt'), relay.stdout() + relay.stderr());
  console.log(`relay log: ${path.join(h.dir, 'relay-log.txt')}`);
});

describe('no message lost', () => {
  it('mail server down: 250 only once queued (fsynced file), then the relay delivers it itself, once', async () => {
    const t = tag();
    await smtpDown(h, 'work');
    try {
      await hup();
      const r = await send(t);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(
        /<~ {2}250 2\.0\.0 queued as [0-9a-z]{9}-[0-9a-f]{12}: the mail server will get it later/,
      );
      const id = /queued as (\S+):/.exec(r.out)![1]!;
      expect(queueFiles()).toContain(`${id}.msg`);
      const raw = readFileSync(path.join(h.env.OAUTHMAIL_DATA_DIR!, 'queue', `${id}.msg`));
      const meta = JSON.parse(raw.subarray(0, raw.indexOf(0x0a)).toString());
      expect(meta.envelope).toEqual({ from: ALICE.upn, to: [BOB] });
      const st = await h.run(['status', 'work']);
      expect(st.stdout).toMatch(/queue\s+1 waiting/);
      const m = events('message').find((e) => e.queueId === id)!;
      expect(m).toMatchObject({ device: 'scanner', result: 'queued', from: ALICE.upn, to: [BOB] });
      expect(m.upstream).toMatch(/ECONNREFUSED|connect|not available/i);
    } finally {
      await smtpUp(h, 'work', s);
    }
    await hup();
    const got = await waitForMail(s, BOB, `relay ${t}`, 1);
    expect(got).toHaveLength(1);
    expect(Buffer.from(bodyOf(got[0]!.text).replace(/\r?\n/g, '\r\n'))).toEqual(
      Buffer.from(bodyOf(message(t)) + '\r\n'),
    );
    await until('the queue to empty', () => queueFiles().length === 0);
    expect(events('queue-delivered').length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1500));
    expect(mailbox(s, BOB).filter((x) => x.text.includes(`relay ${t}`))).toHaveLength(1);
  }, 90_000);

  it('sign-in revoked: queued (status says why), delivered by the relay, once', async () => {
    const t = tag();
    expect((await idp.admin('revoke-refresh-tokens', { user: ALICE.upn })).status).toBe(200);
    const r = await send(t);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/250 2\.0\.0 queued as /);
    const id = /queued as (\S+):/.exec(r.out)![1]!;
    expect(events('message').find((e) => e.queueId === id)).toMatchObject({
      result: 'queued',
      device: 'scanner',
    });
    // status names the cause and the fix (the queue line is checked in the test above: here the
    // relay's queue may already have sent it with an access token that is still valid)
    const st = await h.run(['status', 'work']);
    expect(st.code).toBe(4);
    expect(st.stdout).toMatch(/run oauthmail login work/);
    await signInWork(h, idp);
    const got = await waitForMail(s, BOB, `relay ${t}`, 1, 30_000);
    expect(got).toHaveLength(1);
    await until('the queue to empty', () => queueFiles().length === 0);
    await new Promise((r2) => setTimeout(r2, 1500));
    expect(mailbox(s, BOB).filter((x) => x.text.includes(`relay ${t}`))).toHaveLength(1);
  }, 90_000);
});

describe('who may send', () => {
  it('bad passwords from one address are slowed (3rd), then refused (454) even with the right one', async () => {
    const py = [
      'import smtplib, sys, time',
      `s = smtplib.SMTP("127.0.0.1", ${relay.ports[0]}, timeout=60, source_address=("127.0.0.4", 0))`,
      'good = sys.stdin.readline().strip(); s.ehlo()',
      'for p in ["bad1", "bad2", "bad3", "bad4", good]:',
      '    t = time.monotonic()',
      '    try:',
      '        s.user, s.password = "scanner", p',
      '        s.auth("PLAIN", s.auth_plain); print("ok", 0)',
      '    except smtplib.SMTPAuthenticationError as e:',
      '        print(e.smtp_code, round((time.monotonic() - t) * 1000), e.smtp_error.decode())',
    ].join('\n');
    const r = await tool('python3', ['-c', py], pw + '\n');
    const rows = r.out
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    expect(
      rows.map((x) => x[0]),
      r.out,
    ).toEqual(['535', '535', '535', '535', '454']);
    // the 3rd answer waits 1 s, the 4th 2 s (on top of the scrypt check, which the first two take)
    const ms = rows.map((x) => Number(x[1]));
    expect(ms[2]).toBeGreaterThanOrEqual(1000);
    expect(ms[3]).toBeGreaterThanOrEqual(2000);
    expect(ms[0]).toBeLessThan(ms[3]! - 1000);
    expect(r.out).toMatch(/454 \d+ 4\.7\.0 too many bad passwords from 127\.0\.0\.4; try again in \d+ s/);
    // another address is not affected
    const t = tag();
    expect((await send(t)).code).toBe(0);
    expect(await waitForMail(s, BOB, `relay ${t}`, 1)).toHaveLength(1);
  });

  it('AUTH before STARTTLS on a LAN address is refused (538); after STARTTLS it works', async () => {
    const lan = ['--server', LAN, '--port', String(relay.ports[1]), '--timeout', '30'];
    const plain = await tool('swaks', [
      ...lan,
      ...auth('PLAIN', 'scanner', pw, 'a@printers.invalid', BOB, 'none'),
    ]);
    expect(plain.code).not.toBe(0);
    expect(plain.out).toMatch(
      new RegExp(String.raw`${REFUSED}538 Error: Must issue a STARTTLS command first`),
    );
    expect(plain.out).not.toMatch(/235 /);
    const t = tag();
    const f = path.join(h.dir, `${t}.eml`);
    writeFileSync(f, message(t));
    const tls = await tool('swaks', [
      ...lan,
      ...auth('PLAIN', 'scanner', pw, 'a@printers.invalid', BOB),
      '--data',
      `@${f}`,
    ]);
    expect(tls.code, tls.out).toBe(0);
    expect(await waitForMail(s, BOB, `relay ${t}`, 1)).toHaveLength(1);
  });

  it('a device over its rate gets 450 at MAIL (it keeps the message and tries later)', async () => {
    const py = [
      'import smtplib',
      `s = smtplib.SMTP("127.0.0.1", ${relay.ports[0]}, timeout=60, source_address=("127.0.0.5", 0))`,
      'for i in range(3):',
      '    try:',
      `        s.sendmail("mfp@printers.invalid", ["${BOB}"], b"Subject: rate %d\\r\\n\\r\\nrate\\r\\n" % i); print("ok")`,
      '    except smtplib.SMTPSenderRefused as e:',
      '        print(e.smtp_code, e.smtp_error.decode())',
    ].join('\n');
    const r = await tool('python3', ['-c', py]);
    expect(r.out.trim().split('\n'), r.out).toEqual([
      'ok',
      'ok',
      '450 4.7.0 more than 2 messages a minute; try again later',
    ]);
  });

  it('SIGHUP reloads the devices: one added while running can send, one removed cannot', async () => {
    const late = await addDevice(h, 'late');
    const before = await send(tag(), [], 'late', () => late);
    expect(before.out).toMatch(new RegExp(String.raw`${REFUSED}535 `));
    await hup();
    const t = tag();
    const after = await send(t, [], 'late', () => late);
    expect(after.code, after.out).toBe(0);
    expect(await waitForMail(s, BOB, `relay ${t}`, 1)).toHaveLength(1);
    expect((await h.run(['relay', 'user', 'remove', 'late'])).code).toBe(0);
    await hup();
    expect((await send(tag(), [], 'late', () => late)).out).toMatch(new RegExp(String.raw`${REFUSED}535 `));
  });
});

describe('running it', () => {
  it('--json: a ready line and one line per message (device, from, to, size, upstream reply, time)', () => {
    const ready = events('ready')[0]!;
    expect(ready.listen).toEqual([`127.0.0.1:${relay.ports[0]}`, `${LAN}:${relay.ports[1]}`]);
    expect(ready.certificate).toBe(relay.fingerprint);
    const sent = events('message').filter((e) => e.result === 'sent');
    expect(sent.length).toBeGreaterThan(0);
    for (const e of sent) {
      expect(Object.keys(e).sort()).toEqual(
        ['device', 'event', 'from', 'ms', 'remote', 'result', 'size', 'time', 'to', 'upstream'].sort(),
      );
      expect(e.upstream).toMatch(/^250 /);
      expect(typeof e.ms).toBe('number');
    }
    expect(relay.stdout()).not.toContain(pw);
  });

  it('/metrics on loopback: messages in, out, queued, refused, upstream latency', async () => {
    const text = await (await fetch(metricsUrl)).text();
    expect(text).toMatch(/^oauthmail_relay_messages_in_total [1-9]\d*$/m);
    expect(text).toMatch(/^oauthmail_relay_messages_out_total\{path="live"\} [1-9]\d*$/m);
    expect(text).toMatch(/^oauthmail_relay_messages_out_total\{path="queue"\} [1-9]\d*$/m);
    expect(text).toMatch(/^oauthmail_relay_messages_queued_total [1-9]\d*$/m);
    expect(text).toMatch(/^oauthmail_relay_refused_total\{reason="auth"\} [1-9]\d*$/m);
    expect(text).toMatch(/^oauthmail_relay_refused_total\{reason="rate"\} 1$/m);
    expect(text).toMatch(/^oauthmail_relay_upstream_seconds_count [1-9]\d*$/m);
    expect(text).toMatch(/^oauthmail_relay_queue_waiting 0$/m);
    expect(text).toMatch(/^oauthmail_relay_locked_addresses 1$/m);
    expect(await (await fetch(metricsUrl.replace('/metrics', '/health'))).text()).toBe('ok\n');
  });

  it('SIGTERM: listeners closed, exit 0, a stopped line', async () => {
    const r = await relay.stop();
    expect(r.code, r.stderr).toBe(0);
    expect(events('stopped')).toHaveLength(1);
    const again = await swaks(relay.ports[0]!, ['--quit-after', 'CONNECT']);
    expect(again.out).toMatch(/Connection refused/);
  });
});
