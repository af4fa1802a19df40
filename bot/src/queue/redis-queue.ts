import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { setTimeout as wait } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { TAKE_START_LUA } from '@sdxl-kit/client';
import type { RedisRateLimiter } from './redis-rate-limiter.ts';
import {
  WAITING_EDIT_HOLD_MS,
  type EnqueueResult,
  type JobQueue,
  type LineAhead,
  type QueueStats,
  type QueueTicket,
  type QueueWorker,
} from './types.ts';

/** BullMQ's highest priority number (the lowest priority). */
const MAX_PRIORITY = 2_097_152;
/** Scores in the waiting set: the fairness tag, then arrival order (both fit a double exactly). */
const TAG_SCALE = 2 ** 32;
/** A job holds its place in its user's count at most this long: no job outlives Discord's 15 minutes. */
const STALE_AFTER_MS = 16 * 60_000;
/** How often a process looks up the positions of the jobs it queued. */
const POSITION_REFRESH_MS = 1_000;
/** BullMQ's id for a job: ours with a letter in front, since BullMQ refuses ids that read as integers. */
const bullId = (jobId: string) => `j${jobId}`;

/** Error codes of a connection to Redis that failed or dropped. */
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);
/** How often a worker that started a job checks whether a position edit of it is still in flight. */
const EDIT_POLL_MS = 20;

/** How often at most a gateway process looks for a process that runs jobs (see `checkWorkers`). */
const WORKERS_CHECK_MS = 60_000;

/** How long every worker pauses when the head of the line does not fit the images in flight. */
const CAPACITY_RETRY_MS = 200;
/** A rate limit no line reaches: START asks `position_of` about the turn and the images alone. */
const UNPACED = 1e15;

/**
 * Defines `position_of(waiting, running, tickets, rate, capacity, limit, window_ms, job, bull)`: 0 when
 * the job would start now (it and every job ahead of it fit the images in flight and the pace), else
 * its 1-based place among the jobs that must wait, as the in-memory queue counts; -2 running, -1 unknown.
 * An entry ahead with no BullMQ job under `bull` (the prefix of BullMQ's job keys) is passed over: it
 * is being queued this instant, or its process died between the two steps of `enqueue`, and a line
 * that waited for it would wait forever.
 */
const POSITION_LUA = `${TAKE_START_LUA}
local function position_of(waiting, running, tickets, rate, capacity, limit, window_ms, job, bull)
  if redis.call('HEXISTS', running, job) == 1 then return -2 end
  local rank = redis.call('ZRANK', waiting, job)
  if not rank then return -1 end
  local images = 0
  for _, value in ipairs(redis.call('HVALS', running)) do images = images + tonumber(value) end
  local busy = images > 0
  redis.call('ZREMRANGEBYSCORE', rate, '-inf', now_ms() - window_ms)
  local room = limit - redis.call('ZCARD', rate)
  local place = 0
  for _, id in ipairs(redis.call('ZRANGE', waiting, 0, rank)) do
    if id == job or redis.call('EXISTS', bull .. id) == 1 then
      local ticket = redis.call('HGET', tickets, id)
      local need = ticket and cjson.decode(ticket).images or 1
      if place > 0 or room <= 0 or (busy and images + need > capacity) then
        place = place + 1
      else
        images = images + need
        busy = true
        room = room - 1
      end
    end
  end
  return place
end
`;

/**
 * Admits a job: the user's count of jobs queued or running is checked and raised in one step, so
 * two processes cannot both let a user past the limit. Fairness is start-time fair queuing: a job's
 * tag is one more than the later of the user's last tag and the tag of the last job started, so a
 * user's second job waits behind everyone's first (round-robin across users) without BullMQ Pro's groups.
 * KEYS: waiting (zset), user's jobs (zset), last tag per user (hash), virtual time, sequence,
 *       tickets (hash), tags (hash), running (hash jobId -> images), rate starts (zset)
 * ARGV: job id, user id, images, per-user limit, now, stale before, ticket JSON, capacity, rate limit,
 *       window ms, BullMQ job key prefix
 * Returns {-1, user's jobs} when refused, else {position (0: starts now), tag}.
 */
const ENQUEUE = `${POSITION_LUA}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[6])
local count = redis.call('ZCARD', KEYS[2])
if count >= tonumber(ARGV[4]) then return {-1, count} end
if redis.call('ZCARD', KEYS[1]) == 0 and redis.call('HLEN', KEYS[8]) == 0 then
  redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
end
local vtime = tonumber(redis.call('GET', KEYS[4]) or '0')
local last = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
local tag = math.max(vtime, last) + 1
redis.call('HSET', KEYS[3], ARGV[2], tag)
local sequence = redis.call('INCR', KEYS[5])
redis.call('ZADD', KEYS[1], tag * ${TAG_SCALE} + sequence, ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('HSET', KEYS[6], ARGV[1], ARGV[7])
redis.call('HSET', KEYS[7], ARGV[1], tag)
return {position_of(KEYS[1], KEYS[8], KEYS[6], KEYS[9], tonumber(ARGV[8]), tonumber(ARGV[9]),
  tonumber(ARGV[10]), ARGV[1], ARGV[11]), tag}
`;

/**
 * A worker holds a job and asks to start it: it starts in its turn (it and every job queued ahead of
 * it fit the images free: BullMQ hands several jobs to the workers at once, and a small job behind a
 * large one waiting for room would otherwise win the race for them), when its images fit the
 * capacity (a job larger than the capacity runs alone) and the account's pace has room; both are
 * reserved together.
 * KEYS: waiting, running (hash), running since (zset), rate starts, tags, virtual time, tickets
 * ARGV: job id, images, capacity, rate limit, window ms, start member, now, stale before, BullMQ job key prefix
 * Returns {'started'}, {'resumed'} (a stalled job another process had started), {'gone'} (cancelled),
 * {'wait', ms} (the first in line waits for room or the pace) or {'turn'} (a job ahead must start first).
 */
const START = `${POSITION_LUA}
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {'resumed'} end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {'gone'} end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[8])) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
-- The turn and the images only: the pace is take_start's, which knows how long to wait for it.
if position_of(KEYS[1], KEYS[2], KEYS[7], KEYS[4], tonumber(ARGV[3]), ${UNPACED}, tonumber(ARGV[5]),
  ARGV[1], ARGV[9]) ~= 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, redis.call('ZRANK', KEYS[1], ARGV[1]) - 1)) do
    if redis.call('EXISTS', ARGV[9] .. id) == 1 then return {'turn'} end
  end
  return {'wait', ${CAPACITY_RETRY_MS}}
end
local waitMs = take_start(KEYS[4], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6])
if waitMs > 0 then return {'wait', waitMs} end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
local tag = tonumber(redis.call('HGET', KEYS[5], ARGV[1]) or '0')
if tag > tonumber(redis.call('GET', KEYS[6]) or '0') then redis.call('SET', KEYS[6], tag) end
return {'started'}
`;

/**
 * A job ended (or was cancelled while waiting): its images, its place in its user's count and its
 * ticket are released. Idempotent. KEYS: waiting, running, running since, user's jobs, tickets, tags
 * ARGV: job id, only if waiting ('1') or always ('0'). Returns 1 when something was released.
 */
const RELEASE = `
if ARGV[2] == '1' and redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
return 1
`;

/**
 * A position edit of a waiting job begins: its token joins the job's edits in flight, which a worker
 * that starts the job waits out (see `whileWaiting`). Refused once the job left the waiting set,
 * which START does in the same step as it starts the job, so no edit can begin after a start.
 * KEYS: waiting, the job's edits in flight (set); ARGV: job id, token, hold ms. Returns 1 or 0.
 */
const HOLD = `
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`;

/** KEYS: waiting, running, tickets, rate starts; ARGV: capacity, rate limit, window ms, job id, BullMQ job key prefix */
const POSITION = `${POSITION_LUA}
return position_of(KEYS[1], KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]), ARGV[4], ARGV[5])
`;

/**
 * What stands before a waiting job: {running, waiting} where running is {images, started at ('' when
 * unknown)} per running job and waiting the images of each job ahead of it and then its own; nil when
 * it is not waiting. KEYS: waiting, running, running since, tickets; ARGV: job id
 */
const AHEAD = `
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then return false end
local running = {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
  running[#running + 1] = {flat[i + 1], redis.call('ZSCORE', KEYS[3], flat[i]) or ''}
end
local waiting = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, rank)) do
  local ticket = redis.call('HGET', KEYS[4], id)
  waiting[#waiting + 1] = ticket and cjson.decode(ticket).images or 1
end
return {running, waiting}
`;

export interface RedisJobQueueOptions {
  redis: Redis;
  /** Every key starts with it; every process of one bot uses the same. */
  prefix: string;
  imageCapacity: number;
  limiter: RedisRateLimiter;
  /**
   * How long a worker's claim on a running job lasts without renewal (renewed every half of it):
   * a process that dies leaves its job to the others after at most this plus `stalledIntervalMs`.
   */
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** Whether this process runs jobs; a gateway-only process queues them for the workers. @default true */
  runsJobs?: boolean;
  logger: Logger;
}

/**
 * The line shared by every bot process on one Redis, on BullMQ: BullMQ hands jobs to workers in
 * fairness order (its priorities), keeps each running job locked by its worker and gives a job whose
 * process died to another (stalled-job recovery). What BullMQ's open-source version cannot express
 * (images in flight rather than jobs, a sliding-window pace, per-user limits, round-robin across
 * users) lives in the scripts above, each one atomic step on Redis. A job that may not start yet goes
 * back to the head of the line and every worker pauses (BullMQ's `rateLimit`) until it may.
 */
export class RedisJobQueue implements JobQueue {
  readonly shared = true;
  private readonly redis: Redis;
  private readonly options: RedisJobQueueOptions;
  private readonly keys: Record<
    'waiting' | 'running' | 'runningSince' | 'lastTag' | 'vtime' | 'sequence' | 'tickets' | 'tags',
    string
  >;
  private readonly queue: Queue<QueueTicket>;
  /** BullMQ's key of a job's hash is this followed by our job id. */
  private readonly bullKeyPrefix: string;
  private worker: Worker<QueueTicket> | undefined;
  private closing = false;
  /** Jobs this process queued and not yet seen started, with the position last told (0: starting). */
  private readonly local = new Map<string, number>();
  /** Jobs this process's worker is starting or running. */
  private readonly here = new Set<string>();
  private idleWaiters: (() => void)[] = [];
  private refreshTimer: NodeJS.Timeout | undefined;
  /** When a process that runs no job last looked for one that does. */
  private workersCheckedAt = Number.NEGATIVE_INFINITY;
  private onMoved: (moved: { jobId: string; position: number }[]) => void = () => {};
  private onTaken: (jobId: string) => void = () => {};

  constructor(options: RedisJobQueueOptions) {
    this.options = options;
    this.redis = options.redis;
    const key = (name: string) => `${options.prefix}:queue:${name}`;
    this.keys = {
      waiting: key('waiting'),
      running: key('running'),
      runningSince: key('running-since'),
      lastTag: key('last-tag'),
      vtime: key('vtime'),
      sequence: key('sequence'),
      tickets: key('tickets'),
      tags: key('tags'),
    };
    this.queue = new Queue<QueueTicket>('generate', {
      connection: this.redis,
      prefix: `${options.prefix}:bull`,
      defaultJobOptions: { removeOnComplete: true, removeOnFail: { count: 1_000 } },
    });
    this.bullKeyPrefix = this.queue.toKey(bullId(''));
    this.queue.on('error', (error) => this.reportError(error, 'queue error'));
    // Reconnected: the next outage is reported again.
    this.redis.on('ready', () => this.reported.clear());
  }

  /** Messages of connection errors already logged in this outage: BullMQ retries every second or two. */
  private readonly reported = new Set<string>();

  /**
   * Logs a BullMQ error; while Redis is unreachable each kind is logged once (the connection's own
   * 'redis connection lost' line says the rest), not at every retry of every connection.
   */
  private reportError(error: Error & { code?: string }, message: string): void {
    if (this.redis.status !== 'ready' || CONNECTION_ERRORS.has(error.code ?? '')) {
      if (this.reported.has(message)) return;
      this.reported.add(message);
    }
    this.options.logger.warn({ err: error }, message);
  }

  private userKey(userId: string): string {
    return `${this.options.prefix}:queue:user:${userId}`;
  }

  async userJobs(userId: string): Promise<number> {
    // As ENQUEUE counts them: entries older than STALE_AFTER_MS are a dead process's leftovers.
    return this.redis.zcount(this.userKey(userId), `(${Date.now() - STALE_AFTER_MS}`, '+inf');
  }

  available(): boolean {
    return this.redis.status === 'ready';
  }

  async enqueue(ticket: QueueTicket, limits: { perUserLimit: number }): Promise<EnqueueResult> {
    if (this.closing) return { accepted: false, reason: 'closed' };
    const { limiter, imageCapacity } = this.options;
    const now = Date.now();
    const [first, second] = (await this.redis.eval(
      ENQUEUE,
      9,
      this.keys.waiting,
      this.userKey(ticket.userId),
      this.keys.lastTag,
      this.keys.vtime,
      this.keys.sequence,
      this.keys.tickets,
      this.keys.tags,
      this.keys.running,
      limiter.key,
      ticket.jobId,
      ticket.userId,
      ticket.images,
      limits.perUserLimit,
      now,
      now - STALE_AFTER_MS,
      JSON.stringify({ jobId: ticket.jobId, userId: ticket.userId, images: ticket.images }),
      imageCapacity,
      limiter.limit,
      limiter.windowMs,
      this.bullKeyPrefix,
    )) as [number, number];
    if (first < 0) return { accepted: false, reason: 'user_limit', userJobs: second };
    try {
      await this.queue.add('generate', ticket, {
        jobId: bullId(ticket.jobId),
        priority: Math.min(second, MAX_PRIORITY),
      });
    } catch (error) {
      await this.release(ticket, false).catch(() => undefined);
      throw error;
    }
    // Tracked even when it may start at once (0): another process's worker may be the one to start
    // it, and only the refresh tells this process so (`onTaken`), to let go of the job and its
    // interaction. A gateway process, which runs no job, would otherwise keep every one until its deadline.
    this.local.set(ticket.jobId, first);
    this.scheduleRefresh();
    if (this.options.runsJobs === false) void this.checkWorkers();
    return { accepted: true, position: first };
  }

  /**
   * A gateway process queues jobs that only workers run: with none on this Redis the jobs wait until
   * their deadline, which only the operator can fix, so the log says so (at most once a minute).
   * BullMQ counts workers by their connections' names (CLIENT LIST); a Redis that refuses it is not asked again.
   */
  private async checkWorkers(): Promise<void> {
    const now = Date.now();
    if (now - this.workersCheckedAt < WORKERS_CHECK_MS) return;
    this.workersCheckedAt = now;
    try {
      if ((await this.queue.getWorkersCount()) > 0) return;
      this.options.logger.warn(
        { waiting: await this.redis.zcard(this.keys.waiting) },
        'no process runs jobs on this Redis: start one with BOT_ROLE=worker (or all); jobs wait in line until then',
      );
    } catch (error) {
      this.workersCheckedAt = Number.POSITIVE_INFINITY;
      this.options.logger.debug({ err: error }, 'could not count the workers');
    }
  }

  async cancel(jobId: string): Promise<boolean> {
    const ticket = await this.ticket(jobId);
    if (!ticket) return false;
    if (!(await this.release(ticket, true))) return false;
    this.local.delete(jobId);
    // A worker may hold it this instant (about to find it gone); BullMQ then refuses to remove it.
    await this.queue.remove(bullId(jobId)).catch(() => undefined);
    return true;
  }

  async whileWaiting(jobId: string, show: () => Promise<void>): Promise<boolean> {
    const token = randomUUID();
    const key = this.editsKey(jobId);
    const held = (await this.redis.eval(
      HOLD,
      2,
      this.keys.waiting,
      key,
      jobId,
      token,
      WAITING_EDIT_HOLD_MS,
    )) as number;
    if (held !== 1) return false;
    try {
      await show();
    } finally {
      await this.redis.srem(key, token).catch(() => undefined);
    }
    return true;
  }

  async position(jobId: string): Promise<number | undefined> {
    const position = (await this.redis.eval(POSITION, 4, ...this.positionArgs(jobId))) as number;
    if (position === -2) return 0;
    return position < 0 ? undefined : position;
  }

  async ahead(jobId: string): Promise<LineAhead | undefined> {
    const answer = (await this.redis.eval(
      AHEAD,
      4,
      this.keys.waiting,
      this.keys.running,
      this.keys.runningSince,
      this.keys.tickets,
      jobId,
    )) as [[string, string][], number[]] | null;
    if (!answer) return undefined;
    const [running, line] = answer;
    return {
      running: running.map(([images, since]) => ({
        images: Number(images),
        ...(since !== '' && { startedAt: Number(since) }),
      })),
      waiting: line.slice(0, -1).map(Number),
      images: Number(line.at(-1)),
    };
  }

  async stats(): Promise<QueueStats> {
    const [waiting, images] = await Promise.all([
      this.redis.zcard(this.keys.waiting),
      this.redis.hvals(this.keys.running),
    ]);
    return {
      waiting,
      running: images.length,
      runningImages: images.reduce((sum, value) => sum + Number(value), 0),
      imageCapacity: this.options.imageCapacity,
    };
  }

  start(
    worker: QueueWorker,
    onMoved: (moved: { jobId: string; position: number }[]) => void,
    onTaken?: (jobId: string) => void,
    onGaveUp?: (ticket: QueueTicket) => void,
  ): void {
    this.onMoved = onMoved;
    this.onTaken = onTaken ?? (() => {});
    if (this.options.runsJobs === false) return;
    const { imageCapacity, lockDurationMs, stalledIntervalMs, logger } = this.options;
    // At most `imageCapacity` jobs can run at once (each makes an image or more): a bound across
    // processes that spares workers from taking jobs that would only go back.
    void this.queue
      .setGlobalConcurrency(imageCapacity)
      .catch((error: unknown) => logger.warn({ err: error }, 'could not set the global concurrency'));
    this.worker = new Worker<QueueTicket>('generate', (job, token) => this.process(job, token, worker), {
      connection: this.redis,
      prefix: `${this.options.prefix}:bull`,
      concurrency: imageCapacity,
      lockDuration: lockDurationMs,
      stalledInterval: stalledIntervalMs,
      // A job that stalls twice (killed two processes) is failed rather than tried a third time.
      maxStalledCount: 1,
      // After a failed call (Redis away), BullMQ waits this long before it fetches or completes again:
      // 15 s by default, which would keep every process idle that long after Redis is back.
      runRetryDelay: 1_000,
    });
    this.worker.on('error', (error) => this.reportError(error, 'queue worker error'));
    // A job fails in BullMQ only when it stalled more often than allowed or its start failed (the
    // worker never rejects): the service ends it visibly, unless a live run still has it.
    this.worker.on('failed', (job, error) => {
      if (!job) return;
      logger.warn({ jobId: job.data.jobId, err: error }, 'queue gave up on a job');
      void this.release(job.data, false)
        .catch(() => undefined)
        .then(() => onGaveUp?.(job.data));
    });
  }

  private async process(job: Job<QueueTicket>, token: string | undefined, run: QueueWorker): Promise<void> {
    const ticket = job.data;
    const { limiter, imageCapacity, lockDurationMs } = this.options;
    const now = Date.now();
    this.here.add(ticket.jobId);
    let verdict: [string, number?];
    try {
      verdict = (await this.redis.eval(
        START,
        7,
        this.keys.waiting,
        this.keys.running,
        this.keys.runningSince,
        limiter.key,
        this.keys.tags,
        this.keys.vtime,
        this.keys.tickets,
        ticket.jobId,
        ticket.images,
        imageCapacity,
        limiter.limit,
        limiter.windowMs,
        limiter.member(),
        now,
        now - STALE_AFTER_MS - lockDurationMs,
        this.bullKeyPrefix,
      )) as [string, number?];
    } catch (error) {
      this.leave(ticket.jobId);
      throw error;
    }
    if (verdict[0] === 'wait') {
      // The first in line waits, and so does everything behind it: every worker pauses, and BullMQ
      // puts the job back at the front of its priority.
      this.leave(ticket.jobId);
      await this.worker!.rateLimit(Number(verdict[1]));
      throw Worker.RateLimitError();
    }
    if (verdict[0] === 'turn') {
      // BullMQ handed out a job behind the first in line (two processes queued them in one order and
      // added them to BullMQ in the other). Back at the front, as a rate limit would put it, BullMQ
      // would hand it out again and again and never the first: it goes behind its peers instead.
      this.leave(ticket.jobId);
      await job.moveToDelayed(Date.now() + CAPACITY_RETRY_MS, token);
      throw new DelayedError();
    }
    if (verdict[0] === 'gone') {
      this.leave(ticket.jobId);
      return;
    }
    this.local.delete(ticket.jobId);
    this.scheduleRefresh();
    try {
      // A position edit that began before the start (in any process) lands before the job's first
      // edit as running; none can begin after it.
      if (verdict[0] === 'started') await this.editsSettled(ticket.jobId);
      await run(ticket);
    } finally {
      await this.release(ticket, false).catch((error: unknown) =>
        this.options.logger.error({ jobId: ticket.jobId, err: error }, 'could not release a finished job'),
      );
      this.leave(ticket.jobId);
      this.scheduleRefresh();
    }
  }

  private positionArgs(jobId: string): (string | number)[] {
    const { limiter, imageCapacity } = this.options;
    return [
      this.keys.waiting,
      this.keys.running,
      this.keys.tickets,
      limiter.key,
      imageCapacity,
      limiter.limit,
      limiter.windowMs,
      jobId,
      this.bullKeyPrefix,
    ];
  }

  private editsKey(jobId: string): string {
    return `${this.options.prefix}:queue:edits:${jobId}`;
  }

  /** Resolves once no position edit of the job is in flight, in any process (at most `WAITING_EDIT_HOLD_MS`). */
  async editsSettled(jobId: string): Promise<void> {
    const key = this.editsKey(jobId);
    const deadline = Date.now() + WAITING_EDIT_HOLD_MS;
    while (Date.now() < deadline) {
      try {
        if ((await this.redis.exists(key)) === 0) return;
      } catch {
        return;
      }
      await wait(EDIT_POLL_MS);
    }
  }

  private leave(jobId: string): void {
    this.here.delete(jobId);
    if (this.here.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async ticket(jobId: string): Promise<QueueTicket | undefined> {
    const raw = await this.redis.hget(this.keys.tickets, jobId);
    return raw ? (JSON.parse(raw) as QueueTicket) : undefined;
  }

  private async release(ticket: Pick<QueueTicket, 'jobId' | 'userId'>, onlyIfWaiting: boolean) {
    return (
      ((await this.redis.eval(
        RELEASE,
        6,
        this.keys.waiting,
        this.keys.running,
        this.keys.runningSince,
        this.userKey(ticket.userId),
        this.keys.tickets,
        this.keys.tags,
        ticket.jobId,
        onlyIfWaiting ? '1' : '0',
      )) as number) === 1
    );
  }

  /** Looks up the positions of this process's waiting jobs soon, then every second while there are any. */
  private scheduleRefresh(delayMs = 50): void {
    if (this.closing || this.local.size === 0) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.refresh(), delayMs).unref();
  }

  private async refresh(): Promise<void> {
    const ids = [...this.local.keys()];
    try {
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.eval(POSITION, 4, ...this.positionArgs(id));
      const results = (await pipeline.exec()) ?? [];
      const moved: { jobId: string; position: number }[] = [];
      ids.forEach((jobId, index) => {
        const [error, value] = results[index] ?? [new Error('no answer')];
        if (error || !this.local.has(jobId)) return;
        const position = Number(value);
        if (position >= 0) {
          if (this.local.get(jobId) !== position) moved.push({ jobId, position });
          this.local.set(jobId, position);
        } else if (!this.here.has(jobId)) {
          // Started by another process, or gone: that process answers from now on.
          this.local.delete(jobId);
          this.onTaken(jobId);
        }
      });
      if (moved.length > 0) this.onMoved(moved);
    } catch (error) {
      this.options.logger.debug({ err: error }, 'could not refresh queue positions');
    }
    this.scheduleRefresh(POSITION_REFRESH_MS);
  }

  async stop(): Promise<QueueTicket[]> {
    // Stops taking jobs now; the jobs running here finish (`idle`) while the waiting ones stay in
    // Redis for the other processes, or for this bot's next start. Jobs may still be queued until
    // `close`: a command taken just before the stop goes in line for the others.
    void this.worker?.pause(true).catch(() => undefined);
    return [];
  }

  idle(): Promise<void> {
    if (this.here.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops the worker and lets go of Redis. It waits for the jobs running here unless `force`, which
   * leaves them to BullMQ's stalled-job recovery in another process (for a stop that cannot wait).
   */
  async close(force = false): Promise<void> {
    this.closing = true;
    clearTimeout(this.refreshTimer);
    await this.worker?.close(force);
    await this.queue.close();
  }
}
