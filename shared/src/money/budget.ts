import { randomUUID } from 'node:crypto';
import { BudgetExceededError } from '../errors.ts';
import { fromMicroCredits, toMicroCredits } from './price.ts';

/** Where a budget's count starts again: each UTC hour, day or month, or never. */
export type BudgetWindow = 'hour' | 'day' | 'month' | 'total';

/** One cap on spending. */
export interface BudgetLimit {
  /**
   * Names the count: every process and every limit with the same id and window shares it (e.g.
   * `guild:123` with `day`). Letters, digits and `:_.-` only.
   */
  readonly id: string;
  /** Credits that may be spent (and held by calls in flight) within one window. */
  readonly credits: number;
  readonly window: BudgetWindow;
  /** Words for people: "the server's daily budget". @default the id and window */
  readonly label?: string;
}

/** Credits held for one call until it is settled or released. Plain data: it survives a restart. */
export interface Reservation {
  readonly id: string;
  /** Credits held. */
  readonly credits: number;
  /** The counts it was taken from (limit and window period), so settling after midnight still lands on the day it was made. */
  readonly keys: readonly string[];
}

/** Where one limit stands. */
export interface BudgetUsage {
  readonly limit: BudgetLimit;
  /** Credits settled in this window. */
  readonly spent: number;
  /** Credits held by calls in flight. */
  readonly reserved: number;
  /** credits - spent - reserved, never below 0. */
  readonly left: number;
  /** When the count starts again; undefined for a total budget. */
  readonly resetsAt: Date | undefined;
}

/**
 * Spending against caps, shared by every call of a run, a flow, a bot or a fleet of processes.
 * `reserve` holds an estimate before a billed call (all limits or none), `settle` replaces it with
 * what was billed, `release` drops it when nothing was billed. Settling and releasing are idempotent.
 */
export interface BudgetLedger {
  /** @throws {BudgetExceededError} naming the first limit that has no room, holding nothing. */
  reserve(limits: readonly BudgetLimit[], credits: number): Promise<Reservation>;
  settle(reservation: Reservation, credits: number): Promise<void>;
  release(reservation: Reservation): Promise<void>;
  usage(limit: BudgetLimit): Promise<BudgetUsage>;
}

/** A ledger and the limits a call must keep to: what a client or a call is given. */
export interface BudgetGuard {
  readonly ledger: BudgetLedger;
  readonly limits: readonly BudgetLimit[];
}

/** How long a reservation holds when nobody settles it (a process that died mid-call). @default 2 h */
export const DEFAULT_RESERVATION_TTL_MS = 2 * 60 * 60 * 1000;

/** The window period `now` falls in: its name and when the next begins (UTC). */
export function windowPeriod(
  window: BudgetWindow,
  now: number,
): { period: string; resetsAt: Date | undefined } {
  const date = new Date(now);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  const day = date.getUTCDate();
  const iso = date.toISOString();
  switch (window) {
    case 'hour':
      return {
        period: iso.slice(0, 13),
        resetsAt: new Date(Date.UTC(year, month, day, date.getUTCHours() + 1)),
      };
    case 'day':
      return { period: iso.slice(0, 10), resetsAt: new Date(Date.UTC(year, month, day + 1)) };
    case 'month':
      return { period: iso.slice(0, 7), resetsAt: new Date(Date.UTC(year, month + 1, 1)) };
    case 'total':
      return { period: 'total', resetsAt: undefined };
  }
}

/** The count a limit uses now: `<id>:<window>:<period>`. */
export function countKey(limit: BudgetLimit, now: number): string {
  return `${limit.id}:${limit.window}:${windowPeriod(limit.window, now).period}`;
}

/** Words for a limit, as refusals show it. */
export function describeLimit(limit: BudgetLimit): string {
  if (limit.label) return limit.label;
  const per = { hour: 'per hour', day: 'per day', month: 'per month', total: 'in total' }[limit.window];
  return `${limit.id} ${per}`;
}

const ID_PATTERN = /^[A-Za-z0-9:_.-]{1,200}$/;

/** Checks limits and an amount before any count is touched. */
export function checkReserve(limits: readonly BudgetLimit[], credits: number): void {
  if (!Number.isFinite(credits) || credits < 0) {
    throw new RangeError(`A reservation must be a number of credits, 0 or more; got ${credits}`);
  }
  for (const limit of limits) {
    if (!ID_PATTERN.test(limit.id))
      throw new RangeError(`A budget id takes letters, digits and :_.- only; got "${limit.id}"`);
    if (!Number.isFinite(limit.credits) || limit.credits < 0) {
      throw new RangeError(
        `${describeLimit(limit)}: a budget is a number of credits, 0 or more; got ${limit.credits}`,
      );
    }
  }
}

/** The refusal for `limit`, standing at `spent` and `reserved` micro-credits, asked for `micro` more. */
export function refusal(
  limit: BudgetLimit,
  spentMicro: number,
  reservedMicro: number,
  micro: number,
  now: number,
): BudgetExceededError {
  return new BudgetExceededError({
    limit,
    spent: fromMicroCredits(spentMicro),
    reserved: fromMicroCredits(reservedMicro),
    requested: fromMicroCredits(micro),
    resetsAt: windowPeriod(limit.window, now).resetsAt,
  });
}

interface Count {
  spent: number;
  /** Reservation id → micro-credits and when it lapses. */
  held: Map<string, { micro: number; lapsesAt: number }>;
  /** Reservations already settled or released, so doing it twice counts once. */
  done: Set<string>;
  /** When this count can be forgotten (its window is over and no reservation can still land). */
  forgetAt: number;
}

/**
 * The embedded ledger: counts in this process's memory. What one CLI run, one n8n execution or one
 * Node-RED runtime needs; several processes that must share a budget use `RedisBudget`.
 */
export class MemoryBudget implements BudgetLedger {
  private readonly counts = new Map<string, Count>();
  private readonly now: () => number;
  private readonly ttlMs: number;

  constructor(options: { now?: () => number; reservationTtlMs?: number } = {}) {
    this.now = options.now ?? Date.now;
    this.ttlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
  }

  async reserve(limits: readonly BudgetLimit[], credits: number): Promise<Reservation> {
    checkReserve(limits, credits);
    const now = this.now();
    this.forgetOld(now);
    const micro = toMicroCredits(credits);
    const counts = limits.map((limit) => this.count(limit, now));
    limits.forEach((limit, index) => {
      const count = counts[index]!;
      const reserved = heldNow(count, now);
      if (count.spent + reserved + micro > toMicroCredits(limit.credits)) {
        throw refusal(limit, count.spent, reserved, micro, now);
      }
    });
    const id = randomUUID();
    for (const count of counts) count.held.set(id, { micro, lapsesAt: now + this.ttlMs });
    return { id, credits: credits, keys: limits.map((limit) => countKey(limit, now)) };
  }

  async settle(reservation: Reservation, credits: number): Promise<void> {
    this.finish(reservation, toMicroCredits(credits));
  }

  async release(reservation: Reservation): Promise<void> {
    this.finish(reservation, 0);
  }

  async usage(limit: BudgetLimit): Promise<BudgetUsage> {
    const now = this.now();
    const count = this.counts.get(countKey(limit, now));
    return usageOf(limit, count?.spent ?? 0, count ? heldNow(count, now) : 0, now);
  }

  private finish(reservation: Reservation, micro: number): void {
    for (const key of reservation.keys) {
      const count = this.counts.get(key);
      if (!count || count.done.has(reservation.id)) continue;
      count.done.add(reservation.id);
      count.held.delete(reservation.id);
      count.spent += micro;
    }
  }

  private count(limit: BudgetLimit, now: number): Count {
    const key = countKey(limit, now);
    let count = this.counts.get(key);
    if (!count) {
      const resetsAt = windowPeriod(limit.window, now).resetsAt;
      const forgetAt = resetsAt ? resetsAt.getTime() + this.ttlMs : Infinity;
      count = { spent: 0, held: new Map(), done: new Set(), forgetAt };
      this.counts.set(key, count);
    }
    return count;
  }

  private forgetOld(now: number): void {
    for (const [key, count] of this.counts) if (count.forgetAt <= now) this.counts.delete(key);
  }
}

/** Micro-credits held by reservations that have not lapsed (lapsed ones are dropped). */
function heldNow(count: Count, now: number): number {
  let micro = 0;
  for (const [id, hold] of count.held) {
    if (hold.lapsesAt <= now) count.held.delete(id);
    else micro += hold.micro;
  }
  return micro;
}

/** A usage report from micro-credit counts. */
export function usageOf(
  limit: BudgetLimit,
  spentMicro: number,
  reservedMicro: number,
  now: number,
): BudgetUsage {
  const capMicro = toMicroCredits(limit.credits);
  return {
    limit,
    spent: fromMicroCredits(spentMicro),
    reserved: fromMicroCredits(reservedMicro),
    left: fromMicroCredits(Math.max(0, capMicro - spentMicro - reservedMicro)),
    resetsAt: windowPeriod(limit.window, now).resetsAt,
  };
}
