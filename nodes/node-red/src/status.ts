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

/** After a call: how many images and the credits left, yellow once they are below the threshold. */
export function doneStatus(result: CallResult): NodeStatus {
  const count = `${result.images.length} image${result.images.length === 1 ? '' : 's'}`;
  if (result.remainingCredits === undefined) return { fill: 'green', shape: 'dot', text: count };
  const credits = `${formatCredits(result.remainingCredits)} credits`;
  return result.lowCredits
    ? { fill: 'yellow', shape: 'dot', text: `${count} · ${credits} (low)` }
    : { fill: 'green', shape: 'dot', text: `${count} · ${credits}` };
}
