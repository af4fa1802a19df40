/** What the queue needs to know about a job; everything else lives in the job store. */
export interface QueueTicket {
  jobId: string;
  userId: string;
  /** Images the job makes: what it takes of the queue's image capacity. */
  images: number;
}

/** What stands before a waiting job: what its start estimate is made from. */
export interface LineAhead {
  /** The jobs running now: their images, and when each started (epoch ms) where the queue knows it. */
  running: { images: number; startedAt?: number }[];
  /** The images of each job ahead of it in line, first in line first. */
  waiting: number[];
  /** Its own images. */
  images: number;
}

/** The longest a shared queue holds a job's start for a position edit still in flight. */
export const WAITING_EDIT_HOLD_MS = 10_000;

export type EnqueueResult =
  /** `position` 1 runs next; 0 means it starts now. */
  | { accepted: true; position: number }
  | { accepted: false; reason: 'user_limit'; userJobs: number }
  | { accepted: false; reason: 'closed' };

export interface QueueStats {
  waiting: number;
  running: number;
  /** Images being made by the running jobs. */
  runningImages: number;
  /** Images that may be in flight at once. */
  imageCapacity: number;
}

/** Runs a job when its turn comes; the signal aborts it when the queue is told to stop. */
export type QueueWorker = (ticket: QueueTicket) => Promise<void>;

/**
 * The one line every generation waits in. The in-memory implementation serves one process; a
 * Redis-backed one shared by several bot processes can replace it without touching command code,
 * which is why every call is async and the per-user limit is checked inside `enqueue` (atomically).
 */
export interface JobQueue {
  /**
   * Whether the line outlives this process and is served by others too (Redis): then a job left
   * unfinished by a crash is finished by another process, not marked failed at start-up.
   */
  readonly shared: boolean;
  /** Whether a job can be taken now; false while a shared queue's server is unreachable. */
  available(): boolean;
  /**
   * Jobs a user has queued or running: read before a request is acknowledged, so that a full queue is
   * refused in the private first answer; `enqueue` checks the limit again, atomically.
   */
  userJobs(userId: string): Promise<number>;
  /** Adds a job unless the user already has `perUserLimit` jobs queued or running. */
  enqueue(ticket: QueueTicket, limits: { perUserLimit: number }): Promise<EnqueueResult>;
  /** Takes a job out of line (or stops it waiting for the rate limiter); false when it already started or is unknown. */
  cancel(jobId: string): Promise<boolean>;
  /**
   * Runs `show` (a status edit of a waiting job: its position) only while the job still waits, and
   * keeps the job from starting, in any process, until `show` has settled: so the edit that says it
   * started can never be followed by a stale position. Resolves whether `show` ran. A shared queue
   * holds a start at most {@link WAITING_EDIT_HOLD_MS} for an edit (a process that dies mid-edit).
   */
  whileWaiting(jobId: string, show: () => Promise<void>): Promise<boolean>;
  /**
   * Resolves once no position edit of the job (see `whileWaiting`) is in flight, in any process: a
   * shared queue waits at most {@link WAITING_EDIT_HOLD_MS}.
   */
  editsSettled(jobId: string): Promise<void>;
  /** 1-based position among waiting jobs, 0 when running, undefined when unknown. */
  position(jobId: string): Promise<number | undefined>;
  /** What stands before a job waiting in line, for its start estimate; undefined when it is not waiting. */
  ahead(jobId: string): Promise<LineAhead | undefined>;
  stats(): Promise<QueueStats>;
  /**
   * Starts serving: `worker` runs each job; `onMoved` hears new positions of waiting jobs, and
   * position 0 for a job out of line that waits for the rate limiter before it starts; `onTaken`
   * hears of a job this process queued that another process started (or that left the line);
   * `onGaveUp` of a job a shared queue stopped handing out (it stalled too often), which must still end.
   */
  start(
    worker: QueueWorker,
    onMoved: (moved: { jobId: string; position: number }[]) => void,
    onTaken?: (jobId: string) => void,
    onGaveUp?: (ticket: QueueTicket) => void,
  ): void;
  /**
   * Stops starting jobs in this process; returns the tickets that had not started (now removed).
   * A shared queue keeps its waiting jobs for the other processes (or the next start) and returns none.
   */
  stop(): Promise<QueueTicket[]>;
  /** Resolves when no job is running in this process. */
  idle(): Promise<void>;
  /** Releases connections, after `stop` and `idle`. */
  close(): Promise<void>;
}

/** Paces how many generations may start per window; shared by every worker of the queue. */
export interface RateLimiter {
  /** Resolves when a start is allowed and counts it; rejects if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<void>;
  /** Starts counted in the current window. */
  used(): Promise<number>;
}
