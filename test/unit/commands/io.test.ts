/** Io.System() and Io.Test() (gh's iostreams), and Context.forTest's interrupt. */
import { describe, expect, it } from 'vitest';
import { Context } from '../../../src/cli/context.js';
import { Io } from '../../../src/cli/io.js';

describe('Io.Test', () => {
  it('memory streams: data on stdout, talk on stderr (redacted), stdin as given', async () => {
    const t = Io.Test({ stdin: 'piped text', env: {} });
    t.io.out('data');
    t.io.err('Authorization: Bearer abcdefghijklmnop');
    expect(t.out()).toBe('data\n');
    expect(t.err()).toBe('Authorization: Bearer [REDACTED]\n');
    expect(await t.io.readStdin()).toBe('piped text');
    expect(t.io.interactive).toBe(false);
    expect(t.io.stderrIsTTY).toBe(false);
  });

  it('tty: interactive unless CI is set or --no-input', () => {
    expect(Io.Test({ tty: true, env: {} }).io.interactive).toBe(true);
    expect(Io.Test({ tty: true, env: { CI: 'true' } }).io.interactive).toBe(false);
    expect(Io.Test({ tty: true, env: { CI: 'false' } }).io.interactive).toBe(true);
    const t = Io.Test({ tty: true, env: {} });
    t.io.noInput = true;
    expect(t.io.interactive).toBe(false);
    expect(Io.Test({ tty: true, env: {} }).io.stderrIsTTY).toBe(true);
  });

  it('a prompt on a test terminal reads the answer from stdin', async () => {
    const t = Io.Test({ tty: true, stdin: 'alice\n', env: {} });
    expect(await t.io.prompt('Name', 'bob')).toBe('alice');
    expect(t.err()).toContain('Name [bob]: ');
  });

  it('System: the process streams and environment', () => {
    const io = Io.System();
    expect(io.stdout).toBe(process.stdout);
    expect(io.stderr).toBe(process.stderr);
    expect(io.env).toBe(process.env);
  });
});

describe('Context.forTest', () => {
  it('a signal delivered by hand: the default action when nothing claims it; a claim gets its AbortSignal', () => {
    const t = Context.forTest({
      OAUTHMAIL_CONFIG_DIR: '/nonexistent/c',
      OAUTHMAIL_DATA_DIR: '/nonexistent/d',
    });
    t.ctx.interrupt.deliver('SIGINT');
    expect(t.interruptActions).toEqual(['default SIGINT']);
    const c = t.ctx.interrupt.claim('stopping');
    t.ctx.interrupt.deliver('SIGTERM');
    expect(c.signal.aborted).toBe(true);
    expect(t.ctx.signal.aborted).toBe(true);
    expect(t.err()).toBe('stopping\n');
    c.release();
  });

  it('the clock is injectable', () => {
    const t = Context.forTest({}, { clock: { now: () => 42 } });
    expect(t.ctx.clock.now()).toBe(42);
  });
});
