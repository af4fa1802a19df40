/** What an `sdxl-config` node holds: one API account and how hard this Node-RED may use it. */
export interface AccountSettings {
  /** Empty means the client's default, the hosted API. */
  baseUrl: string | undefined;
  requestsPerMinute: number | undefined;
  maxInFlight: number | undefined;
  lowCreditsThreshold: number | undefined;
  /** One attempt gives up after this long; empty means the client's default (CLIENT_DEFAULTS.timeoutMs). */
  timeoutSeconds: number | undefined;
}

/** The editor's raw values for the config node; every number arrives as a string, '' meaning unset. */
export interface AccountConfig {
  name?: string;
  baseUrl?: string;
  requestsPerMinute?: string | number;
  maxInFlight?: string | number;
  lowCreditsThreshold?: string | number;
  timeout?: string | number;
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
    const [label, allowed] = NUMBERS[name];
    refusals.push(`${label}: "${String(value)}" is not allowed; allowed: ${allowed}`);
    return undefined;
  };
  const baseUrl = config.baseUrl?.trim();
  const settings: AccountSettings = {
    baseUrl: baseUrl || undefined,
    requestsPerMinute: number('requestsPerMinute'),
    maxInFlight: number('maxInFlight'),
    lowCreditsThreshold: number('lowCreditsThreshold'),
    timeoutSeconds: number('timeout'),
  };
  if (refusals.length > 0) throw new RangeError(refusals.join('; '));
  return settings;
}
