import { createHash } from 'node:crypto';
import { DEFAULT_BASE_URL, MemoryJobTimeStore, RequestLimiter } from '@sdxl-kit/client/core';
import { abortableSleep } from './transport.ts';

/** What one pace is kept for: an account at one address, with one set of pacing options. */
export interface PaceKey {
  apiKey: string;
  baseUrl: string | undefined;
  requestsPerMinute: number;
  maxInFlight: number;
  windowMs: number;
}

/**
 * The job times every execution of this n8n process learns from and teaches (per API address and
 * model, nothing of an account): a client is made per run, and a run's first job would otherwise
 * always poll on the cold cadence.
 */
export const sharedJobTimes = new MemoryJobTimeStore();

/** More accounts than one n8n instance plausibly uses at once; past this the least recently used goes. */
const MAX_PACES = 32;

/**
 * One limiter per account for this n8n process, shared by every execution. n8n calls `execute` once
 * per run of the node, and Loop Over Items (or several workflows at once) makes many runs a minute:
 * a limiter per run would let each start the plan's whole allowance and draw 429s.
 */
const limiters = new Map<string, RequestLimiter>();

function mapKey(pace: PaceKey): string {
  // The map holds a digest, never the key itself, so nothing that lists the map can show a key.
  const account = createHash('sha256').update(pace.apiKey).digest('hex');
  const baseUrl = (pace.baseUrl || DEFAULT_BASE_URL).replace(/\/+$/, '');
  return JSON.stringify([account, baseUrl, pace.requestsPerMinute, pace.maxInFlight, pace.windowMs]);
}

/** The limiter every execution of this account and these options shares, made on first use. */
export function sharedLimiter(pace: PaceKey): RequestLimiter {
  const key = mapKey(pace);
  const known = limiters.get(key);
  if (known) {
    // Most recently used last, so the oldest is the one dropped.
    limiters.delete(key);
    limiters.set(key, known);
    return known;
  }
  const limiter = new RequestLimiter({
    requestsPerMinute: pace.requestsPerMinute,
    maxInFlight: pace.maxInFlight,
    windowMs: pace.windowMs,
    // n8n's own sleep: a verified node starts no timers of its own.
    sleep: abortableSleep,
  });
  limiters.set(key, limiter);
  while (limiters.size > MAX_PACES) {
    // An idle limiter goes first; a busy one stays with the runs that hold it either way.
    const idle = [...limiters].find(([, candidate]) => candidate.inFlight === 0 && candidate.queued === 0);
    limiters.delete(idle ? idle[0] : (limiters.keys().next().value as string));
  }
  return limiter;
}
