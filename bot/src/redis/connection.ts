import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

/** Redis could not be reached at start-up; the message names REDIS_URL without its password. */
export class RedisUnreachableError extends Error {
  readonly code = 'REDIS_UNREACHABLE';
}

/** Where a URL points, without its credentials: what the log may say about it. */
export function redisWhere(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * One ioredis connection. Commands sent while Redis is away wait in ioredis's offline queue and run
 * when it is back (`maxRetriesPerRequest: null`, which BullMQ's blocking worker connection needs too),
 * so a job that is running when Redis restarts is stored, not lost; the bot's intake asks `ready`
 * first and refuses new work while the connection is down instead of letting it wait.
 * Reconnects every 0.2 to 2 s for as long as it takes. Errors are logged once per outage, never thrown.
 */
export function connectRedis(url: string, logger: Logger, role: string): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(200 * times, 2_000),
    connectionName: `sdxl-bot:${role}`,
  });
  let down = false;
  // Without an 'error' listener, ioredis would throw each reconnection failure as an uncaught error.
  redis.on('error', (error: Error & { code?: string }) => {
    if (down) return;
    down = true;
    logger.warn({ role, where: redisWhere(url), code: error.code, err: error }, 'redis connection lost');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info({ role, where: redisWhere(url) }, 'redis connection back');
  });
  return redis;
}
