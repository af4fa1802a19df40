import type { BudgetUsage } from '@sdxl-kit/client/core';
import type { CallResult } from './output.ts';
import type { NodeStatus } from './red.ts';

/** Credits as the status shows them: four significant digits, no trailing zeros. */
export function formatCredits(credits: number): string {
  return String(Number(credits.toPrecision(4)));
}

/** How many calls of a node are in each phase. */
export interface Progress {
  /** Waiting for the account's limiter: nothing sent yet. */
  waiting: number;
  /** Sent and waiting for the answer (sync), or being submitted (async). */
  working: number;
  /** Async jobs the API holds in its queue. */
  jobQueued: number;
  /** Async jobs the API is working on. */
  processing: number;
}

function times(text: string, count: number): string | undefined {
  if (count === 0) return undefined;
  return count > 1 ? `${text} ×${count}` : text;
}

/**
 * While work is under way; undefined when there is none. Kept short: the editor truncates long text.
 * After a failure (until a call succeeds) it stays red and leads with the failure's code, so a busy
 * node does not hide the error behind its progress.
 */
export function progressStatus(
  progress: Progress,
  failure?: string,
  verb = 'generating',
): NodeStatus | undefined {
  const active = [
    times(verb, progress.working),
    times('job queued', progress.jobQueued),
    times('processing', progress.processing),
  ].filter((part) => part !== undefined);
  let status: NodeStatus;
  if (active.length > 0) {
    const more = progress.waiting > 0 ? ` +${progress.waiting} queued` : '';
    status = { fill: 'blue', shape: 'dot', text: `${active.join(' · ')}${more}` };
  } else if (progress.waiting > 0) {
    status = { fill: 'blue', shape: 'ring', text: times('queued', progress.waiting) };
  } else {
    return undefined;
  }
  return failure ? { fill: 'red', shape: 'ring', text: `${failure} · ${status.text}` } : status;
}

/** The account's budget as the status shows it: spent against the cap, "0.032/0.1 cr today". */
export function budgetText(usage: BudgetUsage): string {
  const when = usage.limit.window === 'hour' ? 'this hour' : 'today';
  return `${formatCredits(usage.spent)}/${formatCredits(usage.limit.credits)} cr ${when}`;
}

/**
 * After a call: how many images and the credits left, yellow once they are below the threshold.
 * With a budget, what it has spent takes the balance's place; the balance shows only once it is low.
 */
export function doneStatus(result: CallResult, budget?: BudgetUsage): NodeStatus {
  const parts = [`${result.images.length} image${result.images.length === 1 ? '' : 's'}`];
  if (budget) parts.push(budgetText(budget));
  const credits =
    result.remainingCredits === undefined ? undefined : `${formatCredits(result.remainingCredits)} credits`;
  if (credits && result.lowCredits) {
    return { fill: 'yellow', shape: 'dot', text: `${[...parts, credits].join(' · ')} (low)` };
  }
  if (credits && !budget) parts.push(credits);
  return { fill: 'green', shape: 'dot', text: parts.join(' · ') };
}
