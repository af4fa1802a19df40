import { setTimeout as wait } from 'node:timers/promises';
import type { RateLimiter } from './types.ts';

/** A sliding-window limiter in memory: at most `limit` starts in any `windowMs`. */
export class SlidingWindowLimiter implements RateLimiter {
  private readonly starts: number[] = [];
  private tail: Promise<void> = Promise.resolve();
  private readonly limit: number;
  private readonly windowMs: number;

  constructor(options: { limit: number; windowMs: number }) {
    this.limit = options.limit;
    this.windowMs = options.windowMs;
  }

  acquire(signal?: AbortSignal): Promise<void> {
    // Chained so waiters are served in arrival order.
    const turn = this.tail.then(() => this.take(signal));
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  async used(): Promise<number> {
    this.prune(Date.now());
    return this.starts.length;
  }

  private async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const now = Date.now();
      this.prune(now);
      if (this.starts.length < this.limit) {
        this.starts.push(now);
        return;
      }
      await wait(this.starts[0]! + this.windowMs - now, undefined, signal ? { signal } : undefined);
    }
  }

  private prune(now: number): void {
    while (this.starts.length > 0 && this.starts[0]! <= now - this.windowMs) this.starts.shift();
  }
}
