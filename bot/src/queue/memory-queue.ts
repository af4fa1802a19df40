import type {
  EnqueueResult,
  JobQueue,
  LineAhead,
  QueueStats,
  QueueTicket,
  QueueWorker,
  RateLimiter,
} from './types.ts';

/**
 * A FIFO queue in this process. Jobs start in order while their images fit `imageCapacity` (a job
 * larger than the capacity runs alone), and every start is paced by the rate limiter.
 */
export class MemoryJobQueue implements JobQueue {
  readonly shared = false;
  private readonly waiting: QueueTicket[] = [];
  private readonly running = new Map<string, QueueTicket>();
  /** When each running job left the line, for the start estimates of the jobs behind. */
  private readonly startedAt = new Map<string, number>();
  /** Jobs out of line but still waiting for the rate limiter; aborting one stops it before it starts. */
  private readonly starting = new Map<string, AbortController>();
  /** Position edits in flight (`whileWaiting`): the job's worker is not called before they settle. */
  private readonly edits = new Map<string, Promise<void>>();
  private readonly imageCapacity: number;
  private runningImages = 0;
  private readonly limiter: RateLimiter;
  private worker: QueueWorker | undefined;
  private onMoved: (moved: { jobId: string; position: number }[]) => void = () => {};
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(options: { imageCapacity: number; limiter: RateLimiter }) {
    this.imageCapacity = options.imageCapacity;
    this.limiter = options.limiter;
  }

  async enqueue(ticket: QueueTicket, limits: { perUserLimit: number }): Promise<EnqueueResult> {
    if (this.stopped) return { accepted: false, reason: 'closed' };
    const userJobs = this.countFor(ticket.userId);
    if (userJobs >= limits.perUserLimit) return { accepted: false, reason: 'user_limit', userJobs };
    this.waiting.push(ticket);
    this.pump();
    const index = this.waiting.indexOf(ticket);
    return { accepted: true, position: index === -1 ? 0 : index + 1 };
  }

  async userJobs(userId: string): Promise<number> {
    return this.countFor(userId);
  }

  available(): boolean {
    return true;
  }

  async close(): Promise<void> {}

  async cancel(jobId: string): Promise<boolean> {
    const pending = this.starting.get(jobId);
    if (pending) {
      this.starting.delete(jobId);
      pending.abort();
      return true;
    }
    const index = this.waiting.findIndex((ticket) => ticket.jobId === jobId);
    if (index === -1) return false;
    this.waiting.splice(index, 1);
    this.announce(index);
    return true;
  }

  async editsSettled(jobId: string): Promise<void> {
    await this.edits.get(jobId)?.catch(() => undefined);
  }

  async whileWaiting(jobId: string, show: () => Promise<void>): Promise<boolean> {
    // Waiting: in line, or out of it but still waiting for the pace (its worker not yet called).
    if (!this.starting.has(jobId) && !this.waiting.some((ticket) => ticket.jobId === jobId)) return false;
    const before = this.edits.get(jobId);
    const edit = Promise.resolve(before)
      .then(show)
      .catch(() => undefined);
    this.edits.set(jobId, edit);
    await edit;
    if (this.edits.get(jobId) === edit) this.edits.delete(jobId);
    return true;
  }

  async position(jobId: string): Promise<number | undefined> {
    if (this.running.has(jobId)) return 0;
    const index = this.waiting.findIndex((ticket) => ticket.jobId === jobId);
    return index === -1 ? undefined : index + 1;
  }

  async ahead(jobId: string): Promise<LineAhead | undefined> {
    const index = this.waiting.findIndex((ticket) => ticket.jobId === jobId);
    if (index === -1) return undefined;
    return {
      running: [...this.running.values()].map((ticket) => ({
        images: ticket.images,
        startedAt: this.startedAt.get(ticket.jobId),
      })),
      waiting: this.waiting.slice(0, index).map((ticket) => ticket.images),
      images: this.waiting[index]!.images,
    };
  }

  async stats(): Promise<QueueStats> {
    return {
      waiting: this.waiting.length,
      running: this.running.size,
      runningImages: this.runningImages,
      imageCapacity: this.imageCapacity,
    };
  }

  start(worker: QueueWorker, onMoved: (moved: { jobId: string; position: number }[]) => void): void {
    this.worker = worker;
    this.onMoved = onMoved;
    this.pump();
  }

  async stop(): Promise<QueueTicket[]> {
    this.stopped = true;
    const notStarted = [...this.starting.keys()].map((jobId) => this.running.get(jobId)!);
    for (const controller of this.starting.values()) controller.abort();
    this.starting.clear();
    return [...notStarted, ...this.waiting.splice(0)];
  }

  idle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Strict order: the head of the line waits for room rather than letting smaller jobs pass it. */
  private fits(ticket: QueueTicket): boolean {
    return this.running.size === 0 || this.runningImages + ticket.images <= this.imageCapacity;
  }

  private countFor(userId: string): number {
    let count = 0;
    for (const ticket of this.waiting) if (ticket.userId === userId) count++;
    for (const ticket of this.running.values()) if (ticket.userId === userId) count++;
    return count;
  }

  private pump(): void {
    const worker = this.worker;
    if (!worker) return;
    let started = false;
    while (!this.stopped && this.waiting.length > 0 && this.fits(this.waiting[0]!)) {
      const ticket = this.waiting.shift()!;
      this.running.set(ticket.jobId, ticket);
      this.startedAt.set(ticket.jobId, Date.now());
      this.runningImages += ticket.images;
      started = true;
      const pending = new AbortController();
      this.starting.set(ticket.jobId, pending);
      // Out of line but not started: unless the limiter says yes at once (within this turn of the
      // event loop), the job waits for the pace, and its old position would be wrong: tell it 0.
      const waitingForPace = setImmediate(() => this.onMoved([{ jobId: ticket.jobId, position: 0 }]));
      void this.limiter
        .acquire(pending.signal)
        .then(async () => {
          clearImmediate(waitingForPace);
          this.starting.delete(ticket.jobId);
          // A position edit in flight lands before the job's first edit as running.
          await this.edits.get(ticket.jobId);
          // Cancelled after the limiter said yes but before this ran: the slot is spent, the job is not.
          if (pending.signal.aborted) return undefined;
          return worker(ticket);
        })
        .catch(() => undefined)
        .finally(() => {
          clearImmediate(waitingForPace);
          this.starting.delete(ticket.jobId);
          this.running.delete(ticket.jobId);
          this.startedAt.delete(ticket.jobId);
          this.runningImages -= ticket.images;
          if (this.running.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
          this.pump();
        });
    }
    if (started) this.announce(0);
  }

  /** Tells every job from `from` on its new position. */
  private announce(from: number): void {
    const moved = this.waiting
      .slice(from)
      .map((ticket, offset) => ({ jobId: ticket.jobId, position: from + offset + 1 }));
    if (moved.length > 0) this.onMoved(moved);
  }
}
