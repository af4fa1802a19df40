import { AbortedError } from './errors.ts';

/** Waits `ms`; rejects when `signal` aborts. Injected so hosts that forbid their own timers (n8n) supply theirs. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/**
 * Where the starts of an account are counted. The default counts this process's starts; a shared one
 * (see `RedisStartWindow`) lets several processes or machines on one key keep one pace.
 */
export interface StartWindow {
  /** Counts a start and returns 0 when the window has room; otherwise the ms to wait before asking again. */
  tryStart(now: number): number | Promise<number>;
  /** Tells every user of the window to hold starts until `time` (ms since epoch); best effort. */
  pauseUntil?(time: number): void | Promise<void>;
}

/**
 * How far past the window a start still counts: the server counts arrivals, and a request that left
 * early can arrive late on a busy machine or network.
 */
export function windowSpan(windowMs: number): number {
  return windowMs + Math.max(windowMs * 0.02, 250);
}

/** Counts starts in this process: a sliding log of the last window's start times. */
export class LocalStartWindow implements StartWindow {
  private readonly starts: number[] = [];
  private readonly limit: number;
  private readonly span: number;

  constructor(requestsPerMinute: number, windowMs: number) {
    this.limit = requestsPerMinute;
    this.span = windowSpan(windowMs);
  }

  tryStart(now: number): number {
    if (this.limit === Infinity) return 0;
    while (this.starts.length > 0 && (this.starts[0] as number) <= now - this.span) this.starts.shift();
    if (this.starts.length < this.limit) {
      this.starts.push(now);
      return 0;
    }
    return (this.starts[0] as number) + this.span - now;
  }
}

export interface LimiterOptions {
  /** Requests that may start in any window. @default Infinity (no limit) */
  requestsPerMinute?: number;
  /** Requests under way at once. @default 4 */
  maxInFlight?: number;
  /** The window `requestsPerMinute` counts over, in ms (tests shorten it). @default 60000 */
  windowMs?: number;
  /**
   * Where starts are counted, when not in this process alone: e.g. a `RedisStartWindow` shared by
   * every process on the account. It counts `requestsPerMinute` itself.
   */
  window?: StartWindow;
  sleep: Sleep;
  now?: () => number;
}

/** `promise`, or an {@link AbortedError} as soon as `signal` aborts, whichever comes first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new AbortedError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Bounds requests per window and requests in flight, first come first served. One limiter is shared
 * by every call through a client, so a batch paced for the plan never draws a 429.
 */
export class RequestLimiter {
  readonly requestsPerMinute: number;
  readonly maxInFlight: number;
  readonly windowMs: number;
  private readonly sleep: Sleep;
  private readonly now: () => number;
  private readonly window: StartWindow;
  private readonly waiters: Waiter[] = [];
  private running = 0;
  private windowTurn: Promise<void> = Promise.resolve();
  private pausedUntil = 0;

  constructor(options: LimiterOptions) {
    this.requestsPerMinute = options.requestsPerMinute ?? Infinity;
    this.maxInFlight = options.maxInFlight ?? 4;
    this.windowMs = options.windowMs ?? 60_000;
    this.sleep = options.sleep;
    this.now = options.now ?? Date.now;
    if (!(this.requestsPerMinute > 0)) throw new RangeError('requestsPerMinute must be above 0');
    if (!(this.maxInFlight >= 1)) throw new RangeError('maxInFlight must be at least 1');
    this.window = options.window ?? new LocalStartWindow(this.requestsPerMinute, this.windowMs);
  }

  /** Requests running now. */
  get inFlight(): number {
    return this.running;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiters.length;
  }

  /** Holds every request until `time` (ms since epoch), e.g. when the API said its limit resets then. */
  pauseUntil(time: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, time);
    // Shared windows pass it on, so other processes stop too; if that fails this one still waits.
    void Promise.resolve()
      .then(() => this.window.pauseUntil?.(time))
      .catch(() => undefined);
  }

  /**
   * Runs `task` once a slot and the rate allow it. Aborting while queued rejects with {@link AbortedError}.
   * `first` puts it at the front of the line: a retry continues a call already under way, so it does not
   * wait behind a batch that arrived after it.
   */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal, options: { first?: boolean } = {}): Promise<T> {
    await this.acquireSlot(signal, options.first === true);
    try {
      const turn = this.windowTurn.then(() => this.waitForWindow(signal));
      this.windowTurn = turn.catch(() => undefined);
      // The turn stays in the chain (it ends at once when its time comes); the caller stops waiting now.
      await untilAborted(turn, signal);
      return await task();
    } finally {
      this.releaseSlot();
    }
  }

  private acquireSlot(signal: AbortSignal | undefined, first: boolean): Promise<void> {
    if (signal?.aborted) return Promise.reject(new AbortedError());
    if (this.running < this.maxInFlight) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new AbortedError());
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject,
      };
      if (first) this.waiters.unshift(waiter);
      else this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private releaseSlot(): void {
    const next = this.waiters.shift();
    // The slot passes straight to the next waiter, so the count stays as it is.
    if (next) next.resolve();
    else this.running--;
  }

  private async waitForWindow(signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (signal?.aborted) throw new AbortedError();
      const now = this.now();
      if (now < this.pausedUntil) {
        await this.pause(this.pausedUntil - now, signal);
        continue;
      }
      const wait = await this.window.tryStart(now);
      if (wait <= 0) return;
      await this.pause(wait, signal);
    }
  }

  private async pause(ms: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.sleep(Math.max(1, ms), signal);
    } catch (error) {
      if (signal?.aborted) throw new AbortedError();
      throw error;
    }
  }
}
