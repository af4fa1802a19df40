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
  readonly settings: AccountSettings;
  credentials: Partial<AccountCredentials>;
}

/** '' and absent mean unset; anything else must be a finite number, or the setting is refused. */
export function optionalNumber(label: string, value: unknown): number | undefined {
  if (value === undefined || value === null || (typeof value === 'string' && value.trim() === ''))
    return undefined;
  const number = Number(value);
  if (!Number.isFinite(number)) throw new RangeError(`${label}: "${String(value)}" is not a number`);
  return number;
}

export function readAccountSettings(config: AccountConfig): AccountSettings {
  const baseUrl = config.baseUrl?.trim();
  return {
    baseUrl: baseUrl || undefined,
    requestsPerMinute: optionalNumber('Requests per minute', config.requestsPerMinute),
    maxInFlight: optionalNumber('Images in flight', config.maxInFlight),
    lowCreditsThreshold: optionalNumber('Low-credit threshold', config.lowCreditsThreshold),
    timeoutSeconds: optionalNumber('Timeout', config.timeout),
  };
}
