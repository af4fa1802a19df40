import { createClient, type PollOptions, type SdxlClient } from '@sdxl-kit/client';
import type { AccountNode } from './account.ts';
import type { RuntimeNode } from './red.ts';

/** One client per config node, so every SDXL node on an account shares its limiter and credit state. */
export interface Account {
  readonly client: SdxlClient;
  /** Whether the last known balance was below the threshold; undefined until a call reports credits. */
  lowCredits: boolean | undefined;
}

const accounts = new WeakMap<AccountNode, Account>();

/**
 * The account behind a config node, created on first use. Keyed by the node object: a redeploy
 * makes a new config node, and so a fresh client with the new key and limits.
 * @throws {RangeError} when a setting of the config node is refused or a limit is out of range.
 */
export function accountFor(
  config: AccountNode & Pick<RuntimeNode, 'trace' | 'debug'>,
  poll?: PollOptions,
): Account {
  let account = accounts.get(config);
  if (!account) {
    const { settings } = config;
    if (!settings) throw new RangeError(config.refused ?? 'they could not be read');
    const apiKey = config.credentials.apiKey;
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
      // The SDXL node reports retries itself (with the message at hand); these lines are for tracing.
      logger: { debug: (message) => config.trace(message), warn: (message) => config.debug(message) },
    });
    account = { client, lowCredits: undefined };
    accounts.set(config, account);
  }
  return account;
}
