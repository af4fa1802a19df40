import { createBot } from './bot.ts';
import { ConfigError, loadConfig } from './config.ts';

/** `npm start`: the bot with its configuration from the environment; SIGTERM/SIGINT stop it cleanly. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(
        `Configuration error: ${error.message}\nSee bot/.env.example for every variable.\n`,
      );
      process.exit(2);
    }
    throw error;
  }
  const bot = createBot(config);
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    bot.context.logger.info({ signal }, 'signal received');
    stopping ??= bot.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        bot.context.logger.error({ err: error }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await bot.start();
}

await main();
