import { createHash } from 'node:crypto';
import { ConnectionError } from './errors.ts';
import { windowSpan, type StartWindow } from './limiter.ts';

/**
 * The one Redis command the shared window needs, as ioredis spells it (`redis.eval(script, numKeys,
 * ...keysAndArgs)`). Taking this much instead of a client class keeps the client free of a Redis
 * dependency: the host that opens the connection chooses the library.
 */
export interface RedisEval {
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
}

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

/**
 * Counts a start unless the shared pause (a key with its own expiry, set by a 429) still runs.
 * Returns 0 when the start was counted, else the ms to wait.
 */
const TRY_START = `${TAKE_START_LUA}
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return paused end
return take_start(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[1]), ARGV[3])
`;

/** Extends the shared pause to `ARGV[1]` ms from now unless it already lasts longer. */
const PAUSE = `
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 0
`;

export interface RedisStartWindowOptions {
  /** Requests that may start in any window, across every process sharing it. */
  requestsPerMinute: number;
  /** The account whose pace this is. Only a hash of it is stored, never the key itself. */
  apiKey: string;
  /** The API's base URL: one key against two services (the hosted API, a sandbox) keeps two paces. */
  baseUrl: string;
  /** @default 60000 */
  windowMs?: number;
  /** Prefix of the keys in Redis. @default 'sdxl:' */
  prefix?: string;
  /** Names the setting in errors, e.g. `SDXL_REDIS_URL`. @default 'Redis' */
  label?: string;
}

/**
 * A start window kept in Redis, so every process and machine on one account keeps one pace: pass it
 * to `new RequestLimiter({ window })`. Requests in flight stay a per-process bound.
 */
export class RedisStartWindow implements StartWindow {
  private readonly redis: RedisEval;
  private readonly startsKey: string;
  private readonly pauseKey: string;
  private readonly limit: number;
  private readonly span: number;
  private readonly label: string;
  private counter = 0;
  private readonly id = Math.random().toString(36).slice(2);

  constructor(redis: RedisEval, options: RedisStartWindowOptions) {
    if (!(options.requestsPerMinute > 0 && Number.isFinite(options.requestsPerMinute)))
      throw new RangeError('A shared pace needs requestsPerMinute: a whole number, 1 or more');
    this.redis = redis;
    this.limit = options.requestsPerMinute;
    this.span = windowSpan(options.windowMs ?? 60_000);
    this.label = options.label ?? 'Redis';
    const account = createHash('sha256').update(`${new URL(options.baseUrl).origin}\n${options.apiKey}`);
    const prefix = `${options.prefix ?? 'sdxl:'}pace:${account.digest('hex').slice(0, 24)}`;
    this.startsKey = `${prefix}:starts`;
    this.pauseKey = `${prefix}:paused`;
  }

  async tryStart(): Promise<number> {
    // Members must be unique: two starts in one millisecond are two starts.
    const member = `${this.id}:${++this.counter}`;
    const wait = await this.call(TRY_START, 2, this.startsKey, this.pauseKey, this.span, this.limit, member);
    return Number(wait);
  }

  async pauseUntil(time: number): Promise<void> {
    const ms = Math.ceil(time - Date.now());
    if (ms > 0) await this.call(PAUSE, 1, this.pauseKey, ms);
  }

  private async call(script: string, keys: number, ...args: Array<string | number>): Promise<unknown> {
    try {
      return await this.redis.eval(script, keys, ...args);
    } catch (error) {
      // Nothing was sent to the API, so the client may retry within its deadline; the message must
      // not carry the connection string (it may hold a password), only what went wrong.
      const reason = error instanceof Error ? error.message.replace(/redis:\/\/\S+/gi, '[redis url]') : '';
      throw new ConnectionError(
        `The shared pace (${this.label}) could not be reached${reason ? `: ${reason}` : ''}. Nothing was sent.`,
        false,
      );
    }
  }
}
