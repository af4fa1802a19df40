import {
  readJson,
  readResult,
  readStatus,
  readSubmit,
  ticketFor,
  asyncBaseUrl,
  uploadUrlFor,
  type AsyncTicket,
  type JobStatus,
} from './async-api.ts';
import {
  AbortedError,
  ApiError,
  BadResponseError,
  ConnectionError,
  InvalidRequestError,
  JobFailedError,
  NotFoundError,
  RateLimitError,
  RequestExpiredError,
  SdxlError,
  TimeoutError,
  createRedactor,
  errorFromResponse,
} from './errors.ts';
import { toDataUrl, type ImageInput, type PreparedImage } from './image-input.ts';
import { parseModelRequest, toModelWire, type ExtraValue, type ModelRequest } from './model-request.ts';
import {
  findModel,
  sdxlTxt2Img,
  esrgan,
  sdxlImg2Img,
  sdxlInpaint,
  type ModelDeclaration,
} from './models/index.ts';
import { RequestLimiter, type Sleep } from './limiter.ts';
import { checkClientOptions } from './options.ts';
import { extractImages, readMetadata, type ImageMimeType, type ResponseMetadata } from './response.ts';
import { DEFAULT_RETRY_POLICY, decideRetry, type RetryPolicy } from './retry.ts';
import { parseRequest, randomSeed, type GenerateInput, type ResolvedRequest } from './schema.ts';
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
  /** How the async API is polled. */
  poll?: PollOptions;
  /**
   * Segmind's storage upload, for image bytes a model takes only as URLs.
   * @default 'https://workflows-api.segmind.com/upload-asset' with the hosted base URL, else `<base URL without /v1>/upload-asset`
   */
  uploadUrl?: string;
}

/** How the async API is polled. Segmind publishes no cadence; its SDK polls every second for 600 s. */
export interface PollOptions {
  /**
   * The first status check, in ms after the submit. @default half the model's typical seconds, then
   * the time the model's last job took here (the server's `total_time`), so one check usually finds it done
   */
  firstDelayMs?: number;
  /** The wait between later checks, in ms; it grows 1.5x each check up to `maxIntervalMs`. @default 500 */
  intervalMs?: number;
  /** @default 4000 */
  maxIntervalMs?: number;
  /** How long to wait for a job, in ms from its submit, before giving up (the job goes on). @default 600000 */
  timeoutMs?: number;
}

/** Which Segmind API a call uses: `sync` (v1), `async` (v2: submit, poll, fetch), or `auto`. */
export type ApiChoice = 'sync' | 'async' | 'auto';

/** Seconds above which `auto` uses the async API: Segmind recommends it "for anything that can take longer than ~10 s". */
export const ASYNC_ABOVE_SECONDS = 10;

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

/** Options of a call that makes images: which API, and hooks for the async one. */
export interface RunOptions extends CallOptions {
  /**
   * `sync` waits on one connection (v1), `async` submits and polls (v2), `auto` picks async for
   * models slower than {@link ASYNC_ABOVE_SECONDS}. A model without async (v2 answers 404) falls back
   * to sync, remembered for that model. @default 'auto'
   */
  api?: ApiChoice;
  /**
   * Called once an async submit is accepted, before the first poll, and awaited: store the ticket
   * here to `resume` after a crash. The job is billed even if nobody waits for it.
   */
  onSubmitted?: (ticket: AsyncTicket) => void | Promise<void>;
  /** Called with every status an async poll reads (QUEUED, PROCESSING, COMPLETED). */
  onStatus?: (status: JobStatus) => void;
}

/** Options of `resume`. */
export interface ResumeOptions extends CallOptions {
  /** The model's slug, if known (for the result; the request id alone finds the job). */
  model?: string;
  onStatus?: (status: JobStatus) => void;
}

/** An image of any model's result. */
export interface ModelImage {
  bytes: Buffer;
  mimeType: ImageMimeType;
  /** Position in the call's images, from 0. */
  index: number;
  /** The seed, where the API or the request says it. */
  seed?: number;
}

/** What any model's call gives back. */
export interface ModelResult {
  /** The model's slug. */
  model: string;
  images: ModelImage[];
  /** The options sent, camelCase, images left out; `seed` is the concrete seed where one was drawn. */
  request: Record<string, unknown>;
  seed?: number;
  remainingCredits?: number;
  cost?: number;
  /** The API's request id: the async job's id, or v1's `x-request-id`. */
  requestId?: string;
  /** Seconds, as the API reports it. */
  generationTime?: number;
  lowCredits: boolean;
  /** Images asked for (`samples`) that the answer did not hold; 0 normally. Each sample may be billed. */
  missingImages: number;
  /** Which API made it. */
  api: 'sync' | 'async';
  /** Status checks made (async only; 0 for sync). */
  polls: number;
}

type ModelInput<T> = T & { extra?: Record<string, ExtraValue> };

/** `vary`: a variation of an image (sdxl-img2img). */
export type VaryInput = ModelInput<{
  image: ImageInput;
  prompt: string;
  negativePrompt?: string;
  samples?: number;
  strength?: number;
  scheduler?: string;
  baseModel?: string;
  steps?: number;
  guidanceScale?: number;
  seed?: number;
}>;

/** `inpaint`: repaint the masked region (sdxl-inpaint). White in the mask repaints. */
export type InpaintInput = ModelInput<Omit<VaryInput, 'baseModel' | 'extra'> & { mask: ImageInput }>;

/** `upscale`: enlarge an image (esrgan). */
export type UpscaleInput = ModelInput<{
  image: ImageInput;
  scale?: 2 | 4 | 8 | '2' | '4' | '8';
  outputFormat?: 'jpeg' | 'png' | 'webp';
  quality?: number;
}>;

export interface GeneratedImage {
  bytes: Buffer;
  mimeType: ImageMimeType;
  seed: number;
  /** Position in the call's images, from 0. */
  index: number;
}

export interface GenerateResult {
  images: GeneratedImage[];
  /** Which API made it. */
  api: 'sync' | 'async';
  /** Status checks made (async only). */
  polls: number;
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
  private readonly poll: Required<Omit<PollOptions, 'firstDelayMs'>> & { firstDelayMs?: number };
  private readonly uploadUrl: string;
  /** Models whose `POST /v2/{slug}` answered 404: they have no async API, so they go sync. */
  private readonly syncOnly = new Set<string>();
  /** Seconds the last job of each model took, server side: where the first poll of the next one goes. */
  private readonly seenSeconds = new Map<string, number>();

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
    this.poll = {
      intervalMs: options.poll?.intervalMs ?? 500,
      maxIntervalMs: options.poll?.maxIntervalMs ?? 4000,
      timeoutMs: options.poll?.timeoutMs ?? 600_000,
      ...(options.poll?.firstDelayMs !== undefined && { firstDelayMs: options.poll.firstDelayMs }),
    };
    this.uploadUrl = options.uploadUrl ?? uploadUrlFor(this.baseUrl, DEFAULT_BASE_URL);
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
   * Generates images for one prompt in one billed call (sdxl1.0-txt2img). Several samples come back
   * from one call. `api` picks v1 (default for this fast model) or the async API.
   * @throws {SdxlError} with a `code`; `invalid_request` before anything is sent.
   */
  async generate(input: GenerateInput, options: RunOptions = {}): Promise<GenerateResult> {
    const result = await this.run(sdxlTxt2Img, input, options);
    const request = result.request as ResolvedRequest;
    const seed = result.seed ?? request.seed;
    return {
      ...result,
      images: result.images.map((image) => ({ ...image, seed: image.seed ?? seed })),
      request,
      seed,
    };
  }

  /** A variation of an image, guided by a prompt (sdxl-img2img). */
  vary(input: VaryInput, options: RunOptions = {}): Promise<ModelResult> {
    return this.run(sdxlImg2Img, input, options);
  }

  /** Repaints the region of an image that the mask marks white (sdxl-inpaint). */
  inpaint(input: InpaintInput, options: RunOptions = {}): Promise<ModelResult> {
    return this.run(sdxlInpaint, input, options);
  }

  /** Enlarges an image 2, 4 or 8 times (esrgan). */
  upscale(input: UpscaleInput, options: RunOptions = {}): Promise<ModelResult> {
    return this.run(esrgan, input, options);
  }

  /**
   * Any declared model: validate, send or submit, poll, decode, account. The operations above are
   * this with their model.
   * @throws {SdxlError} with a `code`; `invalid_request` before anything is sent or uploaded.
   */
  async run(
    model: ModelDeclaration | string,
    input: unknown,
    options: RunOptions = {},
  ): Promise<ModelResult> {
    const declaration = this.modelOf(model);
    const request = this.prepare(declaration, input);
    const encoded = await this.encodeImages(request, options);
    if (this.chooseApi(declaration, options.api) === 'async') {
      let ticket: AsyncTicket | undefined;
      // The job's clock starts when the submit leaves, not when its answer is read.
      const submittedAt = this.now();
      try {
        ticket = await this.submitPrepared(request, encoded, options);
      } catch (error) {
        // No async API for this model: v2 does not know the slug, so nothing was accepted.
        if (!(error instanceof NotFoundError) || error.status !== 404) throw error;
        this.syncOnly.add(declaration.slug);
        this.log('warn', `${declaration.slug} has no async API (404); using the synchronous API`);
      }
      if (ticket) {
        const firstDelay = this.firstPollDelay(declaration) - (this.now() - submittedAt);
        return this.wait(ticket, request, options, Math.max(0, firstDelay));
      }
    }
    return this.runSync(request, encoded, options);
  }

  /**
   * Submits to the async API and returns the ticket once accepted (after `onSubmitted`), without
   * waiting for the job. Never sent twice: a submit that may have been accepted is not retried.
   */
  async submit(
    model: ModelDeclaration | string,
    input: unknown,
    options: RunOptions = {},
  ): Promise<AsyncTicket> {
    const request = this.prepare(this.modelOf(model), input);
    return this.submitPrepared(request, await this.encodeImages(request, options), options);
  }

  /** Waits for a submitted job and fetches its images. */
  waitFor(ticket: AsyncTicket, options: ResumeOptions = {}): Promise<ModelResult> {
    const model = findModel(ticket.model);
    return this.wait(ticket, model ? { model, values: {}, extra: {} } : undefined, options, 0);
  }

  /**
   * Picks up an async request by its id after a restart: polls it (at once) and fetches its images.
   * Nothing is submitted. Results are kept an hour after the submit; later it is `request_expired`.
   */
  resume(requestId: string, options: ResumeOptions = {}): Promise<ModelResult> {
    if (typeof requestId !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(requestId)) {
      const allowed = 'the request id an async submit returned (letters, digits, - and _)';
      throw new InvalidRequestError([
        {
          field: 'requestId',
          value: describeText(requestId),
          allowed,
          message: `requestId: ${describeText(requestId)} is not allowed; allowed: ${allowed}`,
        },
      ]);
    }
    return this.waitFor(ticketFor(requestId, this.baseUrl, options.model), options);
  }

  /** Reads where an async job stands, once. FAILED comes back as a status, not an error. */
  async getStatus(ticket: AsyncTicket | string, options: CallOptions = {}): Promise<JobStatus> {
    const resolved = typeof ticket === 'string' ? ticketFor(ticket, this.baseUrl) : ticket;
    const { status } = await this.readJob(resolved.statusUrl, resolved.requestId, options);
    return status;
  }

  private modelOf(model: ModelDeclaration | string): ModelDeclaration {
    if (typeof model !== 'string') return model;
    const found = findModel(model);
    if (found) return found;
    const allowed =
      'a declared model: sdxl1.0-txt2img, sdxl-img2img, sdxl-inpaint, esrgan, sdxl-controlnet, ssd-1b';
    throw new InvalidRequestError([
      {
        field: 'model',
        value: describeText(model),
        allowed,
        message: `model: ${describeText(model)} is not allowed; allowed: ${allowed}`,
      },
    ]);
  }

  /** Validates, and draws the seed where the model takes -1 for random, so the seed can be reported. */
  private prepare(model: ModelDeclaration, input: unknown): ModelRequest {
    const request = parseModelRequest(model, input);
    const seedField = model.fields.find((field) => field.name === 'seed');
    if (seedField?.min === -1 && request.values.seed === -1) {
      return { ...request, values: { ...request.values, seed: randomSeed(this.random) } };
    }
    return request;
  }

  private chooseApi(model: ModelDeclaration, choice: ApiChoice = 'auto'): 'sync' | 'async' {
    if (this.syncOnly.has(model.slug)) return 'sync';
    if (choice === 'auto') return model.typicalSeconds > ASYNC_ABOVE_SECONDS ? 'async' : 'sync';
    return choice;
  }

  /** Each image as the wire takes it: a URL as given, bytes as raw base64 or uploaded to a URL. */
  private async encodeImages(request: ModelRequest, options: CallOptions): Promise<Record<string, string>> {
    const encoded: Record<string, string> = {};
    const uploads: [string, Extract<PreparedImage, { kind: 'bytes' }>][] = [];
    for (const field of request.model.fields) {
      const image = request.values[field.name] as PreparedImage | undefined;
      if (field.kind !== 'image' || !image) continue;
      if (image.kind === 'url') encoded[field.name] = image.url;
      else if (request.model.imageTransport === 'base64')
        encoded[field.name] = image.bytes.toString('base64');
      else uploads.push([field.name, image]);
    }
    if (uploads.length > 0) {
      const urls = await this.upload(
        uploads.map(([, image]) => toDataUrl(image)),
        options,
      );
      uploads.forEach(([name], index) => (encoded[name] = urls[index]!));
    }
    return encoded;
  }

  /** Segmind's storage upload: data URLs in, public URLs out (`urls`, or `file_urls` in the SDK's examples). */
  private async upload(dataUrls: string[], options: CallOptions): Promise<string[]> {
    const response = await this.send(
      {
        method: 'POST',
        url: this.uploadUrl,
        body: JSON.stringify({ data_urls: dataUrls }),
        idempotent: true,
      },
      options,
    );
    const body = readJson(response.body, 'upload');
    const urls = Array.isArray(body.urls) ? body.urls : Array.isArray(body.file_urls) ? body.file_urls : [];
    if (
      urls.length !== dataUrls.length ||
      !urls.every((url) => typeof url === 'string' && /^https?:\/\//.test(url))
    ) {
      throw new BadResponseError(
        `The storage upload answered without a URL for each of the ${dataUrls.length} image(s).`,
      );
    }
    return urls as string[];
  }

  private wireBody(request: ModelRequest, encoded: Record<string, string>, api: 'sync' | 'async'): string {
    const { model, values } = request;
    const wire = toModelWire(request, encoded);
    const count = model.output.countField ? Number(values[model.output.countField] ?? 1) : 1;
    // v1 returns several images only as base64 JSON; v2 returns image URLs whatever base64 says.
    if (api === 'sync' && count > 1 && model.output.base64) wire.base64 = true;
    return JSON.stringify(wire);
  }

  private requestSummary(request: ModelRequest): Record<string, unknown> {
    const summary: Record<string, unknown> = {};
    for (const field of request.model.fields) {
      if (field.kind !== 'image' && request.values[field.name] !== undefined)
        summary[field.name] = request.values[field.name];
    }
    return summary;
  }

  private async runSync(
    request: ModelRequest,
    encoded: Record<string, string>,
    options: RunOptions,
  ): Promise<ModelResult> {
    const response = await this.send(
      {
        method: 'POST',
        url: `${this.baseUrl}/${request.model.slug}`,
        body: this.wireBody(request, encoded, 'sync'),
      },
      options,
    );
    const metadata = readMetadata(response.headers);
    const seed = metadata.seed ?? (request.values.seed as number | undefined);
    const images = extractImages(response, this.redact).map((image, index) => ({
      ...image,
      index,
      ...(seed !== undefined && { seed }),
    }));
    return this.finish(request, images, { ...metadata, ...(seed !== undefined && { seed }) }, 'sync', 0);
  }

  private finish(
    request: ModelRequest | undefined,
    images: ModelImage[],
    metadata: ResponseMetadata,
    api: 'sync' | 'async',
    polls: number,
  ): ModelResult {
    const countField = request?.model.output.countField;
    const asked =
      countField && request.values[countField] !== undefined ? Number(request.values[countField]) : undefined;
    // Each sample is billed; an answer with fewer images than asked for must not pass unnoticed.
    const missingImages = asked === undefined ? 0 : Math.max(0, asked - images.length);
    if (missingImages > 0) {
      this.log('warn', `asked for ${asked} images and got ${images.length}`, {
        requestId: metadata.requestId,
      });
    }
    return {
      model: request?.model.slug ?? 'unknown',
      images,
      request: request ? this.requestSummary(request) : {},
      ...metadata,
      missingImages,
      lowCredits: this.isLow(metadata.remainingCredits),
      api,
      polls,
    };
  }

  private async submitPrepared(
    request: ModelRequest,
    encoded: Record<string, string>,
    options: RunOptions,
  ): Promise<AsyncTicket> {
    const response = await this.send(
      {
        method: 'POST',
        url: `${asyncBaseUrl(this.baseUrl)}/${request.model.slug}`,
        body: this.wireBody(request, encoded, 'async'),
        accept: 'application/json',
      },
      options,
    );
    const ticket = readSubmit(response.body, request.model.slug);
    this.log('debug', `submitted ${request.model.slug} as ${ticket.requestId}`);
    await options.onSubmitted?.(ticket);
    return ticket;
  }

  /** Polls until the job completes or fails, then fetches its images. */
  private async wait(
    ticket: AsyncTicket,
    request: ModelRequest | undefined,
    options: RunOptions | ResumeOptions,
    firstDelayMs = this.firstPollDelay(request?.model),
  ): Promise<ModelResult> {
    const { signal } = options;
    const giveUpAt = this.now() + this.poll.timeoutMs;
    let delay = firstDelayMs;
    // Once the first check comes from what the model took last time, the job is close: look again soon.
    const seen =
      request && this.poll.firstDelayMs === undefined ? this.seenSeconds.get(request.model.slug) : undefined;
    let interval =
      seen === undefined ? this.poll.intervalMs : Math.min(this.poll.intervalMs, Math.max(100, seen * 50));
    let failures = 0;
    let polls = 0;
    const tag = (error: SdxlError) => {
      error.requestId ??= ticket.requestId;
      return error;
    };
    try {
      for (;;) {
        if (delay > 0) await this.sleepOrAbort(delay, signal);
        if (this.now() >= giveUpAt) {
          throw new TimeoutError(
            `The job was not done within ${Math.round(this.poll.timeoutMs / 1000)} s. It may still finish (and be billed): resume it with its request id ${ticket.requestId}.`,
          );
        }
        polls++;
        let job: { status: JobStatus; body: Record<string, unknown> };
        try {
          job = await this.readJob(ticket.statusUrl, ticket.requestId, options);
          failures = 0;
        } catch (error) {
          const failure = this.toSdxlError(error, signal);
          if (!isPollRetryable(failure)) throw failure;
          // A poll is free and safe to repeat: keep trying, backing off, until the job's own deadline.
          delay = Math.min(this.policy.baseDelayMs * 2 ** failures++, this.policy.maxDelayMs);
          this.log('warn', `status check failed (${failure.message}); checking again in ${delay} ms`);
          continue;
        }
        options.onStatus?.(job.status);
        if (job.status.state === 'FAILED') throw this.jobFailed(ticket.requestId, job.status.error);
        if (job.status.state === 'COMPLETED') return await this.collect(ticket, request, options, polls);
        delay = interval;
        interval = Math.min(interval * 1.5, this.poll.maxIntervalMs);
      }
    } catch (error) {
      const failure = this.toSdxlError(error, signal);
      if (failure instanceof AbortedError) {
        throw tag(
          new AbortedError(
            `Stopped waiting for request ${ticket.requestId}; the job goes on and will be billed. Resume it with that request id.`,
          ),
        );
      }
      throw tag(failure);
    }
  }

  private firstPollDelay(model: ModelDeclaration | undefined): number {
    if (this.poll.firstDelayMs !== undefined) return this.poll.firstDelayMs;
    const seen = model && this.seenSeconds.get(model.slug);
    // A little past the last job's time, so the one check usually finds this one done.
    if (seen !== undefined) return Math.round(seen * 1030 + 50);
    return Math.round((model?.typicalSeconds ?? 2) * 500);
  }

  private jobFailed(requestId: string, serverError: string | undefined): JobFailedError {
    return new JobFailedError(422, this.redact(serverError ?? 'no reason given'), {}, requestId);
  }

  /** GETs a status or result URL; a FAILED body under 422 is a status, a 404 an expired request. */
  private async readJob(
    url: string,
    requestId: string,
    options: CallOptions,
  ): Promise<{ status: JobStatus; body: Record<string, unknown> }> {
    try {
      const response = await this.send(
        {
          method: 'GET',
          url,
          idempotent: true,
          accept: 'application/json',
          refine: (error) => jobError(error, requestId),
        },
        options,
      );
      const body = readJson(response.body, 'status');
      return { status: readStatus(body, requestId), body };
    } catch (error) {
      // A FAILED job answers 422 on its status and result: a state to report, not a transport failure.
      if (error instanceof JobFailedError) {
        return { status: { requestId, state: 'FAILED', error: error.serverError }, body: {} };
      }
      throw error;
    }
  }

  /** Fetches the result and downloads its files (no key: the files are public), retrying freely. */
  private async collect(
    ticket: AsyncTicket,
    request: ModelRequest | undefined,
    options: CallOptions,
    polls: number,
  ): Promise<ModelResult> {
    const { status, body } = await this.readJob(ticket.responseUrl, ticket.requestId, options);
    if (status.state === 'FAILED') throw this.jobFailed(ticket.requestId, status.error);
    const result = readResult(body);
    const model = request?.model;
    if (model && result.totalTime !== undefined) this.seenSeconds.set(model.slug, result.totalTime);
    const seed = result.seed ?? (request?.values.seed as number | undefined);
    const images: ModelImage[] = [];
    for (const [index, file] of result.files.entries()) {
      const response = await this.send(
        { method: 'GET', url: file.url, idempotent: true, auth: false, accept: 'image/*' },
        options,
      );
      const [image] = extractImages(response, this.redact);
      images.push({ ...image!, index, ...(seed !== undefined && { seed }) });
    }
    const metadata: ResponseMetadata = { requestId: ticket.requestId };
    if (result.remainingCredits !== undefined) metadata.remainingCredits = result.remainingCredits;
    if (result.cost !== undefined) metadata.cost = result.cost;
    if (seed !== undefined) metadata.seed = seed;
    if (result.inferenceTime !== undefined) metadata.generationTime = result.inferenceTime;
    return this.finish(request, images, metadata, 'async', polls);
  }

  private async sleepOrAbort(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw new AbortedError();
    try {
      await this.sleep(ms, signal);
    } catch {
      throw new AbortedError();
    }
  }

  /** Reads the account balance. Free, so it is the right call to test a key. */
  async getCredits(options: CallOptions = {}): Promise<CreditBalance> {
    const response = await this.send(
      { method: 'GET', url: this.baseUrl + CREDITS_PATH, idempotent: true, accept: 'application/json' },
      options,
    );
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

  /**
   * One HTTP exchange with retries. `idempotent` calls (GETs, uploads) skip the queue that paces billed
   * calls; `auth: false` sends no key (public output files); the key goes only to the API's own hosts.
   */
  private async send(exchange: Exchange, options: CallOptions): Promise<TransportResponse> {
    const { method, url, body, idempotent = false } = exchange;
    const path = displayPath(url);
    const { signal } = options;
    // The deadline starts with the first attempt: time spent queued behind a paced batch is the
    // limiter's doing, bounded by the caller's signal, not a sign that the API is slow.
    let deadline: number | undefined;
    const headers: Record<string, string> = { accept: exchange.accept ?? 'image/jpeg, application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.apiKey && exchange.auth !== false && this.isOwnHost(url)) headers['x-api-key'] = this.apiKey;
    const run = async (attempt: number): Promise<TransportResponse> => {
      deadline ??= this.now() + this.deadlineMs;
      const remaining = deadline - this.now();
      if (remaining <= 0) throw new TimeoutError(`No answer within the ${this.deadlineMs} ms deadline.`);
      options.onAttempt?.(attempt);
      this.log('debug', `${method} ${path} attempt ${attempt}`);
      try {
        const response = await this.transport.request({
          method,
          url,
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

  /**
   * Whether an address may get the key: the configured API's own origin, or Segmind's hosts over
   * https. An address an answer gives (a status URL) is used as given, but never hands the key elsewhere.
   */
  private isOwnHost(url: string): boolean {
    try {
      const target = new URL(url);
      if (target.origin === new URL(this.baseUrl).origin) return true;
      return target.protocol === 'https:' && /(^|\.)segmind\.com$/.test(target.hostname);
    } catch {
      return false;
    }
  }

  private log(level: 'debug' | 'warn', message: string, data?: Record<string, unknown>): void {
    const write = this.logger?.[level];
    if (write) write.call(this.logger, this.redact(message), data);
  }
}

interface Exchange {
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

/**
 * On a job's status and result URLs, 422 is a FAILED job and 404 an expired or unknown request id,
 * not an invalid value or a wrong address (which would stop a whole batch).
 */
function jobError(error: SdxlError, requestId: string): SdxlError {
  if (!(error instanceof ApiError)) return error;
  if (error.status === 422)
    return new JobFailedError(422, error.serverMessage.trim() || 'no reason given', error.headers, requestId);
  if (error.status === 404) {
    return new RequestExpiredError('request_expired', 404, error.serverMessage, {
      ...error.headers,
      'x-request-id': requestId,
    });
  }
  return error;
}

/** The path of a URL for log lines (never its query, which could carry anything). */
function displayPath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '(invalid URL)';
  }
}

/** What a status check may run into and still try again: the job itself is fine. */
function isPollRetryable(error: SdxlError): boolean {
  return ['rate_limited', 'server_error', 'connection', 'timeout', 'bad_response'].includes(error.code);
}

function describeText(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
