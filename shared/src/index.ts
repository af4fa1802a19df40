import { setTimeout as wait } from 'node:timers/promises';
import { createAxiosTransport } from './axios-transport.ts';
import { createHttpTransport } from './http-transport.ts';
import { SdxlClient, type ClientOptions, type ClientRuntime } from './client.ts';
import type { Sleep } from './limiter.ts';

export * from './core.ts';
export { createAxiosTransport, type AxiosTransportOptions } from './axios-transport.ts';
export { createHttpTransport, type HttpTransportOptions } from './http-transport.ts';

/** Node's timers, cancellable. */
export const nodeSleep: Sleep = (ms, signal) => wait(ms, undefined, signal ? { signal } : undefined);

/**
 * A client with Node's defaults: Node's own HTTP and timers, or axios when the environment names a
 * proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, with `NO_PROXY`), which axios honours and Node's
 * HTTP does not. Pass `transport` or `sleep` to replace them.
 */
export function createClient(options: ClientOptions & Partial<ClientRuntime> = {}): SdxlClient {
  const transport = options.transport ?? (proxyConfigured() ? createAxiosTransport() : createHttpTransport());
  return new SdxlClient({ transport, sleep: nodeSleep, ...options });
}

/** Whether a proxy is set the way axios reads it (either case of each name). */
function proxyConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['http_proxy', 'https_proxy', 'all_proxy'].some((name) => !!(env[name] || env[name.toUpperCase()]));
}

/** Settings read from the environment by the command line and the bot. */
export interface EnvSettings {
  apiKey?: string;
  baseUrl?: string;
  lowCreditsThreshold?: number;
}

/** An environment variable holding a value that is not allowed; `variable` names it, `detail` says why. */
export class EnvSettingError extends RangeError {
  override name = 'EnvSettingError';
  readonly variable: string;
  readonly detail: string;
  constructor(variable: string, detail: string) {
    super(`${variable}: ${detail}`);
    this.variable = variable;
    this.detail = detail;
  }
}

/**
 * Reads `SDXL_API_KEY` (or `SEGMIND_API_KEY`), `SDXL_BASE_URL` and `SDXL_LOW_CREDITS`.
 * @throws {EnvSettingError} naming the variable when `SDXL_LOW_CREDITS` is not a number.
 */
export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): EnvSettings {
  const settings: EnvSettings = {};
  const apiKey = env.SDXL_API_KEY?.trim() || env.SEGMIND_API_KEY?.trim();
  if (apiKey) settings.apiKey = apiKey;
  const baseUrl = env.SDXL_BASE_URL?.trim();
  if (baseUrl) settings.baseUrl = baseUrl;
  const low = env.SDXL_LOW_CREDITS?.trim();
  if (low) {
    const threshold = Number(low);
    if (!Number.isFinite(threshold) || threshold < 0) {
      throw new EnvSettingError(
        'SDXL_LOW_CREDITS',
        `"${low}" is not allowed; allowed: a number of credits, 0 or more`,
      );
    }
    settings.lowCreditsThreshold = threshold;
  }
  return settings;
}
export {
  RedisStartWindow,
  TAKE_START_LUA,
  type RedisEval,
  type RedisStartWindowOptions,
} from './redis-window.ts';
export { RedisJobTimeStore } from './redis-job-times.ts';
