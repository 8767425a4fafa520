/** `oauthmail send`: flags -> options (pure), and run -> output in-process (--dry-run, refusals). */
import { describe, expect, it } from 'vitest';
import { runSend, sendOptions, type SendFlags } from '../../../src/cli/commands/send.js';
import { addMicrosoft, home } from './support.js';

describe('send flags -> options', () => {
  it('numbers parsed, the rest as given', () => {
    expect(
      sendOptions(
        {
          timeout: '15',
          batch: 'x.jsonl',
          connections: '3',
          resume: true,
          to: undefined,
        },
        {
          profile: 'w',
          json: true,
        },
      ),
    ).toEqual({
      batch: 'x.jsonl',
      resume: true,
      to: undefined,
      profile: 'w',
      json: true,
      timeoutMs: 15_000,
      connections: 3,
    });
  });

  const bad: Array<[string, SendFlags, string]> = [
    ['--body and --body-file', { body: 'x', bodyFile: 'f' }, 'give --body or --body-file, not both'],
    ['--resume alone', { resume: true }, '--resume needs --batch FILE'],
    ['--batch with --to', { batch: 'f', to: ['a@example.com'] }, '--batch takes recipients from the file'],
    ['--batch with --dry-run', { batch: 'f', dryRun: true }, 'do not combine it with --to or --dry-run'],
    [
      '--connections 0',
      { batch: 'f', connections: '0' },
      '--connections must be a whole number from 1 to 50',
    ],
    ['--connections 51', { batch: 'f', connections: '51' }, '--connections'],
    ['--timeout 0', { timeout: '0' }, '--timeout must be a number of seconds from 1 to 3600'],
    ['--timeout 3601', { timeout: '3601' }, '--timeout'],
  ];
  it.each(bad)('%s: UsageError', (_n, flags, msg) => {
    expect(() => sendOptions(flags, {})).toThrow(msg);
  });
});

describe('send run -> output', () => {
  it('--dry-run: the MIME message on stdout, the envelope on stderr; no sign-in needed', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx();
    await runSend(
      sendOptions(
        { to: ['bob@example.com'], subject: 'Grüße', body: 'hello', dryRun: true },
        { profile: 'work' },
      ),
      t.ctx,
    );
    expect(t.err()).toBe('dry run: would send from alice@contoso.test to bob@example.com\n');
    expect(t.out()).toMatch(/^To: bob@example.com\r?$/m);
    expect(t.out()).toMatch(/^From: alice@contoso.test\r?$/m);
    expect(t.out()).toContain('hello');
  });

  it('--dry-run --json through main: envelope and message', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const r = await h.run(['send', '--json', '--dry-run', '--to', 'bob@example.com', '--body', 'x']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.envelope).toEqual({ from: 'alice@contoso.test', to: ['bob@example.com'] });
    expect(j.message).toContain('Content-Type: text/plain');
  });

  it('no body on a terminal: exit 2 with the --body hint', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx({ tty: true });
    await expect(runSend(sendOptions({ to: ['bob@example.com'] }, {}), t.ctx)).rejects.toMatchObject({
      code: 'no_body',
      exitCode: 2,
      hint: "to send a message without a body on purpose: --body ''",
    });
  });

  it('a body read from stdin when it is not a terminal', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx({ input: 'from the pipe\n' });
    await runSend(sendOptions({ to: ['bob@example.com'], dryRun: true }, {}), t.ctx);
    expect(t.out()).toContain('from the pipe');
  });

  it('--batch with a missing file: exit 2 before any sign-in', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const r = await h.run(['send', '--batch', `${h.dir}/none.jsonl`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--batch ${h.dir}/none.jsonl: no such file`);
  });
});
