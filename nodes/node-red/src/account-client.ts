import {
  MemoryBudget,
  createClient,
  type BudgetGuard,
  type BudgetLimit,
  type BudgetUsage,
  type PollOptions,
  type SdxlClient,
} from '@sdxl-kit/client';
import type { AccountBudget, AccountNode } from './account.ts';
import type { RuntimeNode } from './red.ts';

/** One client per config node, so every SDXL node on an account shares its limiter and credit state. */
export interface Account {
  readonly client: SdxlClient;
  /** Whether the last known balance was below the threshold; undefined until a call reports credits. */
  lowCredits: boolean | undefined;
  /** The account's budget, held by its client for every call; undefined when none is set. */
  readonly budget: BudgetGuard | undefined;
}

const accounts = new WeakMap<AccountNode, Account>();

/**
 * What every account of this Node-RED has spent, each under its config node's id. Kept apart from
 * the config node objects, which a redeploy replaces: a redeploy must not give a day's budget back.
 * A Node-RED restart does (the counts are in memory).
 */
const spending = new MemoryBudget();

/** The budget's single limit, named after the config node so its count survives a redeploy. */
export function budgetLimit(config: AccountNode & { name?: string }, budget: AccountBudget): BudgetLimit {
  const period = budget.window === 'hour' ? 'hourly' : 'daily';
  return {
    // A ledger id takes letters, digits and :_.- only; Node-RED's ids are hex with a dot.
    id: `sdxl-config:${config.id.replace(/[^A-Za-z0-9:_.-]/g, '_')}`,
    credits: budget.credits,
    window: budget.window,
    label: `The ${period} budget of the SDXL account "${config.name || 'SDXL account'}"`,
  };
}

/**
 * The account behind a config node, created on first use. Keyed by the node object: a redeploy
 * makes a new config node, and so a fresh client with the new key and limits.
 * @throws {RangeError} when a setting of the config node is refused or a limit is out of range.
 */
export function accountFor(
  config: AccountNode & Pick<RuntimeNode, 'trace' | 'debug' | 'name'>,
  poll?: PollOptions,
): Account {
  let account = accounts.get(config);
  if (!account) {
    const { settings } = config;
    if (!settings) throw new RangeError(config.refused ?? 'they could not be read');
    const apiKey = config.credentials.apiKey;
    const budget: BudgetGuard | undefined = settings.budget && {
      ledger: spending,
      limits: [budgetLimit(config, settings.budget)],
    };
    const client = createClient({
      ...(apiKey && { apiKey }),
      ...(settings.baseUrl && { baseUrl: settings.baseUrl }),
      ...(settings.requestsPerMinute !== undefined && { requestsPerMinute: settings.requestsPerMinute }),
      ...(settings.maxInFlight !== undefined && { maxInFlight: settings.maxInFlight }),
      ...(settings.lowCreditsThreshold !== undefined && {
        lowCreditsThreshold: settings.lowCreditsThreshold,
      }),
      ...(settings.timeoutSeconds !== undefined && { timeoutMs: settings.timeoutSeconds * 1000 }),
      ...(poll && { poll }),
      ...(budget && { budget }),
      // The SDXL node reports retries itself (with the message at hand); these lines are for tracing.
      logger: { debug: (message) => config.trace(message), warn: (message) => config.debug(message) },
    });
    account = { client, lowCredits: undefined, budget };
    accounts.set(config, account);
  }
  return account;
}

/** Where the account's budget stands, or undefined when it has none. */
export async function budgetUsage(account: Account): Promise<BudgetUsage | undefined> {
  const limit = account.budget?.limits[0];
  return limit && (await account.budget?.ledger.usage(limit));
}
