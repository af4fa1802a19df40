import { setTimeout as wait } from 'node:timers/promises';
import { RedisBudget, RedisJobTimeStore, type BudgetLedger, type SdxlClient } from '@sdxl-kit/client';
import { Client, Events, GatewayIntentBits, RESTEvents, Routes } from 'discord.js';
import type { DestinationStream } from 'pino';
import { BotBudgets } from './budget/budgets.ts';
import { RedisNoticeClaims, type NoticeClaims } from './budget/notices.ts';
import { SqliteBudget } from './budget/sqlite-budget.ts';
import { LocalSubmitClaims, LoneCopy, type CopyClaims, type SubmitClaims } from './claims.ts';
import { ConfigError, configSecrets, type BotConfig } from './config.ts';
import type { BotContext } from './context.ts';
import { CreditMonitor } from './credits.ts';
import { botCaches, HANDLER_SWEEP_MS } from './discord-memory.ts';
import * as clientReady from './events/client-ready.ts';
import * as interactionCreate from './events/interaction-create.ts';
import { SettingJobTimeStore } from './job-times.ts';
import { ImagineService } from './jobs/imagine-service.ts';
import { createLogger, type Logger } from './logger.ts';
import { BotMetrics } from './metrics.ts';
import { startOperatorPort, type HealthStatus, type OperatorPort } from './operator-port.ts';
import { MemoryJobQueue } from './queue/memory-queue.ts';
import { RedisJobQueue } from './queue/redis-queue.ts';
import { RedisRateLimiter } from './queue/redis-rate-limiter.ts';
import { SlidingWindowLimiter } from './queue/sliding-window-limiter.ts';
import type { JobQueue, RateLimiter } from './queue/types.ts';
import { RedisCopyClaims, RedisSubmitClaims } from './redis/claims.ts';
import { connectRedis, RedisUnreachableError, redisWhere } from './redis/connection.ts';
import { RedisRecentJobs } from './redis/recent-jobs.ts';
import { createSdxlClient } from './sdxl.ts';
import type { JobStore } from './store/job-store.ts';
import { RedisJobStore } from './store/redis-job-store.ts';
import { SqliteJobStore } from './store/sqlite-job-store.ts';

const PURGE_EVERY_MS = 3_600_000;
/** How long start-up waits for Redis before it gives up with a line naming REDIS_URL. */
const REDIS_CONNECT_MS = 10_000;

export { RedisUnreachableError };

export interface Bot {
  client: Client;
  context: BotContext;
  /** Logs in and resolves once Discord says the bot is ready. */
  start(): Promise<void>;
  /** Finishes or reports the jobs in flight, then logs out and closes the store. */
  stop(): Promise<void>;
}

/** Assembles one bot process: the Discord client, the SDXL client, the queue and the job store. */
export function createBot(
  config: BotConfig,
  options: { logDestination?: DestinationStream; logger?: Logger; sdxl?: SdxlClient } = {},
): Bot {
  const base =
    options.logger ??
    createLogger({ level: config.logLevel, secrets: configSecrets(config) }, options.logDestination);
  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    makeCache: botCaches(),
    rest: {
      handlerSweepInterval: HANDLER_SWEEP_MS,
      ...(config.discordApiUrl && { api: config.discordApiUrl }),
    },
  });
  // Shards and roles write to one terminal (a ShardingManager's children share its stdout): each line
  // says which process wrote it. discord.js read the shard from SHARDS/SHARD_COUNT, as the manager set them.
  const shards = (client.options.shardCount ?? 1) > 1 ? client.options.shards : undefined;
  const logger =
    config.role === 'all' && !shards
      ? base
      : base.child({ ...(config.role !== 'all' && { role: config.role }), ...(shards && { shards }) });
  // With REDIS_URL, every shared part lives on Redis; without it, in this process and a SQLite file.
  const redis = config.redisUrl ? connectRedis(config.redisUrl, logger, 'bot') : undefined;
  let store: JobStore;
  let limiter: RateLimiter;
  let queue: JobQueue;
  let copy: CopyClaims;
  let submits: SubmitClaims;
  let ledger: BudgetLedger;
  let claims: NoticeClaims;
  let embeddedBudget: SqliteBudget | undefined;
  if (redis) {
    const prefix = config.redisPrefix;
    // Copies logged in as the same shard receive the same interactions: one claim decides who answers.
    copy = new RedisCopyClaims(redis, {
      prefix,
      shard: shardName(client),
      logger,
    });
    submits = new RedisSubmitClaims(redis, {
      prefix,
      holdMs: config.jobLockMs,
      keepMs: config.jobTtlHours * 3_600_000,
      logger,
    });
    store = new RedisJobStore(redis, { prefix });
    // One Redis, one prefix: budgets count across every process, keys `<prefix>:budget:<id>:<window>:<period>`.
    ledger = new RedisBudget(redis, { prefix: `${prefix}:` });
    claims = new RedisNoticeClaims(redis, { prefix });
    const shared = new RedisRateLimiter(redis, {
      prefix,
      limit: config.requestsPerMinute,
      windowMs: config.rateWindowMs,
    });
    limiter = shared;
    queue = new RedisJobQueue({
      redis,
      prefix,
      imageCapacity: config.maxInFlight,
      limiter: shared,
      lockDurationMs: config.jobLockMs,
      stalledIntervalMs: config.stalledCheckMs,
      // A gateway process queues jobs and shows their positions; the workers (and `all`) run them.
      runsJobs: config.role !== 'gateway',
      logger,
    });
  } else {
    try {
      store = new SqliteJobStore(config.databasePath);
      // Beside the jobs, in the same file: a day's spend and the holds of jobs in line survive a restart.
      embeddedBudget = new SqliteBudget(config.databasePath);
      ledger = embeddedBudget;
      claims = embeddedBudget;
    } catch (error) {
      throw new ConfigError(
        'BOT_DATABASE',
        `"${config.databasePath}" could not be opened (${(error as Error).message}); allowed: a file path in a directory the bot can write to`,
      );
    }
    const local = new SlidingWindowLimiter({
      limit: config.requestsPerMinute,
      windowMs: config.rateWindowMs,
    });
    limiter = local;
    queue = new MemoryJobQueue({ imageCapacity: config.maxInFlight, limiter: local });
    copy = new LoneCopy();
    submits = new LocalSubmitClaims();
  }
  const jobTimes = redis
    ? new RedisJobTimeStore(redis, `${config.redisPrefix}:`)
    : new SettingJobTimeStore(store);
  const sdxl = options.sdxl ?? createSdxlClient(config, logger, redis, jobTimes);
  /** Posts to the admin channel (and the log); never rejects. */
  const tellAdmins = (what: string) => async (content: string) => {
    logger.warn({ notice: content }, what);
    if (!config.adminChannelId) return;
    try {
      await client.rest.post(Routes.channelMessages(config.adminChannelId), {
        body: { content, allowed_mentions: { parse: [] } },
      });
    } catch (error) {
      logger.error({ err: error, channelId: config.adminChannelId }, 'could not post to the admin channel');
    }
  };
  const credits = new CreditMonitor({
    threshold: config.lowCreditsThreshold,
    store,
    inFlightImages: config.maxInFlight,
    notify: tellAdmins('credit notice'),
  });
  const budgets = new BotBudgets({
    ledger,
    claims,
    store,
    defaults: config.budgets,
    prices: sdxl.prices,
    notify: tellAdmins('budget notice'),
    logger,
  });
  // On Redis, start estimates come from every process's finished jobs: a gateway has none of its own.
  const recent = redis ? new RedisRecentJobs(redis, { prefix: config.redisPrefix, logger }) : undefined;
  // The service is made below; the gauges read it only when scraped.
  let running = (): number => 0;
  const metrics = new BotMetrics({
    // While Redis is away the count would wait for it: the scrape says NaN instead.
    waiting: async () => (queue.available() ? (await queue.stats()).waiting : Number.NaN),
    running: () => running(),
    creditsLeft: () => credits.lastKnown,
  });
  client.rest.on(RESTEvents.Response, (_request, response) => {
    if (response.status === 429) metrics.rateLimitedBy('discord');
  });
  // What every command and button sees, and the job service on top of it.
  const common = { config, sdxl, store, queue, limiter, credits, budgets, logger, copy };
  const imagine = new ImagineService({
    ...common,
    ...(recent && { recent }),
    submits,
    metrics,
    discord: client,
  });
  running = () => imagine.runningCount;
  const context: BotContext = { ...common, imagine };

  // A worker never logs in to the gateway, so no interaction reaches it: it answers jobs through REST
  // (the job's stored interaction token, else the channel) with the bot token set below.
  const handling = new Set<Promise<void>>();
  client.on(interactionCreate.name, (interaction) => {
    const handled = interactionCreate.execute(interaction, context);
    handling.add(handled);
    void handled.finally(() => handling.delete(handled));
  });
  client.once(clientReady.name, (ready) => void clientReady.execute(ready, context));
  client.on(Events.Error, (error) => logger.error({ err: error }, 'discord client error'));
  client.on(Events.Warn, (message) => logger.warn({ source: 'discord' }, message));

  let state: 'starting' | 'started' | 'draining' = 'starting';
  const health = async (): Promise<HealthStatus> => {
    if (state !== 'started') return state;
    if (redis && !(await answers(redis))) return 'redis unreachable';
    return 'ready';
  };
  let port: OperatorPort | undefined;

  let purgeTimer: NodeJS.Timeout | undefined;
  const purge = async () => {
    const removed = await store.purgeCreatedBefore(Date.now() - config.jobTtlHours * 3_600_000);
    if (removed > 0) logger.info({ removed }, 'expired jobs purged');
  };

  return {
    client,
    context,
    async start() {
      if (config.httpPort !== undefined) {
        port = await startOperatorPort({
          host: config.httpHost,
          port: config.httpPort,
          metrics,
          health,
          logger,
        });
      }
      if (redis) await reachable(redis, config.redisUrl!);
      await purge();
      purgeTimer = setInterval(() => void purge().catch(() => undefined), PURGE_EVERY_MS).unref();
      if (config.role === 'worker') {
        client.rest.setToken(config.discordToken);
        // What login would have found out, before any job is taken: a token Discord refuses is named
        // now, not at the first result.
        await client.rest.get(Routes.user());
        imagine.start();
        state = 'started';
        logger.info({ role: config.role }, 'worker ready: running jobs, not logged in to the gateway');
        return;
      }
      imagine.start();
      const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
      await client.login(config.discordToken);
      await ready;
      // Logged in, so a result whose reply can no longer be edited can be posted in its channel.
      const unfinished = await imagine.recoverUnfinished();
      if (unfinished > 0) logger.warn({ unfinished }, 'jobs the last process left unfinished were picked up');
      copy.ready();
      state = 'started';
      logger.info('taking interactions');
    },
    async stop() {
      clearInterval(purgeTimer);
      state = 'draining';
      logger.info({ jobs: imagine.liveCount }, 'stopping: finishing the jobs in flight');
      // New interactions go to the other copies from now on; the ones this copy took are answered
      // (on a shared queue their jobs go in line for the others) before the jobs are wound up.
      await copy.drain();
      await Promise.race([Promise.all(handling), wait(config.shutdownGraceMs, undefined, { ref: false })]);
      await imagine.shutdown(config.shutdownGraceMs);
      await client.destroy();
      await copy.close();
      await queue.close();
      await store.close();
      embeddedBudget?.close();
      recent?.close();
      if (redis) await redis.quit().catch(() => redis.disconnect());
      await port?.close();
      logger.info('stopped');
    },
  };
}

/** How long a health check waits for Redis's PONG. */
const PING_MS = 1_000;

/** Whether Redis answers a PING now (not once it is back: commands wait in ioredis's queue meanwhile). */
async function answers(redis: NonNullable<ReturnType<typeof connectRedis>>): Promise<boolean> {
  if (redis.status !== 'ready') return false;
  const pong = await Promise.race([
    redis.ping().catch(() => undefined),
    wait(PING_MS, undefined, { ref: false }),
  ]);
  return pong === 'PONG';
}

/** The shard a process logs in as (`0-of-1` unsharded): the copies that receive the same events. */
function shardName(client: Client): string {
  const { shards, shardCount } = client.options;
  const first = Array.isArray(shards) ? (shards[0] as number) : typeof shards === 'number' ? shards : 0;
  return `${first}-of-${shardCount ?? 1}`;
}

/** Resolves once Redis answers; else stops trying and names REDIS_URL (without its password). */
async function reachable(redis: NonNullable<ReturnType<typeof connectRedis>>, url: string): Promise<void> {
  if (redis.status === 'ready') return;
  const ready = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), REDIS_CONNECT_MS);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  if (await ready) return;
  redis.disconnect();
  throw new RedisUnreachableError(
    `REDIS_URL: could not reach Redis at ${redisWhere(url)} within ${REDIS_CONNECT_MS / 1000} s`,
  );
}
