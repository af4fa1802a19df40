import type { SdxlClient } from '@sdxl-kit/client';
import { Client, Events, GatewayIntentBits, Routes } from 'discord.js';
import type { DestinationStream } from 'pino';
import { ConfigError, type BotConfig } from './config.ts';
import type { BotContext } from './context.ts';
import { CreditMonitor } from './credits.ts';
import { botCaches, HANDLER_SWEEP_MS } from './discord-memory.ts';
import * as clientReady from './events/client-ready.ts';
import * as interactionCreate from './events/interaction-create.ts';
import { ImagineService } from './jobs/imagine-service.ts';
import { createLogger, type Logger } from './logger.ts';
import { MemoryJobQueue } from './queue/memory-queue.ts';
import { SlidingWindowLimiter } from './queue/sliding-window-limiter.ts';
import { createSdxlClient } from './sdxl.ts';
import { SqliteJobStore } from './store/sqlite-job-store.ts';

const PURGE_EVERY_MS = 3_600_000;

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
  const logger =
    options.logger ??
    createLogger(
      { level: config.logLevel, secrets: [config.discordToken, config.sdxlApiKey] },
      options.logDestination,
    );
  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    makeCache: botCaches(),
    rest: {
      handlerSweepInterval: HANDLER_SWEEP_MS,
      ...(config.discordApiUrl && { api: config.discordApiUrl }),
    },
  });
  const sdxl = options.sdxl ?? createSdxlClient(config, logger);
  let store: SqliteJobStore;
  try {
    store = new SqliteJobStore(config.databasePath);
  } catch (error) {
    throw new ConfigError(
      'BOT_DATABASE',
      `"${config.databasePath}" could not be opened (${(error as Error).message}); allowed: a file path in a directory the bot can write to`,
    );
  }
  const limiter = new SlidingWindowLimiter({
    limit: config.requestsPerMinute,
    windowMs: config.rateWindowMs,
  });
  const queue = new MemoryJobQueue({ imageCapacity: config.maxInFlight, limiter });
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
  const imagine = new ImagineService({
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
      await purge();
      purgeTimer = setInterval(() => void purge().catch(() => undefined), PURGE_EVERY_MS).unref();
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
      await store.close();
      logger.info('stopped');
    },
  };
}
