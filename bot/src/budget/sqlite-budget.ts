import { randomUUID } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import {
  DEFAULT_RESERVATION_TTL_MS,
  checkReserve,
  countKey,
  refusal,
  toMicroCredits,
  usageOf,
  windowPeriod,
  type BudgetLedger,
  type BudgetLimit,
  type BudgetUsage,
  type Reservation,
} from '@sdxl-kit/client';
import type { NoticeClaims } from './notices.ts';

// A count is a row of `budget_counts` (spent, in micro-credits, and when it may be forgotten: its window
// is over and no reservation can still land); its holds and the reservations already settled or released
// are rows beside it. Every step is one IMMEDIATE transaction, so two processes on one file cannot both
// pass a cap between a check and a hold.
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS budget_counts (
    key TEXT PRIMARY KEY,
    spent INTEGER NOT NULL DEFAULT 0,
    forget_at INTEGER
  );
  CREATE TABLE IF NOT EXISTS budget_holds (
    key TEXT NOT NULL,
    reservation TEXT NOT NULL,
    micro INTEGER NOT NULL,
    lapses_at INTEGER NOT NULL,
    PRIMARY KEY (key, reservation)
  );
  CREATE TABLE IF NOT EXISTS budget_done (
    key TEXT NOT NULL,
    reservation TEXT NOT NULL,
    PRIMARY KEY (key, reservation)
  );
  CREATE TABLE IF NOT EXISTS budget_notices (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
`;

/**
 * The bot's embedded budget ledger: the semantics of the client's `MemoryBudget` (reserve across all
 * limits or none, settle at the billed cost, release when nothing was billed, idempotent; UTC windows;
 * holds lapse when nobody settles them), kept in SQLite beside the job store, so a day's spend and the
 * holds of jobs in line survive a restart or a `kill -9`.
 */
export class SqliteBudget implements BudgetLedger, NoticeClaims {
  private readonly db: DatabaseSync;
  private readonly now: () => number;
  private readonly ttlMs: number;

  /** @param path a file path (the job store's `BOT_DATABASE`), or ':memory:' */
  constructor(path: string, options: { now?: () => number; reservationTtlMs?: number } = {}) {
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.db.exec(SCHEMA);
    this.now = options.now ?? Date.now;
    this.ttlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
  }

  async reserve(limits: readonly BudgetLimit[], credits: number): Promise<Reservation> {
    checkReserve(limits, credits);
    const now = this.now();
    const micro = toMicroCredits(credits);
    const id = randomUUID();
    const keys = limits.map((limit) => countKey(limit, now));
    this.transaction(() => {
      this.forgetOld(now);
      limits.forEach((limit, index) => {
        const { spent, held } = this.standing(keys[index]!, now);
        if (spent + held + micro > toMicroCredits(limit.credits))
          throw refusal(limit, spent, held, micro, now);
      });
      const insertCount = this.db.prepare(
        'INSERT OR IGNORE INTO budget_counts (key, spent, forget_at) VALUES (?, 0, ?)',
      );
      const hold = this.db.prepare(
        'INSERT INTO budget_holds (key, reservation, micro, lapses_at) VALUES (?, ?, ?, ?)',
      );
      limits.forEach((limit, index) => {
        const resetsAt = windowPeriod(limit.window, now).resetsAt;
        insertCount.run(keys[index]!, resetsAt ? resetsAt.getTime() + this.ttlMs : null);
        hold.run(keys[index]!, id, micro, now + this.ttlMs);
      });
    });
    return { id, credits, keys };
  }

  async settle(reservation: Reservation, credits: number): Promise<void> {
    this.finish(reservation, toMicroCredits(credits));
  }

  async release(reservation: Reservation): Promise<void> {
    this.finish(reservation, 0);
  }

  async usage(limit: BudgetLimit): Promise<BudgetUsage> {
    const now = this.now();
    const { spent, held } = this.standing(countKey(limit, now), now);
    return usageOf(limit, spent, held, now);
  }

  /** True for the first claim of `key` until `expiresAt` (epoch ms), across every process on the file. */
  async claim(key: string, expiresAt: number): Promise<boolean> {
    const now = this.now();
    let claimed = false;
    this.transaction(() => {
      this.db.prepare('DELETE FROM budget_notices WHERE expires_at <= ?').run(now);
      const insert = this.db.prepare('INSERT OR IGNORE INTO budget_notices (key, expires_at) VALUES (?, ?)');
      claimed = Number(insert.run(key, expiresAt).changes) === 1;
    });
    return claimed;
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  private finish(reservation: Reservation, micro: number): void {
    this.transaction(() => {
      const exists = this.db.prepare('SELECT 1 FROM budget_counts WHERE key = ?');
      const done = this.db.prepare('INSERT OR IGNORE INTO budget_done (key, reservation) VALUES (?, ?)');
      const unhold = this.db.prepare('DELETE FROM budget_holds WHERE key = ? AND reservation = ?');
      const spend = this.db.prepare('UPDATE budget_counts SET spent = spent + ? WHERE key = ?');
      for (const key of reservation.keys) {
        if (!exists.get(key) || Number(done.run(key, reservation.id).changes) === 0) continue;
        unhold.run(key, reservation.id);
        spend.run(micro, key);
      }
    });
  }

  /** Micro-credits spent and held by holds that have not lapsed (lapsed ones are dropped). */
  private standing(key: string, now: number): { spent: number; held: number } {
    this.db.prepare('DELETE FROM budget_holds WHERE key = ? AND lapses_at <= ?').run(key, now);
    const count = this.db.prepare('SELECT spent FROM budget_counts WHERE key = ?').get(key) as
      { spent: number } | undefined;
    const holds = this.db
      .prepare('SELECT COALESCE(SUM(micro), 0) AS held FROM budget_holds WHERE key = ?')
      .get(key) as { held: number };
    return { spent: Number(count?.spent ?? 0), held: Number(holds.held) };
  }

  private forgetOld(now: number): void {
    const old = 'SELECT key FROM budget_counts WHERE forget_at IS NOT NULL AND forget_at <= ?';
    this.db.prepare(`DELETE FROM budget_holds WHERE key IN (${old})`).run(now);
    this.db.prepare(`DELETE FROM budget_done WHERE key IN (${old})`).run(now);
    this.db.prepare('DELETE FROM budget_counts WHERE forget_at IS NOT NULL AND forget_at <= ?').run(now);
  }

  /** Runs `step` in one write transaction: synchronous, so nothing else in this process runs inside it. */
  private transaction(step: () => void): void {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      step();
      this.db.exec('COMMIT');
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }
}
