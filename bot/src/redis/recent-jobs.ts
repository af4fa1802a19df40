import type { Redis } from 'ioredis';
import { RECENT_JOBS, type FinishedJob, type RecentJobsSource } from '../jobs/estimate.ts';
import type { Logger } from '../logger.ts';

/** How often a process reads the shared list: estimates are rounded to minutes, so a few seconds old is fine. */
const REFRESH_MS = 2_000;

/**
 * The last finished jobs of every process on one Redis, for start estimates. A gateway process runs no
 * job, and a worker sees only its own: the list is kept in Redis (each finish appended, trimmed to
 * {@link RECENT_JOBS}) and read every couple of seconds into memory, so `list` stays synchronous.
 */
export class RedisRecentJobs implements RecentJobsSource {
  private cached: readonly FinishedJob[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly redis: Redis;
  private readonly key: string;
  private readonly logger: Logger;

  constructor(redis: Redis, options: { prefix: string; logger: Logger }) {
    this.redis = redis;
    this.key = `${options.prefix}:recent-jobs`;
    this.logger = options.logger;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS).unref();
  }

  add(job: FinishedJob): void {
    this.cached = [...this.cached, job].slice(-RECENT_JOBS);
    void this.redis
      .multi()
      .rpush(this.key, JSON.stringify({ ms: job.ms, images: job.images }))
      .ltrim(this.key, -RECENT_JOBS, -1)
      .exec()
      .catch((error: unknown) => this.logger.debug({ err: error }, 'could not share a job duration'));
  }

  get list(): readonly FinishedJob[] {
    return this.cached;
  }

  /** Stops reading the list, before the connection closes. */
  close(): void {
    clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    // While Redis is away, the last list read stays in use rather than queueing reads for its return.
    if (this.redis.status !== 'ready') return;
    try {
      const raw = await this.redis.lrange(this.key, -RECENT_JOBS, -1);
      this.cached = raw.map((entry) => JSON.parse(entry) as FinishedJob);
    } catch (error) {
      this.logger.debug({ err: error }, 'could not read the recent job durations');
    }
  }
}
