import { ApiError, ConnectionError, RateLimitError, type SdxlError } from './errors.ts';

export interface RetryPolicy {
  /** Retries after the first attempt. @default 2 */
  maxRetries: number;
  /** First backoff wait, doubled on each retry, in ms. @default 500 */
  baseDelayMs: number;
  /** Longest backoff wait, in ms. @default 8000 */
  maxDelayMs: number;
  /** Longest wait for a rate limit to reset, in ms. @default 60000 */
  maxRateLimitWaitMs: number;
  /**
   * Retry when the connection broke after the request was sent, or the attempt timed out. The API
   * has no idempotency key, so such a retry may bill twice. @default false
   */
  retryBrokenConnections: boolean;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  maxRetries: 2,
  baseDelayMs: 500,
  maxDelayMs: 8000,
  maxRateLimitWaitMs: 60_000,
  retryBrokenConnections: false,
};

export interface RetryContext {
  error: SdxlError;
  /** Retries already made for this call. */
  retriesDone: number;
  /** Safe to repeat whatever happened (a GET). */
  idempotent: boolean;
  now: number;
  /** 0 <= random() < 1, for jitter. */
  random: () => number;
}

export type RetryDecision =
  { retry: true; delayMs: number; reason: string } | { retry: false; reason: string };

const RETRIED_STATUSES = new Set([500, 502, 503, 504]);

/** Exponential backoff with up to 25% jitter taken off, so concurrent callers spread out. */
export function backoffDelay(retriesDone: number, policy: RetryPolicy, random: () => number): number {
  const exponential = Math.min(policy.baseDelayMs * 2 ** retriesDone, policy.maxDelayMs);
  return Math.round(exponential * (1 - 0.25 * random()));
}

/** How long a 429 asks us to wait: `x-rate-limit-reset-at-utc`, then `retry-after-ms`, then `Retry-After`. */
export function rateLimitWait(error: ApiError, now: number): number | undefined {
  if (error instanceof RateLimitError && error.resetAt) return Math.max(0, error.resetAt.getTime() - now);
  const afterMs = Number(error.headers['retry-after-ms']);
  if (error.headers['retry-after-ms'] && Number.isFinite(afterMs)) return Math.max(0, afterMs);
  const retryAfter = error.headers['retry-after'];
  if (!retryAfter) return undefined;
  const seconds = Number(retryAfter);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Whether to try again, and after how long. Pure: the table of cases lives in its tests.
 *
 * | case | retried | wait |
 * |---|---|---|
 * | aborted by the caller | never | |
 * | 429 | yes | reset header or Retry-After, capped; else backoff |
 * | 500, 502, 503, 504 | yes | backoff |
 * | connection refused before sending | yes | backoff |
 * | connection broke after sending, timeout | only idempotent calls or by opt-in | backoff |
 * | anything else (401, 404, 406, 422, bad body, ...) | no | |
 */
export function decideRetry(context: RetryContext, policy: RetryPolicy): RetryDecision {
  const { error, retriesDone } = context;
  if (error.code === 'aborted') return { retry: false, reason: 'aborted by the caller' };
  if (retriesDone >= policy.maxRetries)
    return { retry: false, reason: `no retries left (${policy.maxRetries})` };
  const backoff = () => backoffDelay(retriesDone, policy, context.random);

  if (error instanceof ApiError) {
    const status = error.status;
    if (status === 429) {
      const wait = rateLimitWait(error, context.now);
      if (wait === undefined) return { retry: true, delayMs: backoff(), reason: 'rate limited' };
      return { retry: true, delayMs: Math.min(wait, policy.maxRateLimitWaitMs), reason: 'rate limited' };
    }
    if (RETRIED_STATUSES.has(status)) return { retry: true, delayMs: backoff(), reason: `status ${status}` };
    return { retry: false, reason: `status ${status} is final` };
  }
  if (error instanceof ConnectionError) {
    if (!error.sent) return { retry: true, delayMs: backoff(), reason: 'connection failed before sending' };
    if (context.idempotent || policy.retryBrokenConnections) {
      return { retry: true, delayMs: backoff(), reason: 'connection broke after sending' };
    }
    return { retry: false, reason: 'connection broke after sending; a retry could bill twice' };
  }
  if (error.code === 'timeout') {
    if (context.idempotent || policy.retryBrokenConnections) {
      return { retry: true, delayMs: backoff(), reason: 'timed out' };
    }
    return { retry: false, reason: 'timed out after sending; a retry could bill twice' };
  }
  return { retry: false, reason: `${error.code} is final` };
}
