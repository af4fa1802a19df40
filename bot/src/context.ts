import type { SdxlClient } from '@sdxl-kit/client';
import type { CopyClaims } from './claims.ts';
import type { BotBudgets } from './budget/budgets.ts';
import type { BotConfig } from './config.ts';
import type { CreditMonitor } from './credits.ts';
import type { ImagineService } from './jobs/imagine-service.ts';
import type { Logger } from './logger.ts';
import type { JobQueue, RateLimiter } from './queue/types.ts';
import type { JobStore } from './store/job-store.ts';

/** What command and interaction handlers work with: one of each per bot process. */
export interface BotContext {
  config: BotConfig;
  sdxl: SdxlClient;
  store: JobStore;
  queue: JobQueue;
  limiter: RateLimiter;
  credits: CreditMonitor;
  budgets: BotBudgets;
  imagine: ImagineService;
  logger: Logger;
  /** This copy among the copies logged in as its shard: which of them answers an interaction. */
  copy: CopyClaims;
}
