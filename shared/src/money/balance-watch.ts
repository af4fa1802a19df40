import { roundCredits } from './price.ts';

/**
 * Works out what a call cost from the drop in remaining credits, for answers that do not say
 * (Segmind's own pages document `x-remaining-credits`, not `x-cost`). A drop is put down to a call
 * only when that call ran alone in this client between two readings: nothing else started, ended or
 * read the balance meanwhile. Another process spending on the same account can still move the
 * balance unseen, so the result is what a host reports as the call's cost, not an audit.
 */
export class BalanceWatch {
  /** Starts and ends of calls so far: a call ran alone when its start and end are consecutive. */
  private events = 0;
  /** The latest balance an answer reported, and the event that read it. */
  private last: { credits: number; event: number } | undefined;

  /** A billed call starts; the number to give `end`. */
  begin(): number {
    return ++this.events;
  }

  /**
   * The call begun as `started` ended, reading `credits` (undefined when it read none, or failed).
   * Returns what it cost when that can be told, else undefined.
   */
  end(started: number, credits: number | undefined): number | undefined {
    const alone = this.last !== undefined && this.last.event === started - 1 && this.events === started;
    const event = ++this.events;
    if (credits === undefined) return undefined;
    const drop = alone ? roundCredits(this.last!.credits - credits) : undefined;
    this.last = { credits, event };
    return drop !== undefined && drop > 0 ? drop : undefined;
  }
}
