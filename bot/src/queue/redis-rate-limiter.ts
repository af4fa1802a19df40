import { setTimeout as wait } from 'node:timers/promises';
import { windowSpan } from '@sdxl-kit/client';
import type { Redis } from 'ioredis';
import type { RateLimiter } from './types.ts';

/**
 * Lua that takes one start from a sliding window kept as a sorted set of start times, on Redis's
 * clock (so processes on machines whose clocks disagree still share one window). Defines
 * `take_start(key, limit, window_ms, member)`: 0 when taken, else the milliseconds until one frees.
 */
export const TAKE_START_LUA = `
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function take_start(key, limit, window_ms, member)
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_ms)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + window_ms - now + 1)
  end
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window_ms)
  return 0
end
`;

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
