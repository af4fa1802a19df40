import {
  CLIENT_DEFAULTS,
  createClient,
  nodeSleep,
  RedisStartWindow,
  RequestLimiter,
  type JobTimeStore,
  type SdxlClient,
} from '@sdxl-kit/client';
import type { Redis } from 'ioredis';
import { isLoopback, type BotConfig } from './config.ts';
import type { Logger } from './logger.ts';

/** The key a local sandbox accepts by default, so a bot pointed at one on this machine needs no hosted key. */
const SANDBOX_KEY = 'sandbox-key';

/**
 * The one SDXL client of this bot process: its limiter is shared by every job. With Redis, the
 * account's pace (its starts and a 429's pause) is kept there, where every bot process and every
 * `sdxl` run with `SDXL_REDIS_URL` on the same Redis and key counts it too.
 */
export function createSdxlClient(
  config: BotConfig,
  logger: Logger,
  redis?: Redis,
  jobTimes?: JobTimeStore,
): SdxlClient {
  const apiKey =
    config.sdxlApiKey ?? (config.sdxlBaseUrl && isLoopback(config.sdxlBaseUrl) ? SANDBOX_KEY : undefined);
  const limiter =
    redis &&
    apiKey &&
    new RequestLimiter({
      requestsPerMinute: config.requestsPerMinute,
      maxInFlight: config.maxInFlight,
      windowMs: config.rateWindowMs,
      sleep: nodeSleep,
      window: new RedisStartWindow(redis, {
        requestsPerMinute: config.requestsPerMinute,
        apiKey,
        baseUrl: config.sdxlBaseUrl ?? CLIENT_DEFAULTS.baseUrl,
        windowMs: config.rateWindowMs,
        label: 'REDIS_URL',
      }),
    });
  return createClient({
    apiKey,
    ...(limiter && { limiter }),
    ...(config.sdxlBaseUrl && { baseUrl: config.sdxlBaseUrl }),
    requestsPerMinute: config.requestsPerMinute,
    maxInFlight: config.maxInFlight,
    rateWindowMs: config.rateWindowMs,
    lowCreditsThreshold: config.lowCreditsThreshold,
    // One call must end before the job's deadline does.
    deadlineMs: config.jobDeadlineMs,
    ...(config.pollFirstMs !== undefined && { poll: { firstDelayMs: config.pollFirstMs } }),
    // What one job teaches of a model's time, the next (in any process on the same Redis) uses.
    ...(jobTimes && { jobTimes }),
    secrets: [config.discordToken],
    logger: {
      debug: (message, data) => logger.debug({ ...data, source: 'sdxl' }, message),
      warn: (message, data) => logger.warn({ ...data, source: 'sdxl' }, message),
    },
  });
}
