import {
  AbortedError,
  BadResponseError,
  ConnectionError,
  RateLimitError,
  SdxlError,
  TimeoutError,
  createRedactor,
  errorFromResponse,
} from './errors.ts';
import { RequestLimiter, type Sleep } from './limiter.ts';
import { checkClientOptions } from './options.ts';
import { extractImages, readMetadata, type ImageMimeType } from './response.ts';
import { DEFAULT_RETRY_POLICY, decideRetry, type RetryPolicy } from './retry.ts';
import {
  parseRequest,
  randomSeed,
  toWireRequest,
  type GenerateInput,
  type ResolvedRequest,
} from './schema.ts';
import { TransportError, type Transport, type TransportResponse } from './transport.ts';

export const DEFAULT_BASE_URL = 'https://api.segmind.com/v1';

/** The defaults of the options below, for hosts that show them in their forms. */
export const CLIENT_DEFAULTS = {
  baseUrl: DEFAULT_BASE_URL,
  timeoutMs: 120_000,
  deadlineMs: 300_000,
  maxInFlight: 4,
  lowCreditsThreshold: 1,
  rateWindowMs: 60_000,
} as const;
export const TXT2IMG_PATH = '/sdxl1.0-txt2img';
export const CREDITS_PATH = '/get-user-credits';

/** Where the client reports what it does. Every line is redacted before it gets here. */
export interface Logger {
  debug?(message: string, data?: Record<string, unknown>): void;
  warn?(message: string, data?: Record<string, unknown>): void;
}

export interface ClientOptions {
  /** Sent as `x-api-key`. Leave unset when the transport authenticates (n8n credentials). */
  apiKey?: string;
  /** @default 'https://api.segmind.com/v1' */
  baseUrl?: string;
  /** One attempt gives up after this long, in ms. @default 120000 */
  timeoutMs?: number;
  /**
   * A whole call, retries and waits included, ends by this long after its first attempt starts, in
   * ms (time queued behind the limiter before that does not count; a retry goes to the front of the
   * line). Worst case is the smaller of this and (maxRetries + 1) x timeoutMs plus the waits.
   * @default 300000, or `timeoutMs` when that is longer, so one attempt always gets its full time
   */
  deadlineMs?: number;
  /** Retries after the first attempt, for 429, 5xx and connections that never left. @default 2 */
  maxRetries?: number;
  /** First backoff wait in ms, doubled each retry, 0 to 25% jitter taken off. @default 500 */
  retryBaseDelayMs?: number;
  /** Longest backoff wait in ms. @default 8000 */
  retryMaxDelayMs?: number;
  /** Longest wait for a rate limit to reset, in ms. @default 60000 */
  maxRateLimitWaitMs?: number;
  /** Retry after a connection broke once the request was sent; may bill twice. @default false */
  retryBrokenConnections?: boolean;
  /** Requests per minute through this client (5 on the free plan, 50 on Pro). @default no limit */
  requestsPerMinute?: number;
  /** Requests in flight through this client. @default 4 */
  maxInFlight?: number;
  /** The window requestsPerMinute counts over, in ms (tests shorten it). @default 60000 */
  rateWindowMs?: number;
  /** Below this many remaining credits a result has `lowCredits: true`. @default 1 */
  lowCreditsThreshold?: number;
  logger?: Logger;
  /** More strings to keep out of every error and log line (e.g. a key the transport adds). */
  secrets?: readonly string[];
}

/** What a host must supply: how to talk HTTP and how to wait. `createClient` supplies Node's. */
export interface ClientRuntime {
  transport: Transport;
  sleep: Sleep;
  /** @default Date.now */
  now?: () => number;
  /** @default Math.random */
  random?: () => number;
  /**
   * A limiter shared with other clients, so several clients of one account keep one pace (a host that
   * makes a client per run, like n8n). Replaces `requestsPerMinute`, `maxInFlight` and `rateWindowMs`.
   */
  limiter?: RequestLimiter;
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

export interface GeneratedImage {
  bytes: Buffer;
  mimeType: ImageMimeType;
  seed: number;
  /** Position in the call's images, from 0. */
  index: number;
}

export interface GenerateResult {
  images: GeneratedImage[];
  /** The request as sent, with the concrete seed. */
  request: ResolvedRequest;
  seed: number;
  remainingCredits?: number;
  cost?: number;
  requestId?: string;
  /** Seconds, as the API reports it. */
  generationTime?: number;
  /** Remaining credits are known and below the threshold. */
  lowCredits: boolean;
  /** Images asked for (`samples`) that the answer did not hold; 0 normally. Each sample may be billed. */
  missingImages: number;
}

export interface CreditBalance {
  credits: number;
  freeCredits: number;
  /** credits + freeCredits */
  total: number;
  lowCredits: boolean;
}

/**
 * The SDXL client. One instance shares one limiter across every call. Use `createClient` from the
 * package root for Node's defaults; construct this directly to supply a host's transport and sleep.
 */
export class SdxlClient {
  readonly baseUrl: string;
  readonly lowCreditsThreshold: number;
  readonly limiter: RequestLimiter;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly deadlineMs: number;
  private readonly policy: RetryPolicy;
  private readonly transport: Transport;
  private readonly sleep: Sleep;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly logger: Logger | undefined;
  private readonly redact: (text: string) => string;

  /** @throws {InvalidRequestError} naming each option that is not allowed. */
  constructor(options: ClientOptions & ClientRuntime) {
    this.redact = createRedactor([options.apiKey, ...(options.secrets ?? [])]);
    checkClientOptions(options, this.redact);
    this.apiKey = options.apiKey;
    this.baseUrl = (options.baseUrl ?? CLIENT_DEFAULTS.baseUrl).replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs;
    this.deadlineMs = options.deadlineMs ?? Math.max(CLIENT_DEFAULTS.deadlineMs, this.timeoutMs);
    this.lowCreditsThreshold = options.lowCreditsThreshold ?? CLIENT_DEFAULTS.lowCreditsThreshold;
    this.policy = {
      maxRetries: options.maxRetries ?? DEFAULT_RETRY_POLICY.maxRetries,
      baseDelayMs: options.retryBaseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
      maxDelayMs: options.retryMaxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
      maxRateLimitWaitMs: options.maxRateLimitWaitMs ?? DEFAULT_RETRY_POLICY.maxRateLimitWaitMs,
      retryBrokenConnections: options.retryBrokenConnections ?? DEFAULT_RETRY_POLICY.retryBrokenConnections,
    };
    this.transport = options.transport;
    this.sleep = options.sleep;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.logger = options.logger;
    this.limiter =
      options.limiter ??
      new RequestLimiter({
        ...(options.requestsPerMinute !== undefined && { requestsPerMinute: options.requestsPerMinute }),
        maxInFlight: options.maxInFlight ?? CLIENT_DEFAULTS.maxInFlight,
        windowMs: options.rateWindowMs ?? CLIENT_DEFAULTS.rateWindowMs,
        sleep: this.sleep,
        now: this.now,
      });
  }

  /** Validates and fills defaults without sending anything. Throws `InvalidRequestError`. */
  validate(input: GenerateInput): ResolvedRequest {
    return parseRequest(input);
  }

  /**
   * Generates images for one prompt in one billed call. Several samples come back from one call.
   * @throws {SdxlError} with a `code`; `invalid_request` before anything is sent.
   */
  async generate(input: GenerateInput, options: CallOptions = {}): Promise<GenerateResult> {
    const validated = parseRequest(input);
    const request: ResolvedRequest = {
      ...validated,
      seed: validated.seed === -1 ? randomSeed(this.random) : validated.seed,
    };
    const response = await this.send(
      'POST',
      TXT2IMG_PATH,
      JSON.stringify(toWireRequest(request)),
      false,
      options,
    );
    const metadata = readMetadata(response.headers);
    const seed = metadata.seed ?? request.seed;
    const images = extractImages(response, this.redact).map((image, index) => ({ ...image, seed, index }));
    // Each sample is billed; an answer with fewer images than asked for must not pass unnoticed.
    const missingImages = Math.max(0, request.samples - images.length);
    if (missingImages > 0) {
      this.log('warn', `asked for ${request.samples} images and got ${images.length}`, {
        requestId: metadata.requestId,
      });
    }
    return {
      images,
      request,
      seed,
      ...metadata,
      missingImages,
      lowCredits: this.isLow(metadata.remainingCredits),
    };
  }

  /** Reads the account balance. Free, so it is the right call to test a key. */
  async getCredits(options: CallOptions = {}): Promise<CreditBalance> {
    const response = await this.send('GET', CREDITS_PATH, undefined, true, options);
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(response.body).toString('utf8'));
    } catch {
      throw new BadResponseError('The balance endpoint answered with something that is not JSON.');
    }
    const record = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    const credits = Number(record.credits);
    const freeCredits = Number(record['free-credits'] ?? 0);
    if (!Number.isFinite(credits) || !Number.isFinite(freeCredits)) {
      throw new BadResponseError('The balance endpoint answered without a numeric "credits" field.');
    }
    const total = credits + freeCredits;
    return { credits, freeCredits, total, lowCredits: this.isLow(total) };
  }

  private isLow(remainingCredits: number | undefined): boolean {
    return remainingCredits !== undefined && remainingCredits < this.lowCreditsThreshold;
  }

  private async send(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    idempotent: boolean,
    options: CallOptions,
  ): Promise<TransportResponse> {
    const { signal } = options;
    // The deadline starts with the first attempt: time spent queued behind a paced batch is the
    // limiter's doing, bounded by the caller's signal, not a sign that the API is slow.
    let deadline: number | undefined;
    const headers: Record<string, string> = { accept: 'image/jpeg, application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.apiKey) headers['x-api-key'] = this.apiKey;
    const run = async (attempt: number): Promise<TransportResponse> => {
      deadline ??= this.now() + this.deadlineMs;
      const remaining = deadline - this.now();
      if (remaining <= 0) throw new TimeoutError(`No answer within the ${this.deadlineMs} ms deadline.`);
      options.onAttempt?.(attempt);
      this.log('debug', `${method} ${path} attempt ${attempt}`);
      try {
        const response = await this.transport.request({
          method,
          url: this.baseUrl + path,
          headers,
          ...(body !== undefined && { body }),
          timeoutMs: Math.min(this.timeoutMs, remaining),
          ...(signal && { signal }),
        });
        if (response.status >= 200 && response.status < 300) return response;
        const text = Buffer.from(response.body).toString('utf8');
        throw errorFromResponse(response.status, text, response.headers, this.redact);
      } catch (raw) {
        // Told while this call still holds its place in the line: a batch that must stop (a refused
        // key, an empty account) can cancel the queued calls before the next one goes out.
        const error = this.toSdxlError(raw, signal);
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
          : await this.limiter.run(() => run(retriesDone + 1), signal, { first: retriesDone > 0 });
      } catch (raw) {
        error = this.toSdxlError(raw, signal);
      }
      if (error instanceof RateLimitError && error.resetAt) this.limiter.pauseUntil(error.resetAt.getTime());
      const decision = decideRetry(
        { error, retriesDone, idempotent, now: this.now(), random: this.random },
        this.policy,
      );
      if (!decision.retry || this.now() + decision.delayMs >= (deadline ?? Infinity)) {
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
        await this.sleep(decision.delayMs, signal);
      } catch {
        throw signal?.aborted ? new AbortedError() : error;
      }
    }
  }

  /** Turns anything thrown into our own error with a redacted message; nothing foreign escapes. */
  private toSdxlError(raw: unknown, signal: AbortSignal | undefined): SdxlError {
    if (signal?.aborted) return new AbortedError();
    if (raw instanceof SdxlError) return raw;
    if (raw instanceof TransportError) {
      const message = this.redact(raw.message);
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
    return new ConnectionError(this.redact(`The request failed: ${message}`), true);
  }

  private log(level: 'debug' | 'warn', message: string, data?: Record<string, unknown>): void {
    const write = this.logger?.[level];
    if (write) write.call(this.logger, this.redact(message), data);
  }
}
