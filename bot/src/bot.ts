import { RedisJobTimeStore, type SdxlClient } from '@sdxl-kit/client';
import { Client, Events, GatewayIntentBits, Routes } from 'discord.js';
import type { DestinationStream } from 'pino';
import { ConfigError, configSecrets, type BotConfig } from './config.ts';
import type { BotContext } from './context.ts';
import { CreditMonitor } from './credits.ts';
import { botCaches, HANDLER_SWEEP_MS } from './discord-memory.ts';
import * as clientReady from './events/client-ready.ts';
import * as interactionCreate from './events/interaction-create.ts';
import { SettingJobTimeStore } from './job-times.ts';
import { ImagineService } from './jobs/imagine-service.ts';
import { createLogger, type Logger } from './logger.ts';
import { MemoryJobQueue } from './queue/memory-queue.ts';
import { RedisJobQueue } from './queue/redis-queue.ts';
import { RedisRateLimiter } from './queue/redis-rate-limiter.ts';
import { SlidingWindowLimiter } from './queue/sliding-window-limiter.ts';
import type { JobQueue, RateLimiter } from './queue/types.ts';
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
  if (redis) {
    const prefix = config.redisPrefix;
    store = new RedisJobStore(redis, { prefix });
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
  }
  const jobTimes = redis
    ? new RedisJobTimeStore(redis, `${config.redisPrefix}:`)
    : new SettingJobTimeStore(store);
  const sdxl = options.sdxl ?? createSdxlClient(config, logger, redis, jobTimes);
  const credits = new CreditMonitor({
    threshold: config.lowCreditsThreshold,
    store,
    inFlightImages: config.maxInFlight,
    notify: async (content) => {
      logger.warn({ notice: content }, 'credit notice');
      if (!config.adminChannelId) return;
      try {
        await client.rest.post(Routes.channelMessages(config.adminChannelId), {
          body: { content, allowed_mentions: { parse: [] } },
        });
      } catch (error) {
        logger.error({ err: error, channelId: config.adminChannelId }, 'could not post to the admin channel');
      }
    },
  });
  // On Redis, start estimates come from every process's finished jobs: a gateway has none of its own.
  const recent = redis ? new RedisRecentJobs(redis, { prefix: config.redisPrefix, logger }) : undefined;
  const imagine = new ImagineService({
    ...(recent && { recent }),
    config,
    sdxl,
    store,
    queue,
    limiter,
    credits,
    logger,
    discord: client,
  });
  const context: BotContext = { config, sdxl, store, queue, limiter, credits, imagine, logger };

  // A worker never logs in to the gateway, so no interaction reaches it: it answers jobs through REST
  // (the job's stored interaction token, else the channel) with the bot token set below.
  client.on(interactionCreate.name, (interaction) => void interactionCreate.execute(interaction, context));
  client.once(clientReady.name, (ready) => void clientReady.execute(ready, context));
  client.on(Events.Error, (error) => logger.error({ err: error }, 'discord client error'));
  client.on(Events.Warn, (message) => logger.warn({ source: 'discord' }, message));

  let purgeTimer: NodeJS.Timeout | undefined;
  const purge = async () => {
    const removed = await store.purgeCreatedBefore(Date.now() - config.jobTtlHours * 3_600_000);
    if (removed > 0) logger.info({ removed }, 'expired jobs purged');
  };

  return {
    client,
    context,
    async start() {
      if (redis) await reachable(redis, config.redisUrl!);
      await purge();
      purgeTimer = setInterval(() => void purge().catch(() => undefined), PURGE_EVERY_MS).unref();
      if (config.role === 'worker') {
        client.rest.setToken(config.discordToken);
        // What login would have found out, before any job is taken: a token Discord refuses is named
        // now, not at the first result.
        await client.rest.get(Routes.user());
        imagine.start();
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
    },
    async stop() {
      clearInterval(purgeTimer);
      logger.info({ jobs: imagine.liveCount }, 'stopping: finishing the jobs in flight');
      await imagine.shutdown(config.shutdownGraceMs);
      await client.destroy();
      await queue.close();
      await store.close();
      recent?.close();
      if (redis) await redis.quit().catch(() => redis.disconnect());
      logger.info('stopped');
    },
  };
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
