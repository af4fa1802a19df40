// The client's own options, checked once when it is made: a NaN timeout or a base URL without its
// scheme would otherwise surface on every call as a misleading connection error.
import type { ClientOptions } from './client.ts';
import { InvalidRequestError, type InvalidField } from './errors.ts';
import { describeValue } from './schema.ts';

type Check = (value: unknown) => boolean;

/** `URL.canParse`, which Node-RED 4's older Nodes lack. */
function parses(url: string): boolean {
  try {
    new URL(url);
    return true;
  } catch {
    return false;
  }
}

const positive: Check = (value) => typeof value === 'number' && value > 0 && value <= Number.MAX_SAFE_INTEGER;
const atLeastZero: Check = (value) => typeof value === 'number' && Number.isFinite(value) && value >= 0;
const wholeFrom =
  (min: number): Check =>
  (value) =>
    Number.isInteger(value) && (value as number) >= min;

const CHECKS: { [K in keyof ClientOptions]?: [Check, string] } = {
  baseUrl: [
    (value) => typeof value === 'string' && /^https?:\/\/[^\s/]+/.test(value) && parses(value),
    'an http(s) URL such as https://api.segmind.com/v1',
  ],
  timeoutMs: [positive, 'a number of ms above 0'],
  deadlineMs: [positive, 'a number of ms above 0'],
  maxRetries: [wholeFrom(0), 'a whole number, 0 or more'],
  retryBaseDelayMs: [atLeastZero, 'a number of ms, 0 or more'],
  retryMaxDelayMs: [atLeastZero, 'a number of ms, 0 or more'],
  maxRateLimitWaitMs: [atLeastZero, 'a number of ms, 0 or more'],
  retryBrokenConnections: [(value) => typeof value === 'boolean', 'true or false'],
  requestsPerMinute: [
    (value) => typeof value === 'number' && value > 0,
    'a number above 0 (leave unset for no limit)',
  ],
  maxInFlight: [wholeFrom(1), 'a whole number, 1 or more'],
  rateWindowMs: [positive, 'a number of ms above 0'],
  lowCreditsThreshold: [atLeastZero, 'a number of credits, 0 or more'],
};

/**
 * Refuses options the client cannot work with, naming each, its value and what is allowed.
 * `redact` keeps a key out of a shown value (a base URL could carry one). The key itself is never shown.
 * @throws {InvalidRequestError} before anything is sent.
 */
export function checkClientOptions(options: ClientOptions, redact: (text: string) => string): void {
  const fields: InvalidField[] = [];
  const refuse = (field: string, value: string, allowed: string) =>
    fields.push({ field, value, allowed, message: `${field}: ${value} is not allowed; allowed: ${allowed}` });
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey.trim() === '')) {
    refuse('apiKey', 'an empty or non-text key', 'the API key as text, or unset when the transport adds it');
  }
  for (const [name, [check, allowed]] of Object.entries(CHECKS) as [keyof ClientOptions, [Check, string]][]) {
    const value = options[name];
    if (value !== undefined && !check(value)) refuse(name, redact(describeValue(value)), allowed);
  }
  if (fields.length > 0) throw new InvalidRequestError(fields, 'client options');
}
