import { randomUUID } from 'node:crypto';
import type { RedisEval } from '../redis-window.ts';
import {
  DEFAULT_RESERVATION_TTL_MS,
  checkReserve,
  countKey,
  refusal,
  usageOf,
  windowPeriod,
  type BudgetLedger,
  type BudgetLimit,
  type BudgetUsage,
  type Reservation,
} from './budget.ts';
import { toMicroCredits } from './price.ts';

// Each count is a hash: `spent` (micro-credits), `h:<id>` (a hold: "<micro>:<lapses at ms>") and
// `d:<id>` (settled or released). Times are Redis's own (TIME), so processes whose clocks disagree
// still agree on what has lapsed. Every script works on all of a call's counts at once: a burst from
// many processes can never pass a cap between one process's check and its hold.

const HELD = `
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function held(key, now)
  local total = 0
  local fields = redis.call('HGETALL', key)
  for index = 1, #fields, 2 do
    local name = fields[index]
    if string.sub(name, 1, 2) == 'h:' then
      local value = fields[index + 1]
      local colon = string.find(value, ':', 1, true)
      local lapses = tonumber(string.sub(value, colon + 1))
      if lapses <= now then redis.call('HDEL', key, name)
      else total = total + tonumber(string.sub(value, 1, colon - 1)) end
    end
  end
  return total
end
`;

/**
 * KEYS: the counts. ARGV: micro, id, ttl ms, then per count its cap (micro) and expiry (ms since
 * epoch, 0 for never). Returns {0} when held, else {1, index of the refusing count, spent, held}.
 */
const RESERVE = `${HELD}
local now = now_ms()
local micro = tonumber(ARGV[1])
for index, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[2 + index * 2])
  local spent = tonumber(redis.call('HGET', key, 'spent') or '0')
  local holding = held(key, now)
  if spent + holding + micro > cap then return {1, index, spent, holding} end
end
for index, key in ipairs(KEYS) do
  redis.call('HSET', key, 'h:' .. ARGV[2], micro .. ':' .. (now + tonumber(ARGV[3])))
  local expires = tonumber(ARGV[3 + index * 2])
  if expires > 0 then redis.call('PEXPIREAT', key, expires) end
end
return {0}
`;

/** KEYS: the counts. ARGV: id, micro to add to spent (0 to release). Idempotent. */
const FINISH = `
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 and redis.call('HSETNX', key, 'd:' .. ARGV[1], '1') == 1 then
    redis.call('HDEL', key, 'h:' .. ARGV[1])
    redis.call('HINCRBY', key, 'spent', ARGV[2])
  end
end
return 0
`;

/** KEYS[1]: a count. Returns {spent, held}. */
const USAGE = `${HELD}
return {tonumber(redis.call('HGET', KEYS[1], 'spent') or '0'), held(KEYS[1], now_ms())}
`;

export interface RedisBudgetOptions {
  /** Prefix of the keys in Redis. @default 'sdxl:' */
  prefix?: string;
  /** How long a reservation holds when nobody settles it (a process died mid-call). @default 2 h */
  reservationTtlMs?: number;
  /** For the window's period and reset time; holds lapse on Redis's clock. @default Date.now */
  now?: () => number;
}

/**
 * A budget ledger kept in Redis, so every process of a bot (or every cron machine) spends against one
 * count: a reservation is taken from every limit at once or from none, atomically, so a burst across
 * processes never passes a cap. Keys: `<prefix>budget:<id>:<window>:<period>`, expiring after the
 * window (and the reservation time) is over.
 */
export class RedisBudget implements BudgetLedger {
  private readonly redis: RedisEval;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(redis: RedisEval, options: RedisBudgetOptions = {}) {
    this.redis = redis;
    this.prefix = `${options.prefix ?? 'sdxl:'}budget:`;
    this.ttlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    this.now = options.now ?? Date.now;
  }

  async reserve(limits: readonly BudgetLimit[], credits: number): Promise<Reservation> {
    checkReserve(limits, credits);
    const now = this.now();
    const micro = toMicroCredits(credits);
    const keys = limits.map((limit) => countKey(limit, now));
    const id = randomUUID();
    const perCount = limits.flatMap((limit) => {
      const resetsAt = windowPeriod(limit.window, now).resetsAt;
      return [toMicroCredits(limit.credits), resetsAt ? resetsAt.getTime() + this.ttlMs : 0];
    });
    const answer = (await this.redis.eval(
      RESERVE,
      keys.length,
      ...keys.map((key) => this.prefix + key),
      micro,
      id,
      this.ttlMs,
      ...perCount,
    )) as number[];
    if (answer[0] === 1) {
      const limit = limits[Number(answer[1]) - 1]!;
      throw refusal(limit, Number(answer[2]), Number(answer[3]), micro, now);
    }
    return { id, credits, keys };
  }

  async settle(reservation: Reservation, credits: number): Promise<void> {
    await this.finish(reservation, toMicroCredits(credits));
  }

  async release(reservation: Reservation): Promise<void> {
    await this.finish(reservation, 0);
  }

  async usage(limit: BudgetLimit): Promise<BudgetUsage> {
    const now = this.now();
    const [spent, held] = (await this.redis.eval(USAGE, 1, this.prefix + countKey(limit, now))) as number[];
    return usageOf(limit, Number(spent), Number(held), now);
  }

  private async finish(reservation: Reservation, micro: number): Promise<void> {
    if (reservation.keys.length === 0) return;
    await this.redis.eval(
      FINISH,
      reservation.keys.length,
      ...reservation.keys.map((key) => this.prefix + key),
      reservation.id,
      micro,
    );
  }
}
