import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { REST, Routes, ShardingManager, type RESTGetAPIGatewayBotResult, type Shard } from 'discord.js';
import { ConfigError, configSecrets, loadConfig, type BotConfig } from './config.ts';
import { createLogger, flushLogger } from './logger.ts';
import { fail } from './startup.ts';

const MAIN = new URL('./main.ts', import.meta.url).pathname;
/** Discord lets each identify bucket start one session per 5 s; discord.js's own spacing adds 0.5 s. */
const IDENTIFY_SPACING_MS = 5_500;
/** How long a shard may take from its spawn to Discord's READY (discord.js's default is 30 s). */
const READY_TIMEOUT_MS = 60_000;

/** BOT_SHARDS: `auto` (what Discord recommends for the bot's guilds) or a number of shards. */
function shardsWanted(env: NodeJS.ProcessEnv): number | 'auto' {
  const raw = env.BOT_SHARDS?.trim() || 'auto';
  if (raw.toLowerCase() === 'auto') return 'auto';
  const count = Number(raw);
  if (!Number.isInteger(count) || count < 1 || count > 4_096) {
    throw new ConfigError(
      'BOT_SHARDS',
      `"${raw}" is not allowed; allowed: auto (Discord's recommendation) or a whole number from 1 to 4096`,
    );
  }
  return count;
}

/**
 * `npm run start:shards`: the bot as discord.js shards, one process each, started and watched by a
 * discord.js ShardingManager. Each child is `main.ts` as `npm start` runs it; discord.js hands it
 * SHARDS and SHARD_COUNT, so its Client logs in as that shard and Discord sends it that shard's guilds.
 * The shards share the queue, pace, quotas and jobs through REDIS_URL, which is therefore required.
 * SIGTERM/SIGINT stop every shard cleanly (each finishes or hands over its jobs), then the manager.
 */
async function main(): Promise<void> {
  let config: BotConfig | undefined;
  let wanted: number | 'auto';
  try {
    config = loadConfig(process.env);
    wanted = shardsWanted(process.env);
    if (!config.redisUrl) {
      throw new ConfigError(
        'REDIS_URL',
        'required to run shards: each shard is a process of its own, and without Redis each would keep its own queue, account pace and SQLite store (set REDIS_URL=redis://host:6379, or run one process with npm start)',
      );
    }
    if (config.role === 'worker') {
      throw new ConfigError(
        'BOT_ROLE',
        '"worker" is not allowed for shards, which log in to the gateway; allowed: all or gateway (start workers with npm start)',
      );
    }
  } catch (error) {
    fail(error, config, 'Configuration error');
  }
  const logger = createLogger({
    level: config.logLevel,
    secrets: configSecrets(config),
  }).child({ role: 'shard manager' });

  // What Discord says of this bot: its recommended shard count and how many sessions may start at once.
  let gateway: RESTGetAPIGatewayBotResult;
  try {
    const rest = new REST(config.discordApiUrl ? { api: config.discordApiUrl } : {});
    gateway = (await rest
      .setToken(config.discordToken)
      .get(Routes.gatewayBot())) as RESTGetAPIGatewayBotResult;
  } catch (error) {
    fail(error, config, 'Could not start');
  }
  const count = wanted === 'auto' ? gateway.shards : wanted;
  // Shards start one after another, each once the one before is ready and 5.5 s / max_concurrency
  // after it: any max_concurrency shards in a row fall in different identify buckets (shard id modulo
  // max_concurrency), so each bucket still starts one session per 5.5 s, and large bots wait less.
  const maxConcurrency = Math.max(1, gateway.session_start_limit.max_concurrency);
  const spacingMs = Math.ceil(IDENTIFY_SPACING_MS / maxConcurrency);

  // A shard must not replace itself to set MALLOC_ARENA_MAX (see malloc-arena.ts): the exec would cut
  // its IPC channel to this manager. It is set here for every child instead; an operator's value stays.
  process.env.MALLOC_ARENA_MAX ??= '2';
  const manager = new ShardingManager(MAIN, {
    totalShards: count,
    token: config.discordToken,
    mode: 'process',
    // Not while starting: a shard that cannot start stops them all instead (its line says why).
    respawn: false,
    // The flags this manager was started with (--env-file-if-exists, --no-warnings) go to each shard.
    execArgv: process.execArgv,
  });
  let stopping = false;
  const exitCodes = new Map<number, number | null>();
  manager.on('shardCreate', (shard: Shard) => {
    // mode 'process': each shard's child is a ChildProcess.
    shard.on('spawn', (child) =>
      logger.info({ shard: shard.id, pid: (child as ChildProcess).pid }, 'shard started'),
    );
    shard.on('ready', () => logger.info({ shard: shard.id, of: count }, 'shard ready'));
    shard.on('death', (process) => {
      const child = process as ChildProcess;
      exitCodes.set(shard.id, child.exitCode);
      if (stopping) logger.info({ shard: shard.id, code: child.exitCode }, 'shard stopped');
      else
        logger.error(
          { shard: shard.id, code: child.exitCode, signal: child.signalCode },
          manager.respawn ? 'shard exited; starting it again' : 'shard exited',
        );
    });
    shard.on('error', (error: unknown) => logger.error({ shard: shard.id, err: error }, 'shard error'));
  });

  let stopped: Promise<never> | undefined;
  const stop = (why: string, code = 0): Promise<never> => {
    stopped ??= (async () => {
      stopping = true;
      manager.respawn = false;
      logger.info({ why, shards: manager.shards.size }, 'stopping every shard');
      // Each shard finishes or hands over its jobs (BOT_SHUTDOWN_GRACE_MS) and exits on its own.
      await Promise.all(
        [...manager.shards.values()].map((shard) => {
          const child = shard.process;
          if (!child || child.exitCode !== null || child.signalCode !== null) return undefined;
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          return exited;
        }),
      );
      const failed = [...exitCodes.values()].some((exitCode) => exitCode !== 0);
      logger.info({ shards: manager.shards.size }, 'every shard stopped');
      await flushLogger(logger);
      process.exit(code || (failed ? 1 : 0));
    })();
    return stopped;
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  logger.info({ shards: count, recommended: gateway.shards, spacingMs }, 'starting shards');
  for (let id = 0; id < count && !stopping; id++) {
    const shard = manager.createShard(id);
    try {
      await Promise.all([shard.spawn(READY_TIMEOUT_MS), id < count - 1 ? sleep(spacingMs) : undefined]);
    } catch (error) {
      if (stopping) break;
      // Its own line (stderr, above) says why; exit 2 when that was a setting, as npm start does.
      const code = exitCodes.get(id);
      process.stderr.write(
        `Could not start: shard ${id} of ${count} ${code === undefined ? `was not ready within ${READY_TIMEOUT_MS / 1000} s` : `exited (code ${code}) before it was ready`}; see its line above\n`,
      );
      logger.debug({ err: error }, 'shard did not start');
      await stop('a shard did not start', code === 2 ? 2 : 1);
    }
  }
  if (stopping) return;
  // From now on a shard that exits (a crash) is started again by discord.js, until SIGTERM.
  manager.respawn = true;
  logger.info({ shards: count }, 'every shard is ready');
}

await main();
