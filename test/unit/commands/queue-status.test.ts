/** `oauthmail queue` and `status`: flags -> options (pure), and run -> output in-process. */
import { describe, expect, it } from 'vitest';
import {
  queueDropOptions,
  queueListOptions,
  queueRunOptions,
  queueShowOptions,
  runQueueDrop,
  runQueueList,
  runQueueRun,
  runQueueShow,
} from '../../../src/cli/commands/queue.js';
import { runStatus, statusOptions } from '../../../src/cli/commands/status.js';
import { addMicrosoft, home } from './support.js';

describe('flags -> options', () => {
  it('queue list/show/drop', () => {
    expect(queueListOptions({}, { json: true })).toEqual({ dead: false, json: true });
    expect(queueShowOptions('abc', { dead: true }, {})).toEqual({ id: 'abc', dead: true, json: false });
    expect(queueDropOptions(['a', 'b'], {})).toEqual({ ids: ['a', 'b'], dead: false });
  });

  it('queue run: --max-age as a duration', () => {
    expect(queueRunOptions({ maxAge: '2h', quiet: true }, { profile: 'w' })).toEqual({
      profile: 'w',
      force: false,
      quiet: true,
      maxAgeMs: 7_200_000,
      json: false,
    });
    expect(queueRunOptions({}, {}).maxAgeMs).toBeUndefined();
    expect(() => queueRunOptions({ maxAge: 'soon' }, {})).toThrow(
      '--max-age "soon" is not a duration like 5d, 12h, 30m or 90s',
    );
  });

  it('status', () => {
    expect(statusOptions({}, { verify: true }, { profile: 'g' })).toEqual({ profile: 'g', verify: true });
    expect(statusOptions({ profile: 'w' }, {}, {})).toEqual({ profile: 'w', verify: false });
  });
});

describe('run -> output', () => {
  it('queue list: empty queue, empty dead letters, [] with --json', async () => {
    const h = home();
    const t = h.ctx();
    await runQueueList({ dead: false, json: false }, t.ctx);
    await runQueueList({ dead: true, json: false }, t.ctx);
    expect(t.err()).toBe('The queue is empty.\nNo dead letters.\n');
    const j = h.ctx();
    await runQueueList({ dead: false, json: true }, j.ctx);
    expect(JSON.parse(j.out())).toEqual([]);
  });

  it('queue show / drop of an unknown id: exit 2 with the list command', async () => {
    const h = home();
    await expect(runQueueShow({ id: 'nope', dead: true, json: false }, h.ctx().ctx)).rejects.toMatchObject({
      code: 'queue_not_found',
      exitCode: 2,
      hint: 'list them: oauthmail queue list --dead',
    });
    await expect(runQueueDrop({ ids: ['x1'], dead: false }, h.ctx().ctx)).rejects.toThrow(
      'no such queued message: x1',
    );
  });

  it('queue run of an empty queue: the counts, exit 0', async () => {
    const h = home();
    const t = h.ctx();
    await runQueueRun(queueRunOptions({}, {}), t.ctx);
    expect(t.err()).toBe('queue: 0 delivered, 0 deferred, 0 dead, 0 not due yet\n');
  });

  it('status of a profile never signed in: exit 4 through main, its row on stdout', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const r = await h.run(['status']);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain('work');
    const t = h.ctx();
    await expect(runStatus({ profile: 'work', verify: false }, t.ctx)).rejects.toMatchObject({ exitCode: 4 });
  });
});
