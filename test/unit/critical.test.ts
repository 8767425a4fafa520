/**
 * util/critical.ts: SIGINT/SIGTERM during a critical section (a refresh and its write) wait for
 * it, then stop the command with exit 130/143; a command's own handler keeps the signal.
 */
import { describe, expect, it } from 'vitest';
import { InterruptedError } from '../../src/errors/index.js';
import { critical, interruptPending } from '../../src/util/critical.js';
import { Interrupt, setActiveInterrupt } from '../../src/util/interrupt.js';

const later = <T>(v: T, ms = 20) => new Promise<T>((r) => setTimeout(() => r(v), ms));

describe('critical', () => {
  it('SIGTERM during the section: the section finishes, then InterruptedError exit 143', async () => {
    let finished = false;
    const p = critical(async () => {
      process.kill(process.pid, 'SIGTERM');
      await later(undefined, 50);
      finished = true;
      return 'written';
    });
    await expect(p).rejects.toMatchObject({ code: 'interrupted', exitCode: 143, signal: 'SIGTERM' });
    expect(finished).toBe(true);
    expect(interruptPending()).toBe(false);
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });

  it('SIGINT: exit 130, also when the section failed', async () => {
    const p = critical(async () => {
      process.kill(process.pid, 'SIGINT');
      await later(undefined, 50);
      throw new Error('provider said no');
    });
    await expect(p).rejects.toBeInstanceOf(InterruptedError);
    await expect(p).rejects.toMatchObject({ exitCode: 130 });
    expect(process.listenerCount('SIGINT')).toBe(0);
  });

  it('nested sections: the signal takes effect when the outer one ends', async () => {
    let innerDone = false;
    const p = critical(async () => {
      await critical(async () => {
        process.kill(process.pid, 'SIGTERM');
        await later(undefined, 50);
        innerDone = true;
      });
      return later('outer');
    });
    await expect(p).rejects.toMatchObject({ exitCode: 143 });
    expect(innerDone).toBe(true);
  });

  it('a command that claimed the signal keeps it: the section returns normally', async () => {
    const it_ = Interrupt.forProcess();
    setActiveInterrupt(it_);
    const claim = it_.claim('stopping');
    try {
      const v = await critical(async () => {
        process.kill(process.pid, 'SIGTERM');
        return later('written', 50);
      });
      expect(v).toBe('written');
      expect(claim.by).toBe('SIGTERM');
      expect(claim.signal.aborted).toBe(true);
    } finally {
      claim.release();
      setActiveInterrupt(undefined);
      it_.dispose();
    }
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });

  it('without a signal: the value, and no listener left behind', async () => {
    expect(await critical(() => later(42))).toBe(42);
    expect(process.listenerCount('SIGINT')).toBe(0);
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });
});

describe('critical beside a handler of its own', () => {
  it('a listener installed by other code keeps the signal: the section returns normally', async () => {
    let seen = 0;
    const own = () => seen++;
    process.on('SIGTERM', own);
    try {
      const v = await critical(async () => {
        process.kill(process.pid, 'SIGTERM');
        return later('written', 50);
      });
      expect(v).toBe('written');
      expect(seen).toBe(1);
    } finally {
      process.off('SIGTERM', own);
    }
  });
});
