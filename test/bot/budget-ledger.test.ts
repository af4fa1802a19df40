// The bot's embedded budget ledger (SQLite): the client's MemoryBudget semantics, kept across restarts.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  BudgetExceededError,
  MemoryBudget,
  type BudgetLedger,
  type BudgetLimit,
  type Reservation,
} from '@sdxl-kit/client';
import fc from 'fast-check';
import { SqliteBudget } from '../../bot/src/budget/sqlite-budget.ts';

const LIMITS: BudgetLimit[] = [
  { id: 'guild:1', credits: 0.05, window: 'day', label: 'the server per day' },
  { id: 'guild:1', credits: 0.2, window: 'month' },
  { id: 'member:1:7', credits: 0.024, window: 'day' },
  { id: 'run', credits: 0.1, window: 'total' },
];

type Step =
  | { kind: 'reserve'; limits: number[]; credits: number }
  | { kind: 'settle'; which: number; credits: number }
  | { kind: 'release'; which: number }
  | { kind: 'wait'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('reserve' as const),
    limits: fc.subarray([0, 1, 2, 3], { minLength: 1 }),
    credits: fc.integer({ min: 0, max: 40_000 }).map((micro) => micro / 1_000_000),
  }),
  fc.record({
    kind: fc.constant('settle' as const),
    which: fc.nat(30),
    credits: fc.integer({ min: 0, max: 40_000 }).map((micro) => micro / 1_000_000),
  }),
  fc.record({ kind: fc.constant('release' as const), which: fc.nat(30) }),
  // Up to nine hours: holds lapse (after two), days turn over.
  fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 9 * 3_600_000 }) }),
);

/** What a step did, in terms both ledgers must agree on. */
async function apply(ledger: BudgetLedger, held: Reservation[], next: Step): Promise<unknown> {
  switch (next.kind) {
    case 'reserve':
      try {
        held.push(
          await ledger.reserve(
            next.limits.map((index) => LIMITS[index]!),
            next.credits,
          ),
        );
        return 'held';
      } catch (error) {
        assert.ok(error instanceof BudgetExceededError);
        return {
          refused: error.limit.id,
          window: error.limit.window,
          spent: error.spent,
          held: error.reserved,
        };
      }
    case 'settle':
    case 'release': {
      const reservation = held[next.which % Math.max(1, held.length)];
      if (!reservation) return 'nothing held';
      if (next.kind === 'settle') await ledger.settle(reservation, next.credits);
      else await ledger.release(reservation);
      return next.kind;
    }
    case 'wait':
      return 'waited';
  }
}

describe('the SQLite budget ledger', () => {
  it('keeps the same books as the client\u2019s MemoryBudget, step for step (reserve all or none, settle, release, lapses, windows)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
        let now = Date.UTC(2026, 11, 31, 20, 0);
        const clock = { now: () => now };
        const memory = new MemoryBudget(clock);
        const sqlite = new SqliteBudget(':memory:', clock);
        const memoryHeld: Reservation[] = [];
        const sqliteHeld: Reservation[] = [];
        try {
          for (const next of steps) {
            if (next.kind === 'wait') now += next.ms;
            assert.deepEqual(
              await apply(sqlite, sqliteHeld, next),
              await apply(memory, memoryHeld, next),
              `step ${JSON.stringify(next)}`,
            );
            for (const limit of LIMITS)
              assert.deepEqual(await sqlite.usage(limit), await memory.usage(limit), limit.id);
          }
        } finally {
          sqlite.close();
        }
      }),
      { numRuns: 150 },
    );
  });

  it('keeps a day\u2019s spend and the holds of jobs in line when the bot restarts on the same file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sdxl-budget-'));
    const path = join(dir, 'jobs.sqlite');
    const day: BudgetLimit = { id: 'guild:42', credits: 0.024, window: 'day' };
    try {
      const before = new SqliteBudget(path);
      await before.settle(await before.reserve([day], 0.008), 0.008);
      const inLine = await before.reserve([day], 0.008);
      before.close();

      const after = new SqliteBudget(path);
      assert.deepEqual(
        { spent: (await after.usage(day)).spent, reserved: (await after.usage(day)).reserved },
        { spent: 0.008, reserved: 0.008 },
      );
      await after.reserve([day], 0.008);
      await assert.rejects(after.reserve([day], 0.008), BudgetExceededError, 'still full after the restart');
      // The job that waited in line through the restart is settled by the new process.
      await after.settle(inLine, 0.008);
      assert.equal((await after.usage(day)).spent, 0.016);
      after.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('claims a notice once until it expires, across connections to one file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sdxl-budget-'));
    let now = Date.UTC(2026, 11, 6, 12);
    const [one, two] = [0, 1].map(() => new SqliteBudget(join(dir, 'jobs.sqlite'), { now: () => now }));
    try {
      const expiresAt = Date.UTC(2026, 11, 7);
      assert.equal(await one!.claim('guild:1:day:2026-12-06:80', expiresAt), true);
      assert.equal(await two!.claim('guild:1:day:2026-12-06:80', expiresAt), false);
      now = expiresAt;
      assert.equal(await two!.claim('guild:1:day:2026-12-06:80', expiresAt + 86_400_000), true);
    } finally {
      one!.close();
      two!.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
