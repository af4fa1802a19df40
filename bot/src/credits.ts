import type { JobStore } from './store/job-store.ts';

const LOW_NOTIFIED = 'credits.lowNotified';
/** The lowest balance seen since the low notice: what a top-up is judged against. */
const LOWEST_SINCE_LOW = 'credits.lowestSinceLowNotice';
const OUT_NOTIFIED = 'credits.outNotified';

/** The contract's published price of one image, until a result reports what it really cost. */
export const PUBLISHED_IMAGE_PRICE = 0.008;

/** Formats a credit balance the way the API reports it (fractional), without noise. */
export function formatCredits(credits: number): string {
  return Number(credits.toFixed(4)).toString();
}

/**
 * Watches the balance each result reports and tells the admins once per crossing: once when it falls
 * below the threshold (again only after a top-up lifted it back above), once when it runs out. The
 * flags live in the job store, so a restart does not repeat a notice, and each is claimed atomically,
 * so several bot processes on one store post each notice once.
 */
export class CreditMonitor {
  private readonly threshold: number;
  private readonly store: JobStore;
  private readonly notify: (text: string) => Promise<void>;
  private readonly inFlightImages: number;
  /** What one image cost in the last successful job, else the published price. */
  private imagePrice = PUBLISHED_IMAGE_PRICE;
  /** The last paid balance seen, if any. */
  lastKnown: number | undefined;

  constructor(options: {
    threshold: number;
    store: JobStore;
    notify: (text: string) => Promise<void>;
    /** Images that may be in flight at once: how far apart balances of concurrent jobs can be. */
    inFlightImages: number;
  }) {
    this.threshold = options.threshold;
    this.store = options.store;
    this.notify = options.notify;
    this.inFlightImages = options.inFlightImages;
  }

  /**
   * A job succeeded: the account is not out. Records what an image cost and the balance the job
   * reported (if any); returns whether that balance is below the threshold.
   */
  async jobSucceeded(outcome: { remaining: number | undefined; cost: number | undefined; images: number }) {
    if (outcome.cost !== undefined && outcome.cost > 0 && outcome.images > 0)
      this.imagePrice = outcome.cost / outcome.images;
    await this.store.setSetting(OUT_NOTIFIED, undefined);
    return outcome.remaining === undefined ? undefined : this.observe(outcome.remaining);
  }

  /**
   * A balance read from the free credits call. Its paid credits are what each job reports
   * (`x-remaining-credits`), so they alone are watched for the low notice and for a top-up: counted in,
   * the free credits made every check look like a top-up over the jobs' balances and re-armed the notice.
   * Ends "out of credits" only when it pays for an image: a fractional remainder below one image's price
   * would only buy another refused call. Free credits count while the API has not refused (a new account
   * may hold nothing else, and how the API spends them is not documented); once it has, only paid credits
   * end it, else every request would be sent to be refused again.
   * @returns whether jobs can be sent again.
   */
  async balanceChecked(balance: { credits: number; total: number }): Promise<boolean> {
    await this.observe(balance.credits);
    const spendable = (await this.isOut()) ? balance.credits : balance.total;
    const covers = spendable >= this.imagePrice;
    if (covers) await this.store.setSetting(OUT_NOTIFIED, undefined);
    return covers;
  }

  /** The API refused for lack of credits: tells the admins once until credits come back. */
  async outOfCredits(): Promise<void> {
    this.lastKnown = 0;
    if (await this.store.getSetting(LOW_NOTIFIED)) await this.store.setSetting(LOWEST_SINCE_LOW, '0');
    // A claim, not a read then a write: of several processes refused at once, one tells the admins.
    if (!(await this.store.claimSetting(OUT_NOTIFIED, String(Date.now())))) return;
    await this.notify(
      '\ud83d\uded1 SDXL credits ran out: /imagine is refusing jobs until the account is topped up.',
    );
  }

  /** True once the API said the account is out, until a job succeeds or a balance pays for an image. */
  async isOut(): Promise<boolean> {
    return Boolean(await this.store.getSetting(OUT_NOTIFIED));
  }

  /** Records a balance; returns whether it is below the threshold. */
  private async observe(remaining: number): Promise<boolean> {
    this.lastKnown = remaining;
    const notified = await this.store.getSetting(LOW_NOTIFIED);
    if (remaining >= this.threshold) {
      // Jobs finish out of order, so a job that started earlier can report an older, higher balance.
      // Only a balance above anything concurrent jobs could explain is a top-up that re-arms the notice.
      const lowest = Number((await this.store.getSetting(LOWEST_SINCE_LOW)) ?? 0);
      if (notified && remaining > lowest + this.imagePrice * this.inFlightImages) {
        await this.store.setSetting(LOW_NOTIFIED, undefined);
        await this.store.setSetting(LOWEST_SINCE_LOW, undefined);
      }
      return false;
    }
    // Claimed atomically: several processes may see the same crossing; one alone posts the notice.
    if (notified || !(await this.store.claimSetting(LOW_NOTIFIED, String(Date.now())))) {
      const lowest = Number((await this.store.getSetting(LOWEST_SINCE_LOW)) ?? remaining);
      if (remaining < lowest) await this.store.setSetting(LOWEST_SINCE_LOW, String(remaining));
      return true;
    }
    await this.store.setSetting(LOWEST_SINCE_LOW, String(remaining));
    await this.notify(
      `\u26a0\ufe0f SDXL credits are low: ${formatCredits(remaining)} left (warning threshold ${formatCredits(this.threshold)}). Top up the account to keep /imagine working.`,
    );
    return true;
  }
}
