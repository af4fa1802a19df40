import type { JobStore } from './store/job-store.ts';

const LOW_NOTIFIED = 'credits.lowNotified';
const OUT_NOTIFIED = 'credits.outNotified';

/** Formats a credit balance the way the API reports it (fractional), without noise. */
export function formatCredits(credits: number): string {
  return Number(credits.toFixed(4)).toString();
}

/**
 * Watches the balance each result reports and tells the admins once per crossing: once when it falls
 * below the threshold (again only after it rose above), once when it runs out. The flags live in the
 * job store, so a restart does not repeat a notice.
 */
export class CreditMonitor {
  private readonly threshold: number;
  private readonly store: JobStore;
  private readonly notify: (text: string) => Promise<void>;
  /** The last balance seen, if any. */
  lastKnown: number | undefined;

  constructor(options: { threshold: number; store: JobStore; notify: (text: string) => Promise<void> }) {
    this.threshold = options.threshold;
    this.store = options.store;
    this.notify = options.notify;
  }

  /** Records a balance; returns whether it is below the threshold. */
  async observe(remaining: number): Promise<boolean> {
    this.lastKnown = remaining;
    if (remaining > 0) await this.store.setSetting(OUT_NOTIFIED, undefined);
    const low = remaining < this.threshold;
    if (!low) {
      await this.store.setSetting(LOW_NOTIFIED, undefined);
      return false;
    }
    if (!(await this.store.getSetting(LOW_NOTIFIED))) {
      await this.store.setSetting(LOW_NOTIFIED, String(Date.now()));
      await this.notify(
        `\u26a0\ufe0f SDXL credits are low: ${formatCredits(remaining)} left (warning threshold ${formatCredits(this.threshold)}). Top up the account to keep /imagine working.`,
      );
    }
    return true;
  }

  /** The API refused for lack of credits: tells the admins once until credits come back. */
  async outOfCredits(): Promise<void> {
    this.lastKnown = 0;
    if (await this.store.getSetting(OUT_NOTIFIED)) return;
    await this.store.setSetting(OUT_NOTIFIED, String(Date.now()));
    await this.notify(
      '\ud83d\uded1 SDXL credits ran out: /imagine is refusing jobs until the account is topped up.',
    );
  }

  /** True once the API said the account is out, until a balance above 0 is seen. */
  async isOut(): Promise<boolean> {
    return Boolean(await this.store.getSetting(OUT_NOTIFIED));
  }
}
