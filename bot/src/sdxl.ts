import { createClient, type SdxlClient } from '@sdxl-kit/client';
import { isLoopback, type BotConfig } from './config.ts';
import type { Logger } from './logger.ts';

/** The key a local sandbox accepts by default, so a bot pointed at one on this machine needs no hosted key. */
const SANDBOX_KEY = 'sandbox-key';

/** The one SDXL client of this bot process: its limiter is shared by every job. */
export function createSdxlClient(config: BotConfig, logger: Logger): SdxlClient {
  return createClient({
    apiKey:
      config.sdxlApiKey ?? (config.sdxlBaseUrl && isLoopback(config.sdxlBaseUrl) ? SANDBOX_KEY : undefined),
    ...(config.sdxlBaseUrl && { baseUrl: config.sdxlBaseUrl }),
    requestsPerMinute: config.requestsPerMinute,
    maxInFlight: config.maxInFlight,
    rateWindowMs: config.rateWindowMs,
    lowCreditsThreshold: config.lowCreditsThreshold,
    // One call must end before the job's deadline does.
    deadlineMs: config.jobDeadlineMs,
    ...(config.pollFirstMs !== undefined && { poll: { firstDelayMs: config.pollFirstMs } }),
    secrets: [config.discordToken],
    logger: {
      debug: (message, data) => logger.debug({ ...data, source: 'sdxl' }, message),
      warn: (message, data) => logger.warn({ ...data, source: 'sdxl' }, message),
    },
  });
}
