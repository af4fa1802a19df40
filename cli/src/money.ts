// What a run will cost before it spends, and the cap it keeps to: `--dry-run`, `--max-cost` and
// SDXL_MAX_COST, shared by imagine, vary, inpaint and upscale. The estimate, the ledger and the hold
// before each call are the client's (shared/src/money/); this only reads flags and words results.
import {
  MemoryBudget,
  formatCredits,
  type BudgetGuard,
  type Estimate,
  type SdxlClient,
} from '@sdxl-kit/client';
import { EXIT, UsageError } from './exit.ts';
import type { Io } from './io.ts';

/** The flags every command that makes images takes for money. */
export const MONEY_FLAGS = {
  'dry-run': { type: 'boolean' },
  'max-cost': { type: 'string' },
} as const;

export const MONEY_HELP = `Cost:
  --dry-run                    check everything and print the plan (calls, images, estimated credits
                               and time at the pace, and the balance when the key works); sends
                               nothing billed
  --max-cost CREDITS           refuse (exit 2) before sending when the estimate is over CREDITS, and
                               send no call that would pass it (default $SDXL_MAX_COST); prompts
                               left then are budget_exceeded (exit 6)`;

/** The cap of this run: `--max-cost`, else `SDXL_MAX_COST`, else none. */
export function maxCostOf(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): { credits: number; name: string } | undefined {
  const fromEnv = env.SDXL_MAX_COST?.trim();
  const [name, raw] = flag !== undefined ? ['--max-cost', flag] : fromEnv ? ['SDXL_MAX_COST', fromEnv] : [];
  if (name === undefined || raw === undefined) return undefined;
  const credits = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(credits) || credits <= 0) {
    const message = `${name}: "${raw}" is not allowed; allowed: a number of credits above 0 (e.g. 0.5)`;
    throw new UsageError(message, [
      { flag: name, field: 'maxCost', value: raw, allowed: 'a number of credits above 0', message },
    ]);
  }
  return { credits, name };
}

/** The guard a capped run gives every call: one count for the whole run, in this process. */
export function runBudget(cap: { credits: number; name: string }): BudgetGuard {
  return {
    ledger: new MemoryBudget(),
    limits: [{ id: 'run', credits: cap.credits, window: 'total', label: cap.name }],
  };
}

/** Refuses a plan over the cap before anything is sent. */
export function checkPlan(plan: Estimate, cap: { credits: number; name: string } | undefined): void {
  if (!cap) return;
  if (plan.credits === undefined) {
    throw new UsageError(
      `${cap.name}: the cost of this run is not known (a model without a published price), so ${cap.credits} credits cannot be kept to. Nothing was sent.`,
    );
  }
  if (plan.credits > cap.credits) {
    const message = `${cap.name}: this run is estimated at ${formatCredits(plan.credits)} credits (${describePlan(plan)}), over the cap of ${formatCredits(cap.credits)}. Nothing was sent. Raise ${cap.name}, or send fewer prompts or images.`;
    const allowed = `at least the estimate, ${formatCredits(plan.credits)} credits`;
    throw new UsageError(message, [
      { flag: cap.name, field: 'maxCost', value: String(cap.credits), allowed, message },
    ]);
  }
}

function describePlan(plan: Estimate): string {
  return `${plan.calls} ${plan.calls === 1 ? 'call' : 'calls'}, ${plan.images} ${plan.images === 1 ? 'image' : 'images'}`;
}

/** Time in words: "about 2 min 5 s". */
function describeSeconds(seconds: number): string {
  if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `about ${minutes} min ${Math.round(seconds % 60)} s`;
  return `about ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/**
 * Prints the plan of a `--dry-run` and the balance, which costs nothing to read; a balance that
 * cannot be read is `null` and its reason goes to stderr. Nothing billed is sent.
 */
export async function printPlan(
  client: SdxlClient,
  plan: Estimate,
  context: { io: Io; json: boolean; signal: AbortSignal; alreadyDone?: number },
): Promise<number> {
  const { io, json } = context;
  let balance: number | null = null;
  try {
    balance = (await client.getCredits({ signal: context.signal })).total;
  } catch (error) {
    io.stderr.write(`The balance could not be read: ${(error as Error).message}\n`);
  }
  if (json) {
    io.stdout.write(
      `${JSON.stringify({
        dryRun: true,
        calls: plan.calls,
        images: plan.images,
        estimatedCredits: plan.credits ?? null,
        estimatedSeconds: plan.seconds,
        balance,
        ...(context.alreadyDone ? { alreadyDone: context.alreadyDone } : {}),
      })}\n`,
    );
    return EXIT.ok;
  }
  const credits =
    plan.credits === undefined
      ? 'an unknown number of credits (a model without a published price)'
      : `about ${formatCredits(plan.credits)} credits (${plan.basis === 'reported' ? "the account's reported price" : "Segmind's published price"})`;
  const pace =
    client.limiter.requestsPerMinute === Infinity
      ? `${client.limiter.maxInFlight} at a time`
      : `${client.limiter.requestsPerMinute} a minute, ${client.limiter.maxInFlight} at a time`;
  io.stdout.write(`Dry run: nothing was sent.\n`);
  if (context.alreadyDone) {
    io.stdout.write(
      `${context.alreadyDone} prompts were done by an earlier run (the journal): not counted.\n`,
    );
  }
  io.stdout.write(`Plan: ${describePlan(plan)}, ${credits}, ${describeSeconds(plan.seconds)} at ${pace}.\n`);
  if (balance !== null) {
    const covers =
      plan.credits === undefined ? '' : balance >= plan.credits ? ': enough' : ': NOT enough for this plan';
    io.stdout.write(`Balance: ${formatCredits(balance)} credits${covers}.\n`);
  }
  return EXIT.ok;
}
