import { readSample, type JobTimeSample, type JobTimeStore } from './job-times.ts';
import type { RedisEval } from './redis-window.ts';

/** Appends a sample and keeps the newest ARGV[2], in one step, so processes adding at once lose none. */
const ADD = `
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 0
`;
const RECENT = `return redis.call('LRANGE', KEYS[1], 0, -1)`;

/** A model unused this long is forgotten: its times may have changed since. */
const KEEP_MS = 30 * 24 * 3_600_000;

/**
 * Learnt job times on Redis, shared by every process on it (the bot's shards and workers): what one
 * process's job teaches, the next job of any of them uses. A list per API address and model.
 */
export class RedisJobTimeStore implements JobTimeStore {
  private readonly redis: RedisEval;
  private readonly prefix: string;

  /** `prefix` keeps several bots on one Redis apart (the bot's REDIS_PREFIX). */
  constructor(redis: RedisEval, prefix = 'sdxl:') {
    this.redis = redis;
    this.prefix = prefix;
  }

  async recent(key: string): Promise<JobTimeSample[]> {
    const stored = await this.redis.eval(RECENT, 1, this.keyOf(key));
    if (!Array.isArray(stored)) return [];
    return stored.flatMap((text) => {
      try {
        return readSample(JSON.parse(String(text))) ?? [];
      } catch {
        return [];
      }
    });
  }

  async add(key: string, sample: JobTimeSample, keep: number): Promise<void> {
    await this.redis.eval(ADD, 1, this.keyOf(key), JSON.stringify(sample), keep, KEEP_MS);
  }

  private keyOf(key: string): string {
    return `${this.prefix}job-times:${key}`;
  }
}
