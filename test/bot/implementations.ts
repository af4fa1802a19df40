import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { after } from 'node:test';
import { Redis } from 'ioredis';
import { createLogger } from '../../bot/src/logger.ts';
import { MemoryJobQueue } from '../../bot/src/queue/memory-queue.ts';
import { RedisJobQueue } from '../../bot/src/queue/redis-queue.ts';
import { RedisRateLimiter } from '../../bot/src/queue/redis-rate-limiter.ts';
import { SlidingWindowLimiter } from '../../bot/src/queue/sliding-window-limiter.ts';
import type { JobQueue, RateLimiter } from '../../bot/src/queue/types.ts';
import type { JobStore } from '../../bot/src/store/job-store.ts';
import { RedisJobStore } from '../../bot/src/store/redis-job-store.ts';
import { SqliteJobStore } from '../../bot/src/store/sqlite-job-store.ts';
import { skipWithoutRedis, startRedis, type TestRedis } from '../support/redis.ts';

/**
 * The embedded implementations and the Redis ones, for contract tests that run the same assertions
 * against each: `for (const kind of QUEUES) describe(kind.name, ...)`. One real redis-server per test
 * file, started on first use; every queue or store gets keys of its own.
 */
let server: Promise<TestRedis> | undefined;
const connections: Redis[] = [];
/** Queues a failed test left open, closed after the file so it can exit. */
const open = new Set<{ close(force?: boolean): Promise<void> }>();

// Registered when the file loads, on the file's root: a hook added inside a test would run after that test.
// Forced: a failed test leaves jobs its gated worker never lets finish, and a close that waited for
// them kept the file running until the test runner's own timeout.
after(async () => {
  await Promise.all([...open].map((queue) => queue.close(true).catch(() => undefined)));
  for (const connection of connections.splice(0)) connection.disconnect();
  if (server) await (await server).close();
});

function redisServer(): Promise<TestRedis> {
  server ??= startRedis();
  return server;
}

async function connection(): Promise<Redis> {
  const redis = new Redis((await redisServer()).url, { maxRetriesPerRequest: null });
  connections.push(redis);
  return redis;
}

const quietLogger = () =>
  createLogger(
    { level: 'warn' },
    new Writable({
      write(_chunk, _encoding, done) {
        done();
      },
    }),
  );

export interface QueueKind {
  name: string;
  /** The test's skip option: set when this kind needs a redis-server the machine lacks. */
  skip: string | false;
  make(options: { imageCapacity: number; limit: number; windowMs: number }): Promise<{
    queue: JobQueue;
    limiter: RateLimiter;
    close(): Promise<void>;
    /** On Redis: the connection and the queue's key prefix, for a test that sets up what a race leaves. */
    redis?: Redis;
    prefix?: string;
  }>;
}

export const QUEUES: QueueKind[] = [
  {
    name: 'the in-memory queue',
    skip: false,
    async make({ imageCapacity, limit, windowMs }) {
      const limiter = new SlidingWindowLimiter({ limit, windowMs });
      const queue = new MemoryJobQueue({ imageCapacity, limiter });
      return { queue, limiter, close: () => queue.close() };
    },
  },
  {
    name: 'the Redis queue (BullMQ)',
    skip: skipWithoutRedis,
    async make({ imageCapacity, limit, windowMs }) {
      const redis = await connection();
      const prefix = `test-${randomUUID()}`;
      const limiter = new RedisRateLimiter(redis, { prefix, limit, windowMs });
      const queue = new RedisJobQueue({
        redis,
        prefix,
        imageCapacity,
        limiter,
        lockDurationMs: 30_000,
        stalledIntervalMs: 15_000,
        logger: quietLogger(),
      });
      open.add(queue);
      return {
        queue,
        limiter,
        redis,
        prefix,
        close: async () => {
          open.delete(queue);
          await queue.close();
        },
      };
    },
  },
];

export interface StoreKind {
  name: string;
  skip: string | false;
  make(): Promise<JobStore>;
}

export const STORES: StoreKind[] = [
  { name: 'the SQLite job store', skip: false, make: async () => new SqliteJobStore(':memory:') },
  {
    name: 'the Redis job store',
    skip: skipWithoutRedis,
    make: async () => new RedisJobStore(await connection(), { prefix: `test-${randomUUID()}` }),
  },
];

/** Resolves once `check` holds, re-checked every 10 ms; rejects naming `what` after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface BotMode {
  name: string;
  skip: string | false;
  /** Environment for `startWorld`: nothing for the embedded bot, REDIS_URL and a fresh prefix for Redis. */
  env(): Promise<Record<string, string>>;
}

/** The bot as it runs alone (memory queue, SQLite) and on Redis, for tests that hold for both. */
export const BOT_MODES: BotMode[] = [
  { name: 'embedded', skip: false, env: async () => ({}) },
  {
    name: 'on Redis',
    skip: skipWithoutRedis,
    env: async () => ({ REDIS_URL: (await redisServer()).url, BOT_REDIS_PREFIX: `test-${randomUUID()}` }),
  },
];
