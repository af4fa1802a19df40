import { setTimeout as wait } from 'node:timers/promises';
import { TAKE_START_LUA, windowSpan } from '@sdxl-kit/client';
import type { Redis } from 'ioredis';
import type { RateLimiter } from './types.ts';

const ACQUIRE = `${TAKE_START_LUA}
return take_start(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])`;

const USED = `${TAKE_START_LUA}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms() - tonumber(ARGV[1]))
return redis.call('ZCARD', KEYS[1])`;

/**
 * The account's pace shared by every bot process on one Redis: at most `limit` starts in any
 * `windowMs`, a sliding window like the provider's (a fixed window, as BullMQ's own limiter keeps,
 * could let twice the limit through across a window's edge and draw 429s).
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;
  readonly key: string;
  readonly limit: number;
  /**
   * The span starts are counted over: the window plus a margin. The provider counts arrivals, and a
   * start is counted here before the job's first Discord edit and its submit, which on a busy machine
   * can take a second: the client's margin (2%, at least 250 ms) still drew a 429 under load.
   */
  readonly windowMs: number;
  private sequence = 0;

  constructor(redis: Redis, options: { prefix: string; limit: number; windowMs: number }) {
    this.redis = redis;
    this.key = `${options.prefix}:rate:starts`;
    this.limit = options.limit;
    this.windowMs = Math.max(windowSpan(options.windowMs), options.windowMs + 1_000);
  }

  /** A member no other process's start shares. */
  member(): string {
    return `${process.pid}:${Date.now()}:${this.sequence++}:${Math.random().toString(36).slice(2)}`;
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const waitMs = (await this.redis.eval(
        ACQUIRE,
        1,
        this.key,
        this.limit,
        this.windowMs,
        this.member(),
      )) as number;
      if (waitMs === 0) return;
      await wait(waitMs, undefined, signal ? { signal } : undefined);
    }
  }

  async used(): Promise<number> {
    return (await this.redis.eval(USED, 1, this.key, this.windowMs)) as number;
  }
}
