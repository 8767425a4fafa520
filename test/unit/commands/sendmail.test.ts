/** `oauthmail sendmail`: argv -> options (pure, sendmail's exit codes), and run -> output in-process. */
import { describe, expect, it } from 'vitest';
import { runSendmail, sendmailOptions } from '../../../src/cli/commands/sendmail.js';
import { addMicrosoft, home } from './support.js';

describe('sendmail argv -> options', () => {
  it('-t -i -f, our --no-queue', () => {
    expect(
      sendmailOptions(['-ti', '-f', 'me@example.com', '--no-queue', 'ops@example.com'], { profile: 'w' }),
    ).toEqual({
      profile: 'w',
      help: false,
      queue: false,
      sendmail: {
        extractRecipients: true,
        ignoreDots: true,
        from: 'me@example.com',
        recipients: ['ops@example.com'],
        verbose: false,
      },
    });
    expect(sendmailOptions(['--queue', '-v', 'a@example.com'], {})).toMatchObject({
      queue: true,
      sendmail: { verbose: true },
    });
  });

  it('--help, whatever else is there', () => {
    expect(sendmailOptions(['--help', '-Z'], {}).help).toBe(true);
  });

  it('-f without its value: exit 64 (sysexits EX_USAGE) with the usage line', () => {
    expect(() => sendmailOptions(['-f'], {})).toThrow();
    try {
      sendmailOptions(['-f'], {});
    } catch (e) {
      expect(e).toMatchObject({
        exitCode: 64,
        hint: expect.stringContaining('usage: oauthmail sendmail') as unknown,
      });
    }
  });
});

describe('sendmail run -> output', () => {
  it('no recipient: exit 64 before any sign-in', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const r = await h.run(['sendmail', '-i'], { input: 'Subject: x\n\nbody\n' });
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
  });

  it('an unknown profile: exit 78 (EX_CONFIG), before any connection', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx({ input: 'Subject: x\n\nbody\n' });
    await expect(
      runSendmail(sendmailOptions(['ops@example.com'], { profile: 'nope' }), t.ctx),
    ).rejects.toMatchObject({
      exitCode: 78,
    });
    expect(t.out()).toBe('');
  });

  it('--help through main prints the options and exit codes on stdout', async () => {
    const r = await home().run(['sendmail', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--no-queue');
    expect(r.stdout).toContain('67  unknown recipient');
  });
});
