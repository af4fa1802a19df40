import type { GenerateResult } from '@sdxl-kit/client/core';
import type { NodeStatus } from './red.ts';

/** Credits as the status shows them: four significant digits, no trailing zeros. */
export function formatCredits(credits: number): string {
  return String(Number(credits.toPrecision(4)));
}

/**
 * While work is under way; undefined when there is none. Kept short: the editor truncates long text.
 * After a failure (until a call succeeds) it stays red and leads with the failure's code, so a busy
 * node does not hide the error behind its progress.
 */
export function progressStatus(queued: number, generating: number, failure?: string): NodeStatus | undefined {
  let status: NodeStatus;
  if (generating > 0) {
    const more = queued > 0 ? ` +${queued} queued` : '';
    status = {
      fill: 'blue',
      shape: 'dot',
      text: `generating${generating > 1 ? ` ×${generating}` : ''}${more}`,
    };
  } else if (queued > 0) {
    status = { fill: 'blue', shape: 'ring', text: queued > 1 ? `queued ×${queued}` : 'queued' };
  } else {
    return undefined;
  }
  return failure ? { fill: 'red', shape: 'ring', text: `${failure} · ${status.text}` } : status;
}

/** After a call: how many images and the credits left, yellow once they are below the threshold. */
export function doneStatus(result: GenerateResult): NodeStatus {
  const count = `${result.images.length} image${result.images.length === 1 ? '' : 's'}`;
  if (result.remainingCredits === undefined) return { fill: 'green', shape: 'dot', text: count };
  const credits = `${formatCredits(result.remainingCredits)} credits`;
  return result.lowCredits
    ? { fill: 'yellow', shape: 'dot', text: `${count} · ${credits} (low)` }
    : { fill: 'green', shape: 'dot', text: `${count} · ${credits}` };
}
