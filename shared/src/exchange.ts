// One HTTP exchange with the API as the client makes it: the key only to the API's own hosts, billed
// calls paced by the limiter, retries and waits within the call's deadline, and every failure turned
// into our own redacted error.
import {
  AbortedError,
  ConnectionError,
  RateLimitError,
  SdxlError,
  TimeoutError,
  errorFromResponse,
} from './errors.ts';
import type { RequestLimiter, Sleep } from './limiter.ts';
import { decideRetry, type RetryPolicy } from './retry.ts';
import { TransportError, type Transport, type TransportResponse } from './transport.ts';

/** Where the client reports what it does. Every line is redacted before it gets here. */
export interface Logger {
  debug?(message: string, data?: Record<string, unknown>): void;
  warn?(message: string, data?: Record<string, unknown>): void;
}

export interface CallOptions {
  /** Aborting cancels the call: queued, waiting or in flight. */
  signal?: AbortSignal;
  /** Called when an attempt leaves the queue; `attempt` counts from 1. */
  onAttempt?: (attempt: number) => void;
  /**
   * Called as soon as an attempt fails, before the call gives up its place in the limiter's line and
   * before any retry is decided. `onAttempt` runs synchronously just before an attempt goes to the
   * transport, so a call whose `onAttempt` has not run was never sent.
   */
  onAttemptFailed?: (error: SdxlError) => void;
  /** Called before waiting to retry. */
  onRetry?: (info: { attempt: number; delayMs: number; error: SdxlError }) => void;
}

/** What an exchange needs of the client: where, with which key, how long, and how to wait and report. */
export interface ExchangeSettings {
  apiKey: string | undefined;
  baseUrl: string;
  timeoutMs: number;
  deadlineMs: number;
  policy: RetryPolicy;
  transport: Transport;
  sleep: Sleep;
  now: () => number;
  random: () => number;
  limiter: RequestLimiter;
  logger: Logger | undefined;
  redact: (text: string) => string;
}

/** Sends the client's requests: one instance per client, sharing its limiter. */
export class Exchanger {
  private readonly settings: ExchangeSettings;

  constructor(settings: ExchangeSettings) {
    this.settings = settings;
  }

  /**
   * One HTTP exchange with retries. `idempotent` calls (GETs, uploads) skip the queue that paces billed
   * calls; `auth: false` sends no key (public output files); the key goes only to the API's own hosts.
   */
  async send(exchange: Exchange, options: CallOptions): Promise<TransportResponse> {
    const { method, url, body, idempotent = false } = exchange;
    const path = displayPath(url);
    const { signal } = options;
    // The deadline starts with the first attempt: time spent queued behind a paced batch is the
    // limiter's doing, bounded by the caller's signal, not a sign that the API is slow.
    let deadline: number | undefined;
    const headers: Record<string, string> = { accept: exchange.accept ?? 'image/jpeg, application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const authenticate = exchange.auth !== false && this.isOwnHost(url);
    if (this.settings.apiKey && authenticate) headers['x-api-key'] = this.settings.apiKey;
    const run = async (attempt: number): Promise<TransportResponse> => {
      deadline ??= this.settings.now() + this.settings.deadlineMs;
      const remaining = deadline - this.settings.now();
      if (remaining <= 0)
        throw new TimeoutError(`No answer within the ${this.settings.deadlineMs} ms deadline.`);
      options.onAttempt?.(attempt);
      this.log('debug', `${method} ${path} attempt ${attempt}`);
      try {
        const response = await this.settings.transport.request({
          method,
          url,
          headers,
          authenticate,
          ...(body !== undefined && { body }),
          timeoutMs: Math.min(this.settings.timeoutMs, remaining),
          ...(signal && { signal }),
        });
        if (response.status >= 200 && response.status < 300) return response;
        const text = Buffer.from(response.body).toString('utf8');
        throw errorFromResponse(response.status, text, response.headers, this.settings.redact);
      } catch (raw) {
        // Told while this call still holds its place in the line: a batch that must stop (a refused
        // key, an empty account) can cancel the queued calls before the next one goes out.
        const converted = this.toSdxlError(raw, signal);
        const error = exchange.refine?.(converted) ?? converted;
        options.onAttemptFailed?.(error);
        throw error;
      }
    };

    for (let retriesDone = 0; ; retriesDone++) {
      let error: SdxlError;
      try {
        // GETs are free and quick: they skip the queue that paces billed generations. A retry goes to
        // the front of that queue: its deadline is running, and the calls behind it came later.
        return idempotent
          ? await run(retriesDone + 1)
          : await this.settings.limiter.run(() => run(retriesDone + 1), signal, { first: retriesDone > 0 });
      } catch (raw) {
        error = this.toSdxlError(raw, signal);
      }
      if (error instanceof RateLimitError && error.resetAt)
        this.settings.limiter.pauseUntil(error.resetAt.getTime());
      const decision = decideRetry(
        { error, retriesDone, idempotent, now: this.settings.now(), random: this.settings.random },
        this.settings.policy,
      );
      if (!decision.retry || this.settings.now() + decision.delayMs >= (deadline ?? Infinity)) {
        if (decision.retry)
          this.log('warn', `giving up: a retry in ${decision.delayMs} ms would pass the deadline`);
        throw error;
      }
      this.log('warn', `${method} ${path} failed (${error.message}); retrying in ${decision.delayMs} ms`, {
        code: error.code,
        reason: decision.reason,
      });
      options.onRetry?.({ attempt: retriesDone + 1, delayMs: decision.delayMs, error });
      try {
        await this.settings.sleep(decision.delayMs, signal);
      } catch {
        throw signal?.aborted ? new AbortedError() : error;
      }
    }
  }

  /** Turns anything thrown into our own error with a redacted message; nothing foreign escapes. */
  toSdxlError(raw: unknown, signal: AbortSignal | undefined): SdxlError {
    if (signal?.aborted) return new AbortedError();
    if (raw instanceof SdxlError) return raw;
    if (raw instanceof TransportError) {
      const message = this.settings.redact(raw.message);
      switch (raw.failure) {
        case 'aborted':
          return new AbortedError();
        case 'timeout':
          return new TimeoutError(message);
        case 'connect':
          return new ConnectionError(message, false);
        case 'broken':
          return new ConnectionError(`${message} The call may have been billed.`, true);
      }
    }
    // A host transport that throws its own errors: keep only its message, never its request.
    const message = raw instanceof Error ? raw.message : String(raw);
    return new ConnectionError(this.settings.redact(`The request failed: ${message}`), true);
  }

  /**
   * Whether an address may get the key: the configured API's own origin, or Segmind's hosts over
   * https. An address an answer gives (a status URL) is used as given, but never hands the key elsewhere.
   */
  private isOwnHost(url: string): boolean {
    try {
      const target = new URL(url);
      if (target.origin === new URL(this.settings.baseUrl).origin) return true;
      return target.protocol === 'https:' && /(^|\.)segmind\.com$/.test(target.hostname);
    } catch {
      return false;
    }
  }

  log(level: 'debug' | 'warn', message: string, data?: Record<string, unknown>): void {
    const write = this.settings.logger?.[level];
    if (write) write.call(this.settings.logger, this.settings.redact(message), data);
  }
}

export interface Exchange {
  method: 'GET' | 'POST';
  url: string;
  body?: string;
  /** Safe to repeat whatever happened: retried after broken connections, and not paced. @default false */
  idempotent?: boolean;
  /** Send the key (to the API's own hosts only). @default true */
  auth?: boolean;
  accept?: string;
  /** What a failed attempt means for this address, before `onAttemptFailed` hears of it. */
  refine?: (error: SdxlError) => SdxlError;
}

/** The path of a URL for log lines (never its query, which could carry anything). */
function displayPath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '(invalid URL)';
  }
}
