import './malloc-arena.ts';
import { createBot, type Bot } from './bot.ts';
import { loadConfig, type BotConfig } from './config.ts';
import { flushLogger } from './logger.ts';
import { fail } from './startup.ts';

/** `npm start`: the bot with its configuration from the environment; SIGTERM/SIGINT stop it cleanly. */
async function main(): Promise<void> {
  let config: BotConfig | undefined;
  let bot: Bot;
  try {
    config = loadConfig(process.env);
    bot = createBot(config);
  } catch (error) {
    fail(error, config, 'Configuration error');
  }
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    bot.context.logger.info({ signal }, 'signal received');
    // The last lines are flushed for at most 2 s: a reader that does not read must not keep the bot up.
    stopping ??= bot.stop().then(
      () => flushLogger(bot.context.logger).then(() => process.exit(0)),
      (error: unknown) => {
        bot.context.logger.error({ err: error }, 'unclean stop');
        return flushLogger(bot.context.logger).then(() => process.exit(1));
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // A shard of shards.ts (or any parent with an IPC channel): once the parent is gone, even killed with
  // SIGKILL, the channel closes, and the shard stops too rather than run on unsupervised.
  if (process.channel) process.on('disconnect', () => stop('parent gone'));
  try {
    await bot.start();
  } catch (error) {
    fail(error, config, 'Could not start');
  }
}

await main();
