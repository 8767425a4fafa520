/** Run jobs with at most `maxCount` in flight and a byte budget; rejects on the first error. */
export class Inflight {
  private running = new Set<Promise<void>>();
  private bytes = 0;
  /** The first job's failure (boxed: any value may be thrown). */
  private failure: { error: unknown } | undefined;
  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}
  async add(size: number, fn: () => Promise<void>): Promise<void> {
    while (this.running.size && (this.running.size >= this.maxCount || this.bytes + size > this.maxBytes)) {
      await Promise.race(this.running);
    }
    if (this.failure) throw this.failure.error;
    this.bytes += size;
    const p: Promise<void> = fn()
      .catch((e: unknown) => {
        this.failure ??= { error: e };
      })
      .finally(() => {
        this.bytes -= size;
        this.running.delete(p);
      });
    this.running.add(p);
  }
  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.failure) throw this.failure.error;
  }
}
