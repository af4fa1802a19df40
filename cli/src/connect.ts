import { randomBytes } from 'node:crypto';
import {
  DEFAULT_BASE_URL,
  createClient,
  settingsFromEnv,
  type ClientOptions,
  type SdxlClient,
} from '@sdxl-kit/client';
import { UsageError } from './exit.ts';
import type { Io } from './io.ts';
import { FileJobTimeStore, jobTimesPath } from './job-times-file.ts';
import { accountOf, keptPrices, pricesPath } from './prices-file.ts';
import { sharedPace } from './shared-pace.ts';

export interface Connection {
  client: SdxlClient;
  /** Where the API address came from, for hints: `--base-url`, `SDXL_BASE_URL`, or the default. */
  baseUrlSource: string;
  /** Set when running against an embedded sandbox. */
  sandboxUrl?: string;
  close(): Promise<void>;
}

interface ConnectFlags {
  sandbox?: boolean | undefined;
  'base-url'?: string | undefined;
}

/** How hints name the API address a run used. */
export function baseUrlSource(flags: ConnectFlags, env: NodeJS.ProcessEnv): string {
  if (flags.sandbox) return 'the embedded sandbox';
  if (flags['base-url'] !== undefined) return '--base-url';
  if (env.SDXL_BASE_URL?.trim()) return 'SDXL_BASE_URL';
  return `the default API address (${DEFAULT_BASE_URL})`;
}

/**
 * A client for the hosted API (key from SDXL_API_KEY or SEGMIND_API_KEY), or for a sandbox started
 * in this process with a throwaway key.
 */
export async function connect(
  io: Io,
  flags: ConnectFlags,
  options: Omit<ClientOptions, 'apiKey' | 'baseUrl'> = {},
): Promise<Connection> {
  let env;
  try {
    env = settingsFromEnv(io.env);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const common = {
    ...(env.lowCreditsThreshold !== undefined && { lowCreditsThreshold: env.lowCreditsThreshold }),
    ...options,
  };
  if (flags.sandbox && flags['base-url'] !== undefined) {
    throw new UsageError(
      '--base-url and --sandbox do not go together: --sandbox runs its own local API. Drop one of them.',
    );
  }
  const source = baseUrlSource(flags, io.env);
  if (flags.sandbox) {
    const { startSandbox } = await import('@sdxl-kit/sandbox');
    const apiKey = `sandbox-${randomBytes(8).toString('hex')}`;
    const sandbox = await startSandbox({ apiKey });
    return {
      client: createClient({ ...common, apiKey, baseUrl: sandbox.url }),
      sandboxUrl: sandbox.url,
      baseUrlSource: source,
      close: () => sandbox.close(),
    };
  }
  if (!env.apiKey) {
    throw new UsageError(
      'No API key. Set SDXL_API_KEY (or SEGMIND_API_KEY) to your Segmind key, or add --sandbox to try it offline.',
    );
  }
  const baseUrl = flags['base-url'] ?? env.baseUrl;
  if (baseUrl !== undefined && !/^https?:\/\/[^\s]+$/i.test(baseUrl)) {
    throw new UsageError(`Base URL: "${baseUrl}" is not allowed; allowed: an http:// or https:// address.`);
  }
  // Only commands that send billed calls are paced (a poll, a resume or a balance check is not).
  const redisUrl = options.requestsPerMinute !== undefined ? io.env.SDXL_REDIS_URL?.trim() : undefined;
  const pace = redisUrl
    ? await sharedPace(redisUrl, { apiKey: env.apiKey, baseUrl: baseUrl ?? DEFAULT_BASE_URL }, options)
    : undefined;
  // What this run learns of job times and of the account's prices, the next run uses (an embedded
  // sandbox's are its own).
  const jobTimesFile = jobTimesPath(io.env);
  const pricesFile = pricesPath(io.env);
  const prices =
    pricesFile && (await keptPrices(pricesFile, accountOf(baseUrl ?? DEFAULT_BASE_URL, env.apiKey)));
  return {
    client: createClient({
      ...common,
      apiKey: env.apiKey,
      ...(baseUrl !== undefined && { baseUrl }),
      ...(pace && { limiter: pace.limiter }),
      ...(jobTimesFile && { jobTimes: new FileJobTimeStore(jobTimesFile) }),
      ...(prices && { prices }),
    }),
    baseUrlSource: source,
    close: async () => pace?.close(),
  };
}
