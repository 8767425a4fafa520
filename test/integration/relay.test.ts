/**
 * Issue 17: `oauthmail relay` with real clients nobody here wrote (swaks, Python's smtplib, msmtp),
 * in front of the stack's Postfix (XOAUTH2 with the profile `work`, signed in at a private IdP).
 * Every accepted message arrives in Dovecot with its body byte-identical and no Bcc header; the
 * From is the profile's mailbox (rewritten) unless the device has a Send-As list.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CliHome } from '../support/cli.js';
import { ALICE, type TestIdp } from '../support/signin.js';
import { mailbox, waitForMail, type Stack } from './send-support.js';
import { bodyOf } from './queue-support.js';
import {
  addDevice,
  auth,
  relayLab,
  message,
  REFUSED,
  startRelay,
  swaks,
  tool,
  type RunningRelay,
} from '../support/relay-support.js';

let s: Stack;
let h: CliHome;
let idp: TestIdp;
let relay: RunningRelay;
let scannerPw: string;
let appPw: string;
const BOB = 'bob@contoso.test';
const CAROL = 'carol@fabrikam.test';
const tag = () => `r${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
const starttls = () => relay.ports[0]!;
const implicit = () => relay.ports[1]!;

/** The body as it was sent (CRLF), as Dovecot stores it (LF ends normalised back to CRLF). */
function expectBody(stored: string, sent: string): void {
  // the client ends the data with CRLF before the closing dot (RFC 5321 §4.1.1.4)
  const want = bodyOf(sent) + '\r\n';
  expect(Buffer.from(bodyOf(stored).replace(/\r?\n/g, '\r\n'))).toEqual(Buffer.from(want));
}

function headerOf(text: string, name: string): string | undefined {
  const head = text.slice(0, /\r?\n\r?\n/.exec(text)?.index ?? text.length);
  return new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head)?.[1];
}

beforeAll(async () => {
  ({ s, h, idp } = await relayLab());
  scannerPw = await addDevice(h, 'scanner');
  appPw = await addDevice(h, 'erp', ['--send-as', `${ALICE.upn},shared@contoso.test`, '--max-size', '4000']);
  await addDevice(h, 'printer', ['--allow-from', '127.0.0.2,10.9.8.0/24']);
  relay = await startRelay(h, [
    '--listen',
    '127.0.0.1:0',
    '--listen',
    'tls://127.0.0.1:0',
    '--queue-every',
    '1s',
  ]);
}, 120_000);

afterAll(async () => {
  const r = await relay?.stop();
  await idp?.close();
  if (r) {
    // the passwords never reach the log
    for (const pw of [scannerPw, appPw]) expect(r.stderr).not.toContain(pw);
  }
});

describe('oauthmail relay user', () => {
  it('prints the password once on stdout and keeps only a scrypt hash in relay.json (0600)', async () => {
    const r = await h.run(['-p', 'work', 'relay', 'user', 'add', 'once']);
    expect(r.code, r.stderr).toBe(0);
    const pw = r.stdout.trim();
    expect(pw).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(r.stderr).toMatch(/shown this once/);
    const file = path.join(h.env.OAUTHMAIL_CONFIG_DIR!, 'relay.json');
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(pw);
    expect(JSON.parse(text).users.find((u: { name: string }) => u.name === 'once').hash).toMatch(
      /^scrypt\$16384\$8\$1\$/,
    );
    const { statSync } = await import('node:fs');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const list = await h.run(['relay', 'user', 'list', '--json']);
    expect(list.stdout).not.toMatch(/hash|scrypt/);
    expect(JSON.parse(list.stdout).map((u: { name: string }) => u.name)).toContain('once');
    const dup = await h.run(['relay', 'user', 'add', 'once']);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/exists already/);
    const rm = await h.run(['relay', 'user', 'remove', 'once']);
    expect(rm.code, rm.stderr).toBe(0);
    expect((await h.run(['relay', 'user', 'remove', 'once'])).code).toBe(2);
  });

  it('a port already taken: exit 3 naming the address and the fix', async () => {
    const r = await h.run(['relay', '--listen', `127.0.0.1:${starttls()}`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      new RegExp(
        `cannot listen on 127\\.0\\.0\\.1:${starttls()}: something else listens there \\(EADDRINUSE\\)`,
      ),
    );
    expect(r.stderr).toMatch(/hint: stop it, or give another port with --listen/);
  });

  it('refuses a bad allowlist entry, naming it', async () => {
    const r = await h.run(['relay', 'user', 'add', 'bad', '--allow-from', '10.0.0.0/33']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--allow-from: "10\.0\.0\.0\/33" has a bad prefix length/);
  });
});

describe('real clients through the relay arrive in Dovecot, body byte-identical, no Bcc', () => {
  it('swaks, AUTH LOGIN over STARTTLS: From rewritten to the profile mailbox (display name kept)', async () => {
    const t = tag();
    const msg = message(t);
    const r = await swaks(
      starttls(),
      auth('LOGIN', 'scanner', scannerPw, 'scanner@printers.invalid', BOB),
      msg,
      h.dir,
    );
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/<~ {2}250 2\.0\.0 sent: 250 /);
    const got = await waitForMail(s, BOB, `relay ${t}`, 1);
    expect(got).toHaveLength(1);
    expectBody(got[0]!.text, msg);
    expect(headerOf(got[0]!.text, 'From')).toBe(`"Scanner 2nd floor" <${ALICE.upn}>`);
    expect(headerOf(got[0]!.text, 'Return-Path')).toBe(`<${ALICE.upn}>`);
    expect(relay.stderr()).toMatch(
      new RegExp(
        `relay message device=scanner remote=127\\.0\\.0\\.1 from=${ALICE.upn} to=${BOB} size=\\d+ ms=\\d+ result=sent upstream="250 `,
      ),
    );
  });

  it('swaks, AUTH PLAIN over implicit TLS: a Bcc recipient gets it, no Bcc header anywhere', async () => {
    const t = tag();
    const msg = message(t, { bcc: CAROL });
    const r = await swaks(
      implicit(),
      auth('PLAIN', 'scanner', scannerPw, 'x@printers.invalid', `${BOB},${CAROL}`, 'implicit'),
      msg,
      h.dir,
    );
    expect(r.code, r.out).toBe(0);
    for (const who of [BOB, CAROL]) {
      const got = await waitForMail(s, who, `relay ${t}`, 1);
      expect(got, who).toHaveLength(1);
      expect(got[0]!.text).not.toMatch(/^Bcc:/im);
      expect(got[0]!.text).not.toContain(CAROL.replace('@', '@') + '>'); // only in the envelope
      expectBody(got[0]!.text, msg);
    }
  });

  it("Python's smtplib: starttls, login, sendmail with SIZE", async () => {
    const t = tag();
    const msg = message(t, { body: `python ${t}\r\nline two` });
    const file = path.join(h.dir, `${t}.eml`);
    writeFileSync(file, msg);
    const py = [
      'import smtplib, ssl, sys',
      'ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE',
      `s = smtplib.SMTP("127.0.0.1", ${starttls()}, timeout=30)`,
      's.starttls(context=ctx); s.login("scanner", sys.stdin.readline().strip())',
      `s.sendmail("py@printers.invalid", ["${BOB}"], open("${file}", "rb").read())`,
      'print("SIZE" in str(s.esmtp_features).upper()); s.quit()',
    ].join('\n');
    const r = await tool('python3', ['-c', py], scannerPw + '\n');
    expect(r.code, r.out).toBe(0);
    expect(r.out.trim()).toBe('True');
    const got = await waitForMail(s, BOB, `relay ${t}`, 1);
    expect(got).toHaveLength(1);
    expectBody(got[0]!.text, msg);
  });

  it('msmtp with a password, checking the relay certificate by its printed fingerprint', async () => {
    const t = tag();
    const conf = path.join(h.dir, 'msmtprc');
    writeFileSync(
      conf,
      [
        'account relay',
        'host 127.0.0.1',
        `port ${starttls()}`,
        'tls on',
        'tls_starttls on',
        `tls_fingerprint ${relay.fingerprint}`,
        'auth login',
        'user scanner',
        `passwordeval "cat ${path.join(h.dir, 'scanner.pw')}"`,
        'from msmtp@printers.invalid',
        'account default : relay',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    writeFileSync(path.join(h.dir, 'scanner.pw'), scannerPw + '\n', { mode: 0o600 });
    const msg = message(t, { body: `msmtp ${t}` });
    const r = await tool('msmtp', ['-C', conf, BOB], msg);
    expect(r.code, r.out).toBe(0);
    const got = await waitForMail(s, BOB, `relay ${t}`, 1);
    expect(got).toHaveLength(1);
    expectBody(got[0]!.text, msg);
  });

  it('a printer without AUTH from the allowlisted 127.0.0.2 is relayed; one from 127.0.0.3 is refused at RCPT', async () => {
    const t = tag();
    const msg = message(t, { body: `printer ${t}` });
    const ok = await swaks(
      starttls(),
      ['--local-interface', '127.0.0.2', '--from', 'mfp@printers.invalid', '--to', BOB],
      msg,
      h.dir,
    );
    expect(ok.code, ok.out).toBe(0);
    const got = await waitForMail(s, BOB, `relay ${t}`, 1);
    expect(got).toHaveLength(1);
    expectBody(got[0]!.text, msg);

    const t2 = tag();
    const no = await swaks(
      starttls(),
      ['--local-interface', '127.0.0.3', '--from', 'mfp@printers.invalid', '--to', BOB],
      message(t2),
      h.dir,
    );
    expect(no.code, no.out).not.toBe(0);
    expect(no.out).toMatch(
      new RegExp(String.raw`[-~]> RCPT TO:<bob@contoso\.test>\s+${REFUSED}554 5\.7\.1 relay access denied`),
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(mailbox(s, BOB).filter((m) => m.text.includes(`relay ${t2}`))).toHaveLength(0);
  });

  it('a device with a Send-As list keeps its From; the envelope and From outside the list are refused (550)', async () => {
    const t = tag();
    const msg = message(t, { from: 'Shared <shared@contoso.test>', body: `send-as ${t}` });
    const ok = await swaks(starttls(), auth('PLAIN', 'erp', appPw, 'shared@contoso.test', BOB), msg, h.dir);
    expect(ok.code, ok.out).toBe(0);
    const got = await waitForMail(s, BOB, `relay ${t}`, 1);
    expect(headerOf(got[0]!.text, 'From')).toBe('Shared <shared@contoso.test>');

    const env = await swaks(
      starttls(),
      auth('PLAIN', 'erp', appPw, 'ceo@contoso.test', BOB),
      message(tag()),
      h.dir,
    );
    expect(env.out).toMatch(
      new RegExp(
        String.raw`~> MAIL FROM:<ceo@contoso\.test>\s+${REFUSED}550 5\.7\.1 sender <ceo@contoso\.test> is not in this device's Send-As list`,
      ),
    );
    const t3 = tag();
    const hdr = await swaks(
      starttls(),
      auth('PLAIN', 'erp', appPw, ALICE.upn, BOB),
      message(t3, { from: 'ceo@contoso.test' }),
      h.dir,
    );
    expect(hdr.out).toMatch(
      new RegExp(
        String.raw`${REFUSED}550 5\.7\.1 From ceo@contoso\.test is not in this device's Send-As list`,
      ),
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(mailbox(s, BOB).filter((m) => m.text.includes(`relay ${t3}`))).toHaveLength(0);
  });
});

describe('the certificate', () => {
  it('--tls-cert/--tls-key: clients that verify (swaks with the CA) connect; a key that does not fit is exit 3', async () => {
    const cert = path.join(s.pkiDir, 'server.pem');
    const key = path.join(s.pkiDir, 'server-key.pem');
    const own = await startRelay(h, ['--listen', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key]);
    try {
      expect(own.stderr()).not.toMatch(/self-signed/);
      const t = tag();
      const msg = message(t);
      const r = await swaks(
        own.ports[0]!,
        [
          ...auth('PLAIN', 'scanner', scannerPw, 'a@printers.invalid', BOB),
          '--tls-verify',
          '--tls-ca-path',
          path.join(s.pkiDir, 'ca.pem'),
          '--tls-sni',
          'localhost',
        ],
        msg,
        h.dir,
      );
      expect(r.code, r.out).toBe(0);
      expect(await waitForMail(s, BOB, `relay ${t}`, 1)).toHaveLength(1);
    } finally {
      expect((await own.stop()).code).toBe(0);
    }
    const bad = await h.run([
      'relay',
      '--listen',
      '127.0.0.1:0',
      '--tls-cert',
      cert,
      '--tls-key',
      path.join(s.pkiDir, 'jwt-key.pem'),
    ]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/TLS key .*jwt-key\.pem does not fit the certificate .*server\.pem/);
  });
});

describe('refusals', () => {
  it('a recipient refused upstream while others are taken: 250, the others get it, a dead letter for the refused one', async () => {
    const t = tag();
    const msg = message(t);
    const r = await swaks(
      starttls(),
      auth('LOGIN', 'scanner', scannerPw, 'a@printers.invalid', `${BOB},nobody-else@contoso.test`),
      msg,
      h.dir,
    );
    expect(r.code, r.out).toBe(0);
    expect(await waitForMail(s, BOB, `relay ${t}`, 1)).toHaveLength(1);
    const dead = path.join(h.env.OAUTHMAIL_DATA_DIR!, 'queue', 'dead');
    const files = readdirSync(dead).map((f) => readFileSync(path.join(dead, f)));
    const mine = files.find((b) => b.includes(`relay ${t}`))!;
    expect(mine, 'a dead letter').toBeDefined();
    const meta = JSON.parse(mine.subarray(0, mine.indexOf(0x0a)).toString());
    expect(meta.envelope.to).toEqual(['nobody-else@contoso.test']);
    expect(meta.deadReason).toMatch(/refused nobody-else@contoso\.test/);
    expect(relay.stderr()).toMatch(
      new RegExp(`result=sent upstream="250 [^"]*" rejected=nobody-else@contoso\\.test deadId=${meta.id}`),
    );
    const st = await h.run(['status', 'work']);
    expect(st.code).toBe(5);
  });

  it('a wrong password gets 535, and nothing is sent', async () => {
    const r = await swaks(
      starttls(),
      auth('LOGIN', 'scanner', 'not-the-password', 'a@b.invalid', BOB),
      message(tag()),
      h.dir,
    );
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(new RegExp(String.raw`${REFUSED}535 5\.7\.8 authentication credentials invalid`));
    expect(r.out).not.toMatch(/RCPT TO/);
  });

  it('an oversized message: 552 from SIZE at MAIL (smtplib) and at the end of DATA (swaks)', async () => {
    const big = message(tag(), { body: 'x'.repeat(5000) });
    const file = path.join(h.dir, 'big.eml');
    writeFileSync(file, big);
    const py = [
      'import smtplib, ssl, sys',
      'ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE',
      `s = smtplib.SMTP("127.0.0.1", ${starttls()}, timeout=30)`,
      's.starttls(context=ctx); s.login("erp", sys.stdin.readline().strip())',
      'try:',
      `    s.sendmail("${ALICE.upn}", ["${BOB}"], open("${file}", "rb").read())`,
      'except smtplib.SMTPSenderRefused as e:',
      '    print(e.smtp_code, e.smtp_error.decode())',
    ].join('\n');
    const r = await tool('python3', ['-c', py], appPw + '\n');
    expect(r.out).toMatch(/^552 5\.3\.4 message size \d+ exceeds this device's limit of 4000/);
    const sw = await swaks(starttls(), auth('PLAIN', 'erp', appPw, ALICE.upn, BOB), big, h.dir);
    expect(sw.out).toMatch(
      new RegExp(String.raw`${REFUSED}552 5\.3\.4 message size \d+ exceeds this device's limit of 4000`),
    );
  });

  it("a permanent refusal upstream (unknown recipient) is the device's 5xx, not a 250", async () => {
    const r = await swaks(
      starttls(),
      auth('LOGIN', 'scanner', scannerPw, 'a@printers.invalid', 'nobody-here@contoso.test'),
      message(tag()),
      h.dir,
    );
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(
      new RegExp(String.raw`${REFUSED}5\d\d 5\.\d\.\d upstream refused: .*nobody-here@contoso\.test`),
    );
    expect(relay.stderr()).toMatch(/relay message device=scanner .* result=refused upstream="5\d\d /);
  });
});
