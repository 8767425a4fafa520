/** Run jobs with at most `maxCount` in flight and a byte budget; rejects on the first error. */
export class Inflight {
  private running = new Set<Promise<void>>();
  private bytes = 0;
  private error: unknown;
  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}
  async add(size: number, fn: () => Promise<void>): Promise<void> {
    while (this.running.size && (this.running.size >= this.maxCount || this.bytes + size > this.maxBytes)) {
      await Promise.race(this.running);
    }
    if (this.error) throw this.error;
    this.bytes += size;
    const p: Promise<void> = fn()
      .catch((e: unknown) => {
        this.error ??= e;
      })
      .finally(() => {
        this.bytes -= size;
        this.running.delete(p);
      });
    this.running.add(p);
  }
  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.error) throw this.error;
  }
}
