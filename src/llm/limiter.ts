/**
 * A small async semaphore: at most `max` calls of `run` execute at once, the rest wait in FIFO
 * order. One per agent keeps a provider's concurrent-request limit from turning into 429s.
 */
export class Limiter {
  private readonly max: number;
  private running = 0;
  private highWater = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`Limiter: max must be an integer ≥ 1, got ${max}`);
    this.max = max;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** Calls executing right now. */
  get active(): number {
    return this.running;
  }

  /** The most calls that ever executed at once. */
  get peak(): number {
    return this.highWater;
  }

  /** Calls waiting for a slot. */
  get pending(): number {
    return this.waiting.length;
  }

  private acquire(): Promise<void> {
    if (this.running < this.max) {
      this.take();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private take(): void {
    this.running++;
    if (this.running > this.highWater) this.highWater = this.running;
  }

  private release(): void {
    this.running--;
    const next = this.waiting.shift();
    if (next) {
      // The slot passes straight to the next waiter so that a newcomer cannot jump the queue.
      this.take();
      next();
    }
  }
}
