/**
 * util/interrupt.ts: the one SIGINT/SIGTERM rule. Signals are delivered by hand (no process
 * signal), and the hooks record what the process would have done.
 */
import { describe, expect, it } from 'vitest';
import { exitCodeFor, Interrupt } from '../../src/util/interrupt.js';

function make() {
  const did: string[] = [];
  const said: string[] = [];
  const it_ = new Interrupt(
    { exitNow: (c) => did.push(`exit ${c}`), unclaimed: (s) => did.push(`default ${s}`) },
    (l) => said.push(l),
  );
  return { it_, did, said };
}

describe('Interrupt', () => {
  it('exit codes: SIGINT 130, SIGTERM 143', () => {
    expect(exitCodeFor('SIGINT')).toBe(130);
    expect(exitCodeFor('SIGTERM')).toBe(143);
  });

  it('unclaimed and outside a critical section: the default action', () => {
    const { it_, did } = make();
    it_.deliver('SIGTERM');
    expect(did).toEqual(['default SIGTERM']);
    expect(it_.signal.aborted).toBe(false);
  });

  it('claimed: the message, the claim and the run signal aborted; a second signal quits at once', () => {
    const { it_, did, said } = make();
    const c = it_.claim('stopping: saving what has arrived');
    it_.deliver('SIGINT');
    expect(said).toEqual(['stopping: saving what has arrived']);
    expect(c.by).toBe('SIGINT');
    expect(c.signal.aborted).toBe(true);
    expect(it_.signal.aborted).toBe(true);
    expect(did).toEqual([]);
    it_.deliver('SIGTERM');
    expect(did).toEqual(['exit 143']);
    c.release();
  });

  it('released: the default action again', () => {
    const { it_, did } = make();
    it_.claim('x').release();
    it_.deliver('SIGINT');
    expect(did).toEqual(['default SIGINT']);
  });

  it('in a critical section: held, then InterruptedError after the section', async () => {
    const { it_, did } = make();
    const p = it_.critical(() => {
      it_.deliver('SIGINT');
      expect(it_.interruptPending).toBe(true);
      return Promise.resolve(1);
    });
    await expect(p).rejects.toMatchObject({ code: 'interrupted', exitCode: 130 });
    expect(did).toEqual([]);
    expect(it_.interruptPending).toBe(false);
  });

  it('forProcess: handlers on until dispose', () => {
    const before = process.listenerCount('SIGINT');
    const it_ = Interrupt.forProcess();
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    it_.dispose();
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});
