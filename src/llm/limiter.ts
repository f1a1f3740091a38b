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

  run<T>(fn: () => Promise<T>): Promise<T> {
    // A free slot is taken at once: no turn of the event loop for a call that need not wait.
    if (this.running < this.max) {
      this.take();
      return this.runTaken(fn);
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => this.runTaken(fn));
  }

  private async runTaken<T>(fn: () => Promise<T>): Promise<T> {
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
