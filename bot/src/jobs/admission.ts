import type { SdxlClient } from '@sdxl-kit/client';
import { setTimeout as wait } from 'node:timers/promises';
import type { BotConfig } from '../config.ts';
import type { CreditMonitor } from '../credits.ts';
import { BotRefusal, outOfCreditsMessage } from '../errors.ts';

/** How long a request waits for the free balance call before its acknowledgement. */
const CREDIT_CHECK_MS = 1_500;

const DAY_MS = 86_400_000;

function utcMidnight(now: number): number {
  const date = new Date(now);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
}

/**
 * Before the public "is thinking…": a deferred reply cannot turn private later, so a request the
 * account cannot pay for is refused privately here. The balance call is free; it is made while the
 * balance is unknown (a fresh start), low, or out, and waits at most `CREDIT_CHECK_MS` so the
 * acknowledgement stays inside Discord's 3 seconds. Unanswered: the job goes on, as before, unless
 * the API already said the account is out.
 * @throws {BotRefusal} `out_of_credits`.
 */
export async function checkCredits(deps: {
  config: Pick<BotConfig, 'lowCreditsThreshold' | 'adminChannelId'>;
  sdxl: Pick<SdxlClient, 'getCredits'>;
  credits: CreditMonitor;
}): Promise<void> {
  const { config, sdxl, credits } = deps;
  const out = await credits.isOut();
  const known = credits.lastKnown;
  if (!out && known !== undefined && known >= config.lowCreditsThreshold) return;
  const balance = await Promise.race([
    sdxl.getCredits().catch(() => undefined),
    wait(CREDIT_CHECK_MS, undefined, { ref: false }),
  ]);
  if (balance ? await credits.balanceChecked(balance) : !out) return;
  if (balance) await credits.outOfCredits().catch(() => undefined);
  throw new BotRefusal(
    'out_of_credits',
    `\ud83d\udcb8 ${outOfCreditsMessage(Boolean(config.adminChannelId))}`,
  );
}

/** A member who already has `limit` jobs queued or running. */
export function queueFull(userJobs: number, limit: number): BotRefusal {
  return new BotRefusal(
    'user_queue_full',
    `\u270b You already have ${userJobs} job${userJobs === 1 ? '' : 's'} in line (the limit is ${limit} per person). Wait for one to finish, then try again.`,
  );
}

/** A member's daily images at `now`: counted since UTC midnight, up to `BOT_USER_DAILY_IMAGES` (0: none). */
export function dailyQuota(now: number, dailyImages: number): { since: number; limit: number } {
  return { since: utcMidnight(now), limit: dailyImages === 0 ? Number.POSITIVE_INFINITY : dailyImages };
}

/** A job that would take a member past their daily images. */
export function dailyQuotaReached(
  now: number,
  used: number,
  dailyImages: number,
  samples: number,
): BotRefusal {
  const resets = Math.floor((utcMidnight(now) + DAY_MS) / 1000);
  return new BotRefusal(
    'daily_quota',
    `\ud83d\udcc5 Daily limit: you have made ${used} of your ${dailyImages} images today and this asks for ${samples}. The limit resets <t:${resets}:R>.`,
  );
}
