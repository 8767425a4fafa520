/**
 * The real CLI (`node bin/oauthmail.js`) signed in with a device code at the fake identity
 * provider, sending through the local Postfix into Dovecot: `send`, `sendmail`, batches with
 * --resume after a kill, and no token in anything printed (also with --verbose).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, cliHome, type CliHome, type CliResult } from '../support/cli.js';
import { installSenderFaults, mailbox, stack, waitForMail, type Stack } from './send-support.js';
import { signInStackProfile } from '../support/signin.js';

const ALICE = 'alice@contoso.test';

let s: Stack;
let h: CliHome;
const transcript: string[] = [];
const secrets = new Set<string>();
const tag = () => `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

async function cli(
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  const r = await h.run(args, opts);
  transcript.push(`$ ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}

beforeAll(async () => {
  s = stack();
  await installSenderFaults(s);
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
  secrets.add(await signInStackProfile(h, s.idpUrl, `${s.smtpHost}:${s.smtpPort}`, { run: cli }));
}, 60_000);

afterAll(() => {
  // no access token (nor its SASL encoding) in anything the CLI printed, --verbose included
  const all = transcript.join('\n');
  for (const sec of secrets) {
    if (!sec) continue;
    expect(all.includes(sec), 'a token leaked into CLI output').toBe(false);
    expect(all.includes(Buffer.from(`user=${ALICE}\x01auth=Bearer ${sec}\x01\x01`).toString('base64'))).toBe(
      false,
    );
  }
  expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
});

describe('oauthmail send', () => {
  it('sends with the cached token: Message-ID on stdout, reply on stderr, delivered', async () => {
    const t = tag();
    const r = await cli([
      'send',
      '-p',
      'work',
      '--to',
      'bob@contoso.test',
      '--cc',
      'shared@contoso.test',
      '-s',
      `cli ${t}`,
      '--body',
      'hello',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^<[^<>\s]+@contoso\.test>$/);
    expect(r.stderr).toMatch(/sent: 250 /);
    expect(await waitForMail(s, 'bob@contoso.test', `cli ${t}`, 1)).toHaveLength(1);
    expect(await waitForMail(s, 'shared@contoso.test', `cli ${t}`, 1)).toHaveLength(1);
  });

  it('--json --verbose: message ID, reply, accepted and rejected; the body from stdin; no token printed', async () => {
    const t = tag();
    const r = await cli(
      [
        'send',
        '--json',
        '--verbose',
        '--to',
        'bob@contoso.test',
        '--bcc',
        'carol@fabrikam.test',
        '-s',
        `json ${t}`,
      ],
      {
        input: `body from stdin ${t}\n`,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.messageId).toMatch(/^<.+>$/);
    expect(j.response).toMatch(/^250 /);
    expect(j.accepted.sort()).toEqual(['bob@contoso.test', 'carol@fabrikam.test']);
    expect(j.rejected).toEqual([]);
    expect(r.stderr).toMatch(/debug: smtp/); // the SMTP dialogue is shown, redacted
    const got = await waitForMail(s, 'carol@fabrikam.test', `json ${t}`, 1);
    expect(got).toHaveLength(1);
    expect(got[0]!.text).toContain(`body from stdin ${t}`);
    expect(got[0]!.text).not.toMatch(/^bcc:/im);
  });

  it('bad input is exit 2 before any connection: bad address, CR/LF in a header value', async () => {
    const a = await cli(['send', '--to', 'not-an-address', '--body', 'x']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/not an email address/);
    const b = await cli([
      'send',
      '--to',
      'bob@contoso.test',
      '-s',
      'hi\r\nBcc: evil@example.com',
      '--body',
      'x',
    ]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/line breaks/);
    const c = await cli([
      'send',
      '--to',
      'bob@contoso.test',
      '--header',
      'X-A: 1\nBcc: evil@example.com',
      '--body',
      'x',
    ]);
    expect(c.code).toBe(2);
    const d = await cli(['send', '--body', 'x']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/no recipients/);
  });

  it('--dry-run prints the MIME message and sends nothing (no Bcc header in it)', async () => {
    const t = tag();
    const r = await cli([
      'send',
      '--dry-run',
      '--to',
      'bob@contoso.test',
      '--bcc',
      'carol@fabrikam.test',
      '-s',
      `Grüße ${t}`,
      '--body',
      'x',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Subject: =\?UTF-8\?/m);
    expect(r.stdout).not.toMatch(/^Bcc:/im);
    expect(r.stderr).toMatch(/carol@fabrikam\.test/);
    await new Promise((x) => setTimeout(x, 500));
    expect(mailbox(s, 'bob@contoso.test').filter((m) => m.text.includes(t))).toHaveLength(0);
  });

  it('a 4xx from Postfix after retries is exit 6', async () => {
    const r = await cli(
      ['send', '--to', 'bob@contoso.test', '--from', 'tempfail@contoso.test', '--body', 'x'],
      {
        // the profile's default policy waits 1 s, 2 s, 4 s; keep the test short with a profile edit
      },
    );
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/451/);
  }, 30_000);

  it('one recipient refused, another accepted: exit 5 naming both (--allow-partial: exit 0 and a warning)', async () => {
    const t = tag();
    const args = ['send', '--to', 'bob@contoso.test', '--to', 'nobody@contoso.test', '-s', t, '--body', 'x'];
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toMatch(/the server refused nobody@contoso\.test; delivered to bob@contoso\.test/);
    expect(r.stderr).toMatch(/do not resend it to them; pass --allow-partial/);
    expect(r.stdout.trim()).toMatch(/^<.+>$/); // the Message-ID of what was delivered
    const ok = await cli([...args, '--allow-partial']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/warning: the server refused nobody@contoso\.test/);
    expect(await waitForMail(s, 'bob@contoso.test', t, 2)).toHaveLength(2);
  });
});

describe('oauthmail sendmail', () => {
  it('-t: recipients from To/Cc/Bcc, Bcc stripped; -i keeps a lone dot; From from the profile', async () => {
    const t = tag();
    const msg = `To: bob@contoso.test\nCc: Shared <shared@contoso.test>\nBcc: carol@fabrikam.test\nSubject: cron ${t}\n\nline 1\n.\nline 3 ${t}\n`;
    const r = await cli(['sendmail', '-t', '-i'], { input: msg });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    for (const who of ['bob@contoso.test', 'shared@contoso.test', 'carol@fabrikam.test']) {
      const got = await waitForMail(s, who, `cron ${t}`, 1);
      expect(got, who).toHaveLength(1);
      expect(got[0]!.text).not.toMatch(/^bcc:/im);
      expect(got[0]!.text).toMatch(/^From: alice@contoso\.test/m);
      expect(got[0]!.text).toContain(`line 3 ${t}`);
      expect(got[0]!.text).toMatch(/\r?\n\.\.?\r?\n/); // the lone dot survived (-i)
    }
  });

  it('without -i a lone dot ends the message; recipients on the command line; -f and -F', async () => {
    const t = tag();
    const r = await cli(['sendmail', '-f', ALICE, '-F', 'Cron Daemon', 'bob@contoso.test'], {
      input: `Subject: dot ${t}\n\nbefore\n.\nafter-the-dot ${t}\n`,
    });
    expect(r.code, r.stderr).toBe(0);
    const got = await waitForMail(s, 'bob@contoso.test', `dot ${t}`, 1);
    expect(got).toHaveLength(1);
    expect(got[0]!.text).toContain('before');
    expect(got[0]!.text).not.toContain(`after-the-dot ${t}`);
    expect(got[0]!.text).toMatch(/^From: "Cron Daemon" <alice@contoso\.test>/m);
    expect(got[0]!.text).toMatch(/^Return-Path: <alice@contoso\.test>/m);
  });

  it('cron style: "From: root (Cron Daemon)" becomes the profile sender; -oi and -p work with OAUTHMAIL_PROFILE unset', async () => {
    const t = tag();
    const r = await cli(['sendmail', '-p', 'work', '-oi', '-t'], {
      input: `From: root (Cron Daemon)\nTo: bob@contoso.test\nSubject: Cron <root@host> ${t}\n\nout\n`,
    });
    expect(r.code, r.stderr).toBe(0);
    const got = await waitForMail(s, 'bob@contoso.test', t, 1);
    expect(got[0]!.text).toMatch(/^From: "Cron Daemon" <alice@contoso\.test>/m);
  });

  it('exit 75 (EX_TEMPFAIL) when Postfix answers 4xx, with --no-queue (without it the message is queued, exit 0)', async () => {
    const r = await cli(['sendmail', '--no-queue', '-f', 'tempfail@contoso.test', 'bob@contoso.test'], {
      input: 'Subject: x\n\nx\n',
      timeoutMs: 40_000,
    });
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/451/);
  }, 45_000);

  it('exit 67 (EX_NOUSER) for an unknown recipient, 69 for a 5xx refusal, 64 for no recipients, 64 for a bad flag', async () => {
    const a = await cli(['sendmail', 'nobody@contoso.test'], { input: 'Subject: x\n\nx\n' });
    expect(a.code, a.stderr).toBe(67);
    const b = await cli(['sendmail', '-f', 'permfail@contoso.test', 'bob@contoso.test'], {
      input: 'Subject: x\n\nx\n',
    });
    expect(b.code, b.stderr).toBe(69);
    const c = await cli(['sendmail', '-t'], { input: 'Subject: x\n\nx\n' });
    expect(c.code, c.stderr).toBe(64);
    const d = await cli(['sendmail', '-Q', 'bob@contoso.test'], { input: 'Subject: x\n\nx\n' });
    expect(d.code, d.stderr).toBe(64);
  });

  it('exit 78 (EX_CONFIG) when the profile does not exist', async () => {
    const r = await cli(['sendmail', 'bob@contoso.test'], {
      input: 'Subject: x\n\nx\n',
      env: { OAUTHMAIL_PROFILE: 'nope' },
    });
    expect(r.code).toBe(78);
  });
});

describe('batches', () => {
  function writeBatch(n: number, t: string): string {
    const file = path.join(h.dir, `batch-${t}.jsonl`);
    const lines = Array.from({ length: n }, (_, i) =>
      JSON.stringify({ to: 'bob@contoso.test', name: `n${i + 1}`, subject: `${t} #${i + 1}` }),
    );
    writeFileSync(file, lines.join('\n') + '\n');
    return file;
  }
  const countLines = (f: string) =>
    existsSync(f)
      ? readFileSync(f, 'utf8')
          .split('\n')
          .filter((l) => l.includes('"sent"')).length
      : 0;

  /** Start a 1,000-line batch, kill it with `signal` once `after` lines are recorded; rerun with --resume. */
  async function killAndResume(signal: NodeJS.Signals, after: number) {
    const t = tag();
    const file = writeBatch(1000, t);
    const results = `${file}.results.jsonl`;
    const child = spawn(process.execPath, [BIN, 'send', '--batch', file, '--body', 'Hello {{name}}'], {
      env: h.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out1 = '';
    child.stdout.on('data', (d: Buffer) => (out1 += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out1 += d.toString()));
    const closed = new Promise<number | null>((r) => child.on('close', r));
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (countLines(results) >= after) {
          clearInterval(timer);
          child.kill(signal);
          resolve();
        }
      }, 5);
      void closed.then(() => {
        clearInterval(timer);
        reject(new Error(`the batch finished before it could be killed: ${out1.slice(-500)}`));
      });
    });
    const code1 = await closed;
    transcript.push(out1);
    const sentBefore = countLines(results);
    expect(sentBefore).toBeGreaterThanOrEqual(after);
    expect(sentBefore).toBeLessThan(1000);

    const again = await cli(['send', '--batch', file, '--body', 'Hello {{name}}']);
    expect(again.code).toBe(2); // refuses to resend without --resume
    expect(again.stderr).toMatch(/--resume/);

    const r = await cli(['send', '--batch', file, '--resume', '--body', 'Hello {{name}}'], {
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr.slice(-1000)).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`${1000 - sentBefore} sent, 0 failed, ${sentBefore} already sent`));
    const perLine = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(perLine).toHaveLength(1000 - sentBefore);
    expect(perLine.every((x) => x.status === 'sent')).toBe(true);

    await waitForMail(s, 'bob@contoso.test', `Subject: ${t} #`, 1000, 60_000);
    await new Promise((x) => setTimeout(x, 1500)); // late duplicates would show up now
    const all = mailbox(s, 'bob@contoso.test').filter((m) => m.text.includes(`Subject: ${t} #`));
    const nums = all.map((m) => Number(new RegExp(`Subject: ${t} #(\\d+)`).exec(m.text)![1]));
    const ids = all.map((m) => /^Message-ID:\s*(\S+)/im.exec(m.text)![1]!);
    expect(new Set(nums).size).toBe(1000); // every line arrived
    expect(new Set(ids).size).toBe(1000); // one stable Message-ID per line, also across the two runs
    expect(all[0]!.text).toMatch(/Hello n\d+/);
    return { code1, delivered: all.length, out1 };
  }

  it('1,000 messages; killed halfway (kill = SIGTERM) and rerun with --resume: every message delivered exactly once', async () => {
    const r = await killAndResume('SIGTERM', 400);
    expect(r.code1).toBe(143); // interrupted by SIGTERM (the shell's 128+15, as fetch): rerun with --resume
    expect(r.out1).toMatch(/stopping: finishing the messages in flight/);
    expect(r.delivered).toBe(1000);
  }, 180_000);

  it('SIGKILL halfway: every message arrives; a duplicate is possible only for messages in flight, with the same Message-ID', async () => {
    const r = await killAndResume('SIGKILL', 500);
    // SMTP has no idempotency: a message the server accepted in the instant before the kill
    // (before its result was fsynced) is sent again. At most the in-flight window (2 × 5).
    expect(r.delivered).toBeGreaterThanOrEqual(1000);
    expect(r.delivered - 1000).toBeLessThanOrEqual(10);
  }, 180_000);

  it('two overlapping `send --batch FILE --resume` runs: one sends, the other refuses (exit 6); 200 lines delivered once', async () => {
    const t = tag();
    const file = writeBatch(200, t);
    const args = ['send', '--batch', file, '--resume', '--body', 'Hello {{name}}'];
    const first = cli(args, { timeoutMs: 120_000 });
    // the second starts once the first is sending (its first results are on disk)
    const results = `${file}.results.jsonl`;
    const end = Date.now() + 60_000;
    while (countLines(results) < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    const second = await cli(args, { timeoutMs: 120_000 });
    const a = await first;
    expect(a.code, a.stderr.slice(-1000)).toBe(0);
    expect(second.code, second.stderr).toBe(6);
    expect(second.stderr).toMatch(/another oauthmail run is sending the batch/);
    expect(second.stderr).toMatch(/--resume/);
    expect(second.stdout).toBe('');
    await waitForMail(s, 'bob@contoso.test', `Subject: ${t} #`, 200, 60_000);
    await new Promise((x) => setTimeout(x, 1500)); // late duplicates would show up now
    const all = mailbox(s, 'bob@contoso.test').filter((m) => m.text.includes(`Subject: ${t} #`));
    expect(all).toHaveLength(200);
    // and a later --resume finds everything sent
    const after = await cli(args);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toMatch(/0 sent, 0 failed, 200 already sent/);
  }, 180_000);

  it('a failed line does not stop the batch; the exit code says so; per-line JSON on stdout', async () => {
    const t = tag();
    const file = path.join(h.dir, `mixed-${t}.jsonl`);
    writeFileSync(
      file,
      [
        JSON.stringify({ to: 'bob@contoso.test', subject: `${t} a` }),
        '{not json',
        JSON.stringify({ to: 'nobody@contoso.test', subject: `${t} b` }),
        JSON.stringify({
          to: 'bob@contoso.test',
          subject: `${t} c`,
          attachments: [{ filename: 'a.txt', content: 'aGVsbG8=', encoding: 'base64' }],
        }),
      ].join('\n'),
    );
    const r = await cli(['send', '--batch', file]);
    expect(r.code).toBe(5);
    const res = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .sort((a, b) => a.line - b.line);
    expect(res.map((x) => x.status)).toEqual(['sent', 'failed', 'failed', 'sent']);
    expect(res[1].error.exitCode).toBe(2);
    expect(res[2].error.exitCode).toBe(5);
    expect(r.stderr).toMatch(/2 sent, 2 failed/);
    // each failed line once, with its number once
    expect(r.stderr).toMatch(/^line 2: not valid JSON$/m);
    expect(r.stderr).not.toMatch(/line \d+: line \d+:/);
    expect(await waitForMail(s, 'bob@contoso.test', `${t} c`, 1)).toHaveLength(1);
  });

  it('a placeholder that some line has no value for is refused before anything is sent (exit 2)', async () => {
    const t = tag();
    const file = path.join(h.dir, `placeholders-${t}.jsonl`);
    writeFileSync(
      file,
      [
        JSON.stringify({ to: 'bob@contoso.test', name: 'Bob', city: 'Oslo' }),
        JSON.stringify({ to: 'bob@contoso.test', name: 'Carol' }),
        JSON.stringify({ to: 'bob@contoso.test', name: 'Dan', subject: `${t} own subject` }),
      ].join('\n'),
    );
    const r = await cli(['send', '--batch', file, '-s', `${t} Hello {{name}} {{city}}`, '--body', 'x']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/\{\{city\}\} in --subject has no value on line 2 of .*; nothing was sent/);
    expect(r.stdout).toBe('');
    // nothing went out: no line recorded as sent
    const results = `${file}.results.jsonl`;
    expect(existsSync(results) ? readFileSync(results, 'utf8') : '').not.toMatch(/"sent"/);
  });
});
