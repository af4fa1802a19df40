// What the client learns of how long each model's async jobs take, and where it keeps it: the poll
// schedule reads it to look at a job just after it should end. Kept per API address and model, so
// a sandbox's half-second jobs never set the pace for the hosted API's.

/** One finished job, in ms, as the server reported it and the client's checks bounded it. */
export interface JobTimeSample {
  /** From the submit's answer to the job being done. */
  totalMs: number;
  /** Waiting for a worker (the result's `queue_time`), where the server says. */
  queueMs?: number;
  /** Running on a worker (`inference_time`), where the server says. */
  inferenceMs?: number;
}

/**
 * Where learnt job times are kept between runs and shared between processes: the CLI's cache file,
 * the bot's store, Redis. Each key is one API address and model. A store that fails must only cost
 * the learning, never a job: the client logs its errors and goes on.
 */
export interface JobTimeStore {
  /** The newest samples of `key`, oldest first. */
  recent(key: string): Promise<JobTimeSample[]>;
  /** Adds a sample to `key`, keeping the newest `keep`. */
  add(key: string, sample: JobTimeSample, keep: number): Promise<void>;
}

/** How many jobs of a model the schedule learns from: enough for a spread, few enough to follow a change. */
export const JOB_TIME_SAMPLES = 12;

/** The embedded default: samples kept in this process, shared by every client given the same store. */
export class MemoryJobTimeStore implements JobTimeStore {
  private readonly samples = new Map<string, JobTimeSample[]>();

  recent(key: string): Promise<JobTimeSample[]> {
    return Promise.resolve([...(this.samples.get(key) ?? [])]);
  }

  add(key: string, sample: JobTimeSample, keep: number): Promise<void> {
    const list = [...(this.samples.get(key) ?? []), sample].slice(-keep);
    this.samples.set(key, list);
    return Promise.resolve();
  }
}

/** Reads a stored sample leniently: a cache written by another version must not break a job. */
export function readSample(value: unknown): JobTimeSample | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const { totalMs, queueMs, inferenceMs } = value as Record<string, unknown>;
  const valid = (ms: unknown): ms is number => typeof ms === 'number' && Number.isFinite(ms) && ms >= 0;
  if (!valid(totalMs)) return undefined;
  return {
    totalMs,
    ...(valid(queueMs) && { queueMs }),
    ...(valid(inferenceMs) && { inferenceMs }),
  };
}

/**
 * The client's view of its store: the samples of each key as last read or learnt, and who is waiting
 * on a key, so that when one job of a batch round finishes, the others of its model re-plan at once.
 */
export class LearntJobTimes {
  private readonly known = new Map<string, JobTimeSample[]>();
  private readonly learnt = new Map<string, number>();
  private readonly listeners = new Map<string, Set<() => void>>();
  private readonly store: JobTimeStore;
  private readonly warn: (message: string) => void;

  constructor(store: JobTimeStore, warn: (message: string) => void) {
    this.store = store;
    this.warn = warn;
  }

  /** The samples of `key` as known now, oldest first. */
  samples(key: string): readonly JobTimeSample[] {
    return this.known.get(key) ?? [];
  }

  /**
   * Reads `key` from the store (another process may have learnt since) and tells those waiting on
   * it. A read that races a sample learnt here keeps what was learnt; a failed read keeps what is
   * known. Never awaited by a wait: a store that hangs (Redis away) must not hold up a check.
   */
  async refresh(key: string): Promise<void> {
    const before = this.learnt.get(key) ?? 0;
    let stored: JobTimeSample[];
    try {
      stored = (await this.store.recent(key)).flatMap((sample) => readSample(sample) ?? []);
    } catch (error) {
      this.warn(
        `could not read the learnt job times (${(error as Error).message}); polling on what is known`,
      );
      return;
    }
    if ((this.learnt.get(key) ?? 0) !== before) return;
    this.known.set(key, stored.slice(-JOB_TIME_SAMPLES));
    this.tell(key);
  }

  /** Learns one finished job: at once for the jobs waiting here, then in the store for the next run. */
  async record(key: string, sample: JobTimeSample): Promise<void> {
    this.known.set(key, [...this.samples(key), sample].slice(-JOB_TIME_SAMPLES));
    this.learnt.set(key, (this.learnt.get(key) ?? 0) + 1);
    this.tell(key);
    try {
      await this.store.add(key, sample, JOB_TIME_SAMPLES);
    } catch (error) {
      this.warn(`could not keep the learnt job time (${(error as Error).message})`);
    }
  }

  private tell(key: string): void {
    for (const listener of this.listeners.get(key) ?? []) listener();
  }

  /** Calls `listener` whenever `key`'s samples change, until the returned function is called. */
  onLearn(key: string, listener: () => void): () => void {
    let set = this.listeners.get(key);
    if (!set) this.listeners.set(key, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(key);
    };
  }
}
