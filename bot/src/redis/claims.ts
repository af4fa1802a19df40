import { randomUUID } from 'node:crypto';
import { setTimeout as wait } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { CopyClaims, InteractionVerdict, SubmitClaim, SubmitClaims, SubmitHold } from '../claims.ts';
import type { Logger } from '../logger.ts';

/**
 * The claims copies of the bot make on one Redis, each one atomic script under the bot's prefix
 * (`<prefix>:claim:…`, `<prefix>:copies:…`), beside the queue's and the store's.
 */

/** `now_ms()` on Redis's clock, so copies on machines whose clocks disagree still agree on who is alive. */
const NOW_MS_LUA = `
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
`;

/**
 * Claims one interaction's answer. A draining copy first looks for a live copy of its shard that is
 * not draining: there is one, so that copy answers and this one claims nothing.
 * KEYS: the interaction's claim, the shard's live copies (zset: copy id -> alive until, ms)
 * ARGV: copy id, draining ('1' or '0'), claim ttl ms. Returns 'mine', 'last' (draining, no other copy
 * alive, claimed) or 'elsewhere'.
 */
const CLAIM_INTERACTION = `${NOW_MS_LUA}
if ARGV[2] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms())
  if redis.call('ZCARD', KEYS[2]) > 0 then return 'elsewhere' end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) then return 'elsewhere' end
if ARGV[2] == '1' then return 'last' end
return 'mine'
`;

/** KEYS: the shard's live copies; ARGV: copy id, alive for ms. */
const ANNOUNCE = `${NOW_MS_LUA}
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/**
 * Claims a job's one submit. The record (a hash: who claimed it, the request id once known) stays
 * for the job's life; the hold (a key with its own expiry, renewed by the run that has it) says that
 * run is alive. KEYS: record, hold; ARGV: run token, hold ms, record ttl ms.
 * Returns {'mine' | 'orphaned' | 'held', request id or ''}.
 */
const CLAIM_SUBMIT = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'by', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {'mine', ''}
end
local request = redis.call('HGET', KEYS[1], 'requestId') or ''
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {'held', request} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {'orphaned', request}
`;

/** KEYS: hold; ARGV: run token, hold ms. 1 while the hold is still this run's. */
const RENEW_HOLD = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/** KEYS: hold; ARGV: run token. */
const RELEASE_HOLD = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

/** An interaction claim outlives its token (15 minutes): no copy can answer it after that anyway. */
const INTERACTION_CLAIM_MS = 15 * 60_000;
/** How often a copy says it is alive, and how long one that stopped saying so still counts. */
const ANNOUNCE_EVERY_MS = 2_000;
const ALIVE_FOR_MS = 10_000;
/** How long a stopping copy waits for Redis to take it off the live copies. */
const WITHDRAW_MS = 1_000;

/**
 * A copy of the bot on Redis: it claims each interaction before it answers (the losers stay silent),
 * and says every 2 s that it is alive and takes interactions, so that a draining copy leaves them to
 * it. A copy killed outright still counts as alive for up to 10 s.
 */
export class RedisCopyClaims implements CopyClaims {
  /** Says which process answered, in its claims (for an operator reading Redis). */
  readonly copyId = `${process.pid}-${randomUUID().slice(0, 8)}`;
  draining = false;
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly copiesKey: string;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;

  /** `shard`: the shard this copy is logged in as; only copies of that shard receive its events. */
  constructor(redis: Redis, options: { prefix: string; shard: string; logger: Logger }) {
    this.redis = redis;
    this.prefix = options.prefix;
    this.copiesKey = `${options.prefix}:copies:${options.shard}`;
    this.logger = options.logger;
  }

  async claim(interactionId: string): Promise<InteractionVerdict> {
    return (await this.redis.eval(
      CLAIM_INTERACTION,
      2,
      `${this.prefix}:claim:interaction:${interactionId}`,
      this.copiesKey,
      this.copyId,
      this.draining ? '1' : '0',
      INTERACTION_CLAIM_MS,
    )) as InteractionVerdict;
  }

  ready(): void {
    if (this.draining || this.timer) return;
    const announce = () =>
      void this.redis
        .eval(ANNOUNCE, 1, this.copiesKey, this.copyId, ALIVE_FOR_MS)
        .catch((error: unknown) => this.logger.debug({ err: error }, 'could not announce this copy'));
    announce();
    this.timer = setInterval(announce, ANNOUNCE_EVERY_MS).unref();
  }

  async drain(): Promise<void> {
    this.draining = true;
    clearInterval(this.timer);
    await this.withdraw();
  }

  async close(): Promise<void> {
    this.draining = true;
    clearInterval(this.timer);
    await this.withdraw();
  }

  /** Leaves the live copies; with Redis away it stops waiting after a second (the entry expires anyway). */
  private async withdraw(): Promise<void> {
    await Promise.race([
      this.redis
        .zrem(this.copiesKey, this.copyId)
        .catch((error: unknown) => this.logger.debug({ err: error }, 'could not withdraw this copy')),
      wait(WITHDRAW_MS, undefined, { ref: false }),
    ]);
  }
}

/**
 * Submit claims on Redis: a run holds its job's claim for `holdMs` (renewed every third of it) while it
 * lives, so a second run of the job (BullMQ handing it out again) waits for it, or takes over once the
 * first run's process is gone.
 */
export class RedisSubmitClaims implements SubmitClaims {
  private readonly redis: Redis;
  private readonly options: { prefix: string; holdMs: number; keepMs: number; logger: Logger };

  /** `holdMs`: how long a run's hold lasts unrenewed; `keepMs`: how long the record of a claim is kept. */
  constructor(redis: Redis, options: { prefix: string; holdMs: number; keepMs: number; logger: Logger }) {
    this.redis = redis;
    this.options = options;
  }

  async claim(jobId: string): Promise<SubmitClaim> {
    const { prefix, holdMs, keepMs } = this.options;
    const record = `${prefix}:claim:submit:${jobId}`;
    const holdKey = `${record}:hold`;
    const token = randomUUID();
    const [state, requestId] = (await this.redis.eval(
      CLAIM_SUBMIT,
      2,
      record,
      holdKey,
      token,
      holdMs,
      keepMs,
    )) as ['mine' | 'orphaned' | 'held', string];
    const known = requestId ? { requestId } : {};
    if (state === 'held') return { state, ...known };
    return { state, ...known, hold: this.hold(jobId, record, holdKey, token) };
  }

  private hold(jobId: string, record: string, holdKey: string, token: string): SubmitHold {
    const { holdMs, logger } = this.options;
    const timer = setInterval(() => {
      this.redis
        .eval(RENEW_HOLD, 1, holdKey, token, holdMs)
        .then((renewed) => {
          if (renewed !== 1) logger.warn({ jobId }, 'the hold on a job’s submit lapsed while it ran');
        })
        .catch((error: unknown) => logger.debug({ jobId, err: error }, 'could not renew a submit hold'));
    }, holdMs / 3).unref();
    return {
      submitted: async (requestId) => {
        await this.redis.hset(record, 'requestId', requestId);
      },
      release: async () => {
        clearInterval(timer);
        await this.redis.eval(RELEASE_HOLD, 1, holdKey, token);
      },
    };
  }
}
