import {
  CLIENT_DEFAULTS,
  ConnectionError,
  RedisStartWindow,
  RequestLimiter,
  nodeSleep,
  type ClientOptions,
} from '@sdxl-kit/client';
import { UsageError } from './exit.ts';

/** The address as it may be shown: without the password a `redis://user:secret@host` carries. */
export function displayRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}

export interface SharedPace {
  limiter: RequestLimiter;
  close(): Promise<void>;
}

/**
 * With `SDXL_REDIS_URL` set, the account's requests per minute are counted in that Redis, so several
 * `sdxl` runs (cron on several machines, one key) keep one pace instead of each drawing 429s. Refuses
 * an address that is not Redis and fails, before anything is sent, when Redis cannot be reached.
 */
export async function sharedPace(
  redisUrl: string,
  account: { apiKey: string; baseUrl: string },
  options: Pick<ClientOptions, 'requestsPerMinute' | 'maxInFlight' | 'rateWindowMs'>,
): Promise<SharedPace> {
  const shown = displayRedisUrl(redisUrl);
  if (!/^rediss?:\/\/\S+$/i.test(redisUrl) || shown === '(not a URL)') {
    throw new UsageError(
      `SDXL_REDIS_URL: "${shown}" is not allowed; allowed: a redis:// or rediss:// address, e.g. redis://127.0.0.1:6379.`,
    );
  }
  if (options.requestsPerMinute === undefined) {
    throw new UsageError('SDXL_REDIS_URL: a shared pace needs a rate: set --rpm or SDXL_RPM.');
  }
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: 5_000,
    // A command waits through at most two reconnects; then the call fails with nothing sent and the
    // client's retries (within its deadline) try again, instead of hanging a cron job on a dead Redis.
    maxRetriesPerRequest: 2,
  });
  let lastError = '';
  // ioredis reports every failed reconnect as an 'error' event; without a listener it prints them.
  redis.on('error', (error: Error) => (lastError = error.message));
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    const reason = (error as Error).message || lastError;
    throw new ConnectionError(
      `SDXL_REDIS_URL: could not reach Redis at ${shown} (${reason.replaceAll(redisUrl, shown)}). Nothing was sent.`,
      false,
    );
  }
  const window = new RedisStartWindow(redis, {
    requestsPerMinute: options.requestsPerMinute,
    apiKey: account.apiKey,
    baseUrl: account.baseUrl,
    label: 'SDXL_REDIS_URL',
    ...(options.rateWindowMs !== undefined && { windowMs: options.rateWindowMs }),
  });
  return {
    limiter: new RequestLimiter({
      requestsPerMinute: options.requestsPerMinute,
      maxInFlight: options.maxInFlight ?? CLIENT_DEFAULTS.maxInFlight,
      windowMs: options.rateWindowMs ?? CLIENT_DEFAULTS.rateWindowMs,
      sleep: nodeSleep,
      window,
    }),
    close: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
