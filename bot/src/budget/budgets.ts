import {
  esrgan,
  formatCredits,
  mayHaveBilled,
  sdxlImg2Img,
  sdxlTxt2Img,
  windowPeriod,
  type BudgetExceededError,
  type BudgetLedger,
  type BudgetLimit,
  type BudgetUsage,
  type ModelDeclaration,
  type PriceBook,
  type Reservation,
} from '@sdxl-kit/client';
import type { BaseInteraction } from 'discord.js';
import { memberRoleIds } from '../access.ts';
import { BotRefusal } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { JobOperation, JobRecord, JobStore } from '../store/job-store.ts';
import type { NoticeClaims } from './notices.ts';
import { serverBudgets, type BudgetSettings } from './settings.ts';

/** Who a job is for: the server its budgets are counted in, the member and their roles. */
export interface BudgetScope {
  guildId: string | null;
  userId: string;
  roles: readonly string[];
}

/**
 * Who a job from `interaction` is for: its server (`guildId` when a button under a result sent to the
 * member directly counts against the server of that result), the member and their roles.
 */
export function budgetScope(interaction: BaseInteraction, guildId?: string | null): BudgetScope {
  return {
    guildId: guildId ?? interaction.guildId,
    userId: interaction.user.id,
    roles: memberRoleIds(interaction),
  };
}

/** The model a job runs on, by what it does. */
const MODEL_OF_KIND: Readonly<Record<JobOperation['kind'] | 'imagine', ModelDeclaration>> = {
  imagine: sdxlTxt2Img,
  vary: sdxlImg2Img,
  upscale: esrgan,
};

/** Share of a server budget at which the admins are told it is nearly spent. */
const NEARLY_SPENT = 0.8;

/** Unix seconds for Discord's `<t:…:R>`, which each reader sees in their own time. */
const relative = (at: Date) => `<t:${Math.floor(at.getTime() / 1000)}:R>`;

const isServerLimit = (limit: BudgetLimit) => limit.id.startsWith('guild:');

/**
 * The bot's credit budgets: per server per day and per month, per member per day (a role may give its
 * members another), from `.env` and `/sdxl-admin budget`. A job holds its estimate when it is accepted
 * (before it is queued), settles at what the API billed, and lets it go when nothing was billed; the
 * hold is plain data kept with the job, so whichever process finishes the job, or the next start,
 * settles it. The admin channel hears once when a server budget passes 80% and once when it is full.
 */
export class BotBudgets {
  private readonly ledger: BudgetLedger;
  private readonly claims: NoticeClaims;
  private readonly store: JobStore;
  private readonly defaults: BudgetSettings;
  private readonly prices: PriceBook;
  private readonly notify: (text: string) => Promise<void>;
  private readonly logger: Logger;

  constructor(deps: {
    ledger: BudgetLedger;
    claims: NoticeClaims;
    store: JobStore;
    /** The budgets `.env` sets for every server. */
    defaults: BudgetSettings;
    /** The client's prices in force: published until the API reports what this account is billed. */
    prices: PriceBook;
    /** Tells the admins (the admin channel, and the log). */
    notify: (text: string) => Promise<void>;
    logger: Logger;
  }) {
    this.ledger = deps.ledger;
    this.claims = deps.claims;
    this.store = deps.store;
    this.defaults = deps.defaults;
    this.prices = deps.prices;
    this.notify = deps.notify;
    this.logger = deps.logger;
  }

  /** The budgets a job of `scope` keeps to now, with words for each. */
  async limitsFor(scope: BudgetScope): Promise<BudgetLimit[]> {
    const { settings } = await serverBudgets(this.store, this.defaults, scope.guildId);
    const server = scope.guildId ?? 'direct';
    const limits: BudgetLimit[] = [];
    const add = (id: string, window: 'day' | 'month', credits: number | undefined, label: string) => {
      if (credits !== undefined) limits.push({ id, window, credits, label });
    };
    add(`guild:${server}`, 'day', settings.serverDay, 'this server\u2019s daily budget');
    add(`guild:${server}`, 'month', settings.serverMonth, 'this server\u2019s monthly budget');
    // A role's budget replaces the member's; of several, the largest.
    const role = scope.roles
      .filter((id) => settings.roles[id] !== undefined)
      .sort((a, b) => settings.roles[b]! - settings.roles[a]!)[0];
    add(
      `member:${server}:${scope.userId}`,
      'day',
      role === undefined ? settings.memberDay : settings.roles[role],
      role === undefined ? 'your daily budget' : `your daily budget (as <@&${role}>)`,
    );
    return limits;
  }

  /** What a job is expected to cost at the prices in force, or undefined when its model has no known price. */
  estimate(kind: JobOperation['kind'] | undefined, images: number): number | undefined {
    return this.prices.costOf(MODEL_OF_KIND[kind ?? 'imagine'], images);
  }

  /**
   * Holds a job's estimate (see `hold`) while `accept` stores and queues the job, and lets it go again
   * if `accept` throws: a job that never got in line holds nothing.
   * @throws {BotRefusal} `budget` (nothing is held), or what `accept` threw.
   */
  async holding(
    scope: BudgetScope,
    kind: JobOperation['kind'] | undefined,
    images: number,
    accept: (reservation: Reservation | undefined) => Promise<void>,
  ): Promise<void> {
    const reservation = await this.hold(scope, kind, images);
    try {
      await accept(reservation);
    } catch (error) {
      if (reservation) await this.release({ id: 'not accepted', reservation });
      throw error;
    }
  }

  /**
   * Holds a job's estimate against every budget it keeps to, or none: undefined when no budget is set.
   * @throws {BotRefusal} `budget` naming the budget, what is spent and when it resets; nothing is held.
   */
  async hold(
    scope: BudgetScope,
    kind: JobOperation['kind'] | undefined,
    images: number,
  ): Promise<Reservation | undefined> {
    const limits = await this.limitsFor(scope);
    if (limits.length === 0) return undefined;
    const credits = this.estimate(kind, images);
    if (credits === undefined) {
      throw new BotRefusal(
        'budget',
        '\ud83d\udcb0 This model has no known price, so a credit budget cannot be kept; nothing was queued or billed.',
      );
    }
    let reservation: Reservation;
    try {
      reservation = await this.ledger.reserve(limits, credits);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'budget_exceeded') throw error;
      const refused = error as BudgetExceededError;
      if (isServerLimit(refused.limit as BudgetLimit))
        void this.tellAdmins([refused.limit as BudgetLimit], true);
      throw new BotRefusal('budget', refusalText(refused));
    }
    void this.tellAdmins(limits.filter(isServerLimit), false);
    return reservation;
  }

  /** The job's API call returned: its hold becomes what was billed (the estimate where the API did not say). Never rejects. */
  async settle(job: Pick<JobRecord, 'id' | 'reservation'>, cost: number | undefined): Promise<void> {
    const reservation = job.reservation;
    if (!reservation) return;
    await this.ledger
      .settle(reservation, cost ?? reservation.credits)
      .catch((error: unknown) =>
        this.logger.error({ jobId: job.id, err: error }, 'could not settle a budget'),
      );
  }

  /** Nothing was billed (cancelled, stopped in line, refused by the API): the hold goes. Never rejects. */
  async release(job: Pick<JobRecord, 'id' | 'reservation'>): Promise<void> {
    const reservation = job.reservation;
    if (!reservation) return;
    await this.ledger
      .release(reservation)
      .catch((error: unknown) =>
        this.logger.error({ jobId: job.id, err: error }, 'could not release a budget'),
      );
  }

  /**
   * The job failed: the hold goes if nothing can have been billed, else its estimate counts as spent.
   * `sent`: the billed request left for the API; `accepted`: the async API took the job.
   */
  async failed(
    job: Pick<JobRecord, 'id' | 'reservation'>,
    error: unknown,
    progress: { sent: boolean; accepted: boolean },
  ): Promise<void> {
    if (progress.sent && mayHaveBilled(error, progress.accepted)) await this.settle(job, undefined);
    else await this.release(job);
  }

  /** Where each budget of `scope` stands, for `/quota` and `/sdxl-admin budget`. */
  async standing(scope: BudgetScope): Promise<BudgetUsage[]> {
    const limits = await this.limitsFor(scope);
    return Promise.all(limits.map((limit) => this.ledger.usage(limit)));
  }

  /**
   * Tells the admins, once per window each, when a server budget passes 80% (spent and held) and when
   * it is used up (`refused`: it had no room for a job). The 80% notice goes first, whichever process
   * or job gets there first; once a budget is used up a later 80% notice would be old news. Never rejects.
   */
  private async tellAdmins(limits: readonly BudgetLimit[], refused: boolean): Promise<void> {
    for (const limit of limits) {
      try {
        const usage = await this.ledger.usage(limit);
        const committed = usage.spent + usage.reserved;
        const full = refused || committed >= limit.credits;
        const nearly = committed >= limit.credits * NEARLY_SPENT;
        if ((nearly || full) && (await this.claim(limit, '80')) && nearly) {
          await this.notify(
            `\u26a0\ufe0f Server \`${serverOf(limit)}\`: ${limit.label} is ${Math.floor((committed / limit.credits) * 100)}% spent: ${formatCredits(usage.spent)} of ${formatCredits(limit.credits)} credits spent${held(usage)}.${resets(usage)}`,
          );
        }
        if (full && (await this.claim(limit, '100'))) {
          await this.notify(
            `\ud83d\uded1 Server \`${serverOf(limit)}\`: ${limit.label} of ${formatCredits(limit.credits)} credits is used up (${formatCredits(usage.spent)} spent${held(usage)}): jobs that do not fit are refused.${resets(usage)}`,
          );
        }
      } catch (error) {
        this.logger.warn({ budget: limit.id, err: error }, 'could not post a budget notice');
      }
    }
  }

  private claim(limit: BudgetLimit, level: '80' | '100'): Promise<boolean> {
    const { period, resetsAt } = windowPeriod(limit.window, Date.now());
    // A total budget never resets: its claim is kept for a year.
    const expiresAt = resetsAt ? resetsAt.getTime() + 3_600_000 : Date.now() + 365 * 86_400_000;
    return this.claims.claim(`${limit.id}:${limit.window}:${period}:${level}`, expiresAt);
  }
}

const serverOf = (limit: BudgetLimit) => limit.id.slice('guild:'.length);

const held = (usage: BudgetUsage) =>
  usage.reserved > 0 ? ` and ${formatCredits(usage.reserved)} held by jobs in flight` : '';

const resets = (usage: BudgetUsage) => (usage.resetsAt ? ` It resets ${relative(usage.resetsAt)}.` : '');

/** The private answer to a job a budget has no room for. */
function refusalText(refused: BudgetExceededError): string {
  const { limit } = refused;
  const label = limit.label ?? limit.id;
  const heldNow = refused.reserved > 0 ? `, ${formatCredits(refused.reserved)} held by jobs in flight` : '';
  const reset = refused.resetsAt ? ` It resets ${relative(refused.resetsAt)}.` : '';
  return `\ud83d\udcb0 This job (about ${formatCredits(refused.requested)} credits) does not fit ${label}: ${formatCredits(refused.spent)} of ${formatCredits(limit.credits)} credits spent${heldNow}.${reset} Nothing was queued or billed.`;
}
