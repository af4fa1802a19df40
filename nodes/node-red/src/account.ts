/** The windows an account's budget may count over. */
export const BUDGET_WINDOWS = ['hour', 'day'] as const;
export type AccountBudgetWindow = (typeof BUDGET_WINDOWS)[number];

/** A cap on what every SDXL node on the account may spend in one UTC hour or day. */
export interface AccountBudget {
  credits: number;
  window: AccountBudgetWindow;
}

/** What an `sdxl-config` node holds: one API account and how hard this Node-RED may use it. */
export interface AccountSettings {
  /** Empty means the client's default, the hosted API. */
  baseUrl: string | undefined;
  requestsPerMinute: number | undefined;
  maxInFlight: number | undefined;
  lowCreditsThreshold: number | undefined;
  /** One attempt gives up after this long; empty means the client's default (CLIENT_DEFAULTS.timeoutMs). */
  timeoutSeconds: number | undefined;
  /** Undefined: no budget. */
  budget: AccountBudget | undefined;
}

/** The editor's raw values for the config node; every number arrives as a string, '' meaning unset. */
export interface AccountConfig {
  name?: string;
  baseUrl?: string;
  requestsPerMinute?: string | number;
  maxInFlight?: string | number;
  lowCreditsThreshold?: string | number;
  timeout?: string | number;
  /** Credits per `budgetWindow`; '' means no budget. */
  budget?: string | number;
  /** `hour` or `day`; '' or absent means day (accounts saved before there was a choice). */
  budgetWindow?: string;
}

export interface AccountCredentials {
  apiKey: string;
}

/** The runtime side of an `sdxl-config` node, as SDXL nodes see it. */
export interface AccountNode {
  readonly id: string;
  /** Undefined when a setting is refused: then nothing may be sent on this account. */
  readonly settings: AccountSettings | undefined;
  /** Why the settings were refused: each field, its value and what is allowed. */
  readonly refused?: string;
  credentials: Partial<AccountCredentials>;
}

/** The editor's label and allowed text for each number, so a refusal reads like the editor's tooltip. */
const NUMBERS = {
  requestsPerMinute: ['Requests/min', 'a whole number, 1 or more (empty: no limit)'],
  maxInFlight: ['In flight', 'a whole number from 1 to 32'],
  lowCreditsThreshold: ['Low credits', 'a number of credits, 0 or more'],
  timeout: ['Timeout (s)', 'a number of seconds above 0, up to 600'],
  budget: ['Budget', 'a number of credits, 0 or more (empty: no budget)'],
} as const;

function isBlank(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

/**
 * Reads the config node's values; '' and absent mean unset.
 * @throws {RangeError} naming every setting that is not a number, its value and what is allowed. The
 * caller must not fall back to defaults: that would drop the base URL and send the key elsewhere.
 */
export function readAccountSettings(config: AccountConfig): AccountSettings {
  const refusals: string[] = [];
  const number = (name: keyof typeof NUMBERS): number | undefined => {
    const value = config[name];
    if (isBlank(value)) return undefined;
    const parsed = Number(value);
    if (Number.isFinite(parsed)) return parsed;
    refuse(name);
    return undefined;
  };
  const refuse = (name: keyof typeof NUMBERS): void => {
    const [label, allowed] = NUMBERS[name];
    refusals.push(`${label}: "${String(config[name])}" is not allowed; allowed: ${allowed}`);
  };
  // The other limits are checked by the client; a budget's ledger would only refuse it at the first call.
  let budgetCredits = number('budget');
  if (budgetCredits !== undefined && budgetCredits < 0) {
    refuse('budget');
    budgetCredits = undefined;
  }
  const window = isBlank(config.budgetWindow) ? 'day' : String(config.budgetWindow).trim();
  if (!(BUDGET_WINDOWS as readonly string[]).includes(window)) {
    refusals.push(`Budget per: "${window}" is not allowed; allowed: hour or day`);
  }
  const baseUrl = config.baseUrl?.trim();
  const settings: AccountSettings = {
    baseUrl: baseUrl || undefined,
    requestsPerMinute: number('requestsPerMinute'),
    maxInFlight: number('maxInFlight'),
    lowCreditsThreshold: number('lowCreditsThreshold'),
    timeoutSeconds: number('timeout'),
    budget:
      budgetCredits === undefined
        ? undefined
        : { credits: budgetCredits, window: window as AccountBudgetWindow },
  };
  if (refusals.length > 0) throw new RangeError(refusals.join('; '));
  return settings;
}
