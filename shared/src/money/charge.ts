import { ApiError, ConnectionError, InvalidRequestError, JobFailedError, SdxlError } from '../errors.ts';
import type { BudgetGuard, Reservation } from './budget.ts';

/**
 * Whether a call that failed may still have been billed. Only a 200 is billed: an answer with another
 * status, a refusal before sending and a connection that never left bill nothing. Once an async job
 * was accepted it is billed unless it FAILED. A cut-off answer, a timeout or a garbled 200 may have been.
 */
export function mayHaveBilled(error: unknown, accepted: boolean): boolean {
  if (error instanceof JobFailedError) return false;
  if (accepted) return true;
  if (error instanceof InvalidRequestError || error instanceof ApiError) return false;
  if (error instanceof ConnectionError) return error.sent;
  if (error instanceof SdxlError) return error.code !== 'budget_exceeded';
  return true;
}

/**
 * Credits held for one call against every budget it must keep to: taken before the call is sent,
 * settled at what it was billed, or released when nothing was.
 */
export class Charge {
  private readonly held: ReadonlyArray<readonly [BudgetGuard, Reservation]>;
  /** The estimate held. */
  readonly estimate: number;

  private constructor(held: ReadonlyArray<readonly [BudgetGuard, Reservation]>, estimate: number) {
    this.held = held;
    this.estimate = estimate;
  }

  /**
   * Holds `credits` against each guard's limits, in order; when one refuses, what the earlier ones
   * held is let go and its `BudgetExceededError` is thrown.
   */
  static async reserve(guards: readonly BudgetGuard[], credits: number): Promise<Charge> {
    const held: [BudgetGuard, Reservation][] = [];
    try {
      for (const guard of guards) held.push([guard, await guard.ledger.reserve(guard.limits, credits)]);
    } catch (error) {
      await Promise.allSettled(held.map(([guard, reservation]) => guard.ledger.release(reservation)));
      throw error;
    }
    return new Charge(held, credits);
  }

  /** What the call was billed: as reported, or the estimate where the API did not say. */
  async settle(cost: number | undefined): Promise<void> {
    await Promise.all(
      this.held.map(([guard, reservation]) => guard.ledger.settle(reservation, cost ?? this.estimate)),
    );
  }

  /**
   * The call failed: let the credits go if nothing was billed, else count the estimate as spent.
   * `sent`: the billed request went to the transport; `accepted`: an async job was accepted.
   */
  async fail(error: unknown, progress: { sent: boolean; accepted: boolean }): Promise<void> {
    if (progress.sent && mayHaveBilled(error, progress.accepted)) await this.settle(undefined);
    else await Promise.all(this.held.map(([guard, reservation]) => guard.ledger.release(reservation)));
  }
}
