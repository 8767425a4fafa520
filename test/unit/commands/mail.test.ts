/**
 * The IMAP commands (fetch, list, mailboxes, watch): flags -> options (pure, every refusal is a
 * UsageError before any sign-in or connection), and run -> output in-process up to the sign-in.
 * Their output against a real IMAP server is in test/integration (fetch-cli, watch, ...).
 */
import { describe, expect, it } from 'vitest';
import { fetchOptions, runFetch, type FetchFlags } from '../../../src/cli/commands/fetch.js';
import { listOptions } from '../../../src/cli/commands/list.js';
import { mailboxesOptions, runMailboxes } from '../../../src/cli/commands/mailboxes.js';
import { watchOptions, type WatchFlags } from '../../../src/cli/commands/watch.js';
import { addMicrosoft, home } from './support.js';

const fetchBase: FetchFlags = { mailbox: 'INBOX', out: '/tmp/x', format: 'eml', timeout: '60' };

describe('fetch flags -> options', () => {
  it('defaults', () => {
    expect(fetchOptions(fetchBase, { profile: 'w' })).toEqual({
      profile: 'w',
      json: false,
      mailbox: 'INBOX',
      out: '/tmp/x',
      format: 'eml',
      filters: {},
      attachments: undefined,
      markSeen: false,
      moveTo: undefined,
      delete: false,
      batchSize: undefined,
      idleTimeoutSeconds: 60,
      ca: undefined,
      insecureTls: false,
    });
  });

  it('filters, actions and numbers', () => {
    const o = fetchOptions(
      { ...fetchBase, unseen: true, from: 'billing@', limit: '5', batch: '10', timeout: '5', moveTo: 'Done' },
      { json: true },
    );
    expect(o).toMatchObject({
      json: true,
      filters: { unseen: true, from: 'billing@', limit: 5 },
      batchSize: 10,
      idleTimeoutSeconds: 5,
      moveTo: 'Done',
    });
  });

  const bad: Array<[string, Partial<FetchFlags>, string]> = [
    ['--move-to and --delete', { moveTo: 'A', delete: true }, 'give --move-to or --delete, not both'],
    ['--move-to the same mailbox', { moveTo: 'INBOX' }, '--move-to names the mailbox being fetched'],
    ['--batch 0', { batch: '0' }, '--batch must be a whole number from 1 to 100000'],
    ['--batch 2.5', { batch: '2.5' }, '--batch must be a whole number'],
    ['--timeout 0', { timeout: '0' }, '--timeout must be a number of seconds from 1 to 86400'],
    ['--timeout x', { timeout: 'x' }, '--timeout must be a number of seconds'],
    ['--limit 0', { limit: '0' }, '--limit must be a whole number of at least 1'],
    ['--since tomorrowish', { since: 'tomorrowish' }, '--since "tomorrowish": not a date'],
  ];
  it.each(bad)('%s: UsageError', (_n, flags, msg) => {
    expect(() => fetchOptions({ ...fetchBase, ...flags }, {})).toThrow(msg);
  });
});

describe('list and mailboxes flags -> options', () => {
  it('list', () => {
    expect(
      listOptions({ mailbox: 'Archive', since: '2025-01-01', insecureTls: true }, { json: true }),
    ).toMatchObject({
      mailbox: 'Archive',
      json: true,
      insecureTls: true,
      filters: { since: new Date('2025-01-01T00:00:00') },
    });
    expect(() => listOptions({ mailbox: 'INBOX', limit: '-3' }, {})).toThrow('--limit');
  });

  it('mailboxes', () => {
    expect(mailboxesOptions({ ca: 'ca.pem' }, { profile: 'w' })).toEqual({
      profile: 'w',
      json: false,
      ca: 'ca.pem',
      insecureTls: false,
    });
  });
});

describe('watch flags -> options', () => {
  const base: WatchFlags = { mailbox: 'INBOX', format: 'eml', execTries: '3', execRetryWait: '5' };
  it('--exec with retries', () => {
    expect(watchOptions({ ...base, exec: 'cat', execTries: '2', execRetryWait: '0' }, {})).toMatchObject({
      exec: 'cat',
      out: undefined,
      execTries: 2,
      execRetryWaitSeconds: 0,
    });
  });
  const bad: Array<[string, Partial<WatchFlags>, string]> = [
    ['neither', {}, 'give --exec CMD or --out DIR'],
    ['both', { exec: 'cat', out: '/tmp/x' }, 'give --exec CMD or --out DIR, not both'],
    ['--exec-tries 0', { exec: 'cat', execTries: '0' }, '--exec-tries must be a whole number from 1 to 20'],
    ['--exec-tries 21', { exec: 'cat', execTries: '21' }, '--exec-tries'],
    ['--exec-retry-wait -1', { exec: 'cat', execRetryWait: '-1' }, '--exec-retry-wait must be a number'],
    [
      '--failed-folder without --exec',
      { out: '/tmp/x', failedFolder: 'F' },
      '--failed-folder goes with --exec',
    ],
  ];
  it.each(bad)('%s: UsageError', (_n, flags, msg) => {
    expect(() => watchOptions({ ...base, ...flags }, {})).toThrow(msg);
  });
});

describe('run -> output up to the sign-in', () => {
  it('fetch through main: a usage error is exit 2 and nothing on stdout', async () => {
    const r = await home().run(['fetch', '--out', '/tmp/none', '--move-to', 'A', '--delete']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('give --move-to or --delete, not both');
  });

  it('fetch of a profile never signed in: exit 4 with the login command; no folder written', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx();
    await expect(
      runFetch(fetchOptions({ ...fetchBase, out: `${h.dir}/out` }, {}), t.ctx),
    ).rejects.toMatchObject({
      exitCode: 4,
      hint: expect.stringContaining('oauthmail login work') as unknown,
    });
    expect(t.out()).toBe('');
  });

  it('mailboxes without any profile: exit 3 saying how to add one', async () => {
    const t = home().ctx();
    await expect(runMailboxes(mailboxesOptions({}, {}), t.ctx)).rejects.toMatchObject({ exitCode: 3 });
  });

  it('watch through main: --failed-folder with --out is exit 2', async () => {
    const r = await home().run(['watch', '--out', '/tmp/x', '--failed-folder', 'F']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--failed-folder goes with --exec');
  });
});
