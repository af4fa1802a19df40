import {
  readJson,
  readSubmit,
  ticketFor,
  asyncBaseUrl,
  uploadUrlFor,
  type AsyncTicket,
  type JobStatus,
} from './async-api.ts';
import { JobRunner, type CollectedJob, type PollOptions } from './async-jobs.ts';
import { BadResponseError, InvalidRequestError, NotFoundError, createRedactor } from './errors.ts';
import { Exchanger, type CallOptions, type Logger } from './exchange.ts';
import { MemoryJobTimeStore, type JobTimeStore } from './job-times.ts';
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
import type { BudgetGuard } from './money/budget.ts';
import { BalanceWatch } from './money/balance-watch.ts';
import { Charge } from './money/charge.ts';
import { PlanEstimator, type Estimate, type Pace } from './money/estimate.ts';
import { PriceBook, imagesAsked } from './money/price.ts';
import { checkClientOptions } from './options.ts';
import { extractImages, readMetadata, type ImageMimeType, type ResponseMetadata } from './response.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.ts';
import { parseRequest, randomSeed, type GenerateInput, type ResolvedRequest } from './schema.ts';
import type { Transport } from './transport.ts';

export type { CallOptions, Logger } from './exchange.ts';
export type { PollOptions } from './async-jobs.ts';

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
   * Where what is learnt of each model's job time is kept, so the next run (or another process)
   * polls a job just after it should end: the CLI keeps a cache file, the bot its store or Redis.
   * @default this client's memory
   */
  jobTimes?: JobTimeStore;
  /**
   * Segmind's storage upload, for image bytes a model takes only as URLs.
   * @default 'https://workflows-api.segmind.com/upload-asset' with the hosted base URL, else `<base URL without /v1>/upload-asset`
   */
  uploadUrl?: string;
  /**
   * Caps every billed call of this client keeps to (a run's `--max-cost`, a Node-RED account's
   * budget): its estimate is held before it is sent, settled at what it was billed, released when
   * nothing was. A call that does not fit fails with `budget_exceeded`, nothing sent. @default none
   */
  budget?: BudgetGuard;
  /**
   * The book of prices this client estimates with; pass one made from what earlier runs were billed
   * (`new PriceBook(kept)`) so a new process estimates at the account's price. @default a new book
   * (the published prices until the API reports one)
   */
  prices?: PriceBook;
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
  /** Caps this call keeps to besides the client's own (a member's and a server's budget). */
  budget?: BudgetGuard;
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
  /** The model's slug; `unknown` after a `resume` that was not told it (the result does not say). */
  model: string;
  images: ModelImage[];
  /**
   * The options sent, camelCase, images left out; `seed` is the concrete seed where one was drawn.
   * After `resume`, only what the result says: its `prompt`, where the job had one.
   */
  request: Record<string, unknown>;
  seed?: number;
  remainingCredits?: number;
  cost?: number;
  /** The API's request id: the async job's id, or v1's `x-request-id`. */
  requestId?: string;
  /** What the call was expected to cost before it was sent (the price in force), where known. */
  estimatedCost?: number;
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
  /** The model's slug: `sdxl1.0-txt2img`. */
  model: string;
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
  /** What the call was expected to cost before it was sent (the price in force), where known. */
  estimatedCost?: number;
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
  /** The prices in force: published, then what the API reports this account is billed. */
  readonly prices: PriceBook;
  /** What a call cost where its answer does not say: the drop in remaining credits over it. */
  private readonly balance = new BalanceWatch();
  private readonly budget: BudgetGuard | undefined;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly redact: (text: string) => string;
  private readonly uploadUrl: string;
  private readonly exchanger: Exchanger;
  private readonly jobs: JobRunner;
  /** Models whose `POST /v2/{slug}` answered 404: they have no async API, so they go sync. */
  private readonly syncOnly = new Set<string>();

  /** @throws {InvalidRequestError} naming each option that is not allowed. */
  constructor(options: ClientOptions & ClientRuntime) {
    this.redact = createRedactor([options.apiKey, ...(options.secrets ?? [])]);
    checkClientOptions(options, this.redact);
    this.baseUrl = (options.baseUrl ?? CLIENT_DEFAULTS.baseUrl).replace(/\/+$/, '');
    const timeoutMs = options.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs;
    this.lowCreditsThreshold = options.lowCreditsThreshold ?? CLIENT_DEFAULTS.lowCreditsThreshold;
    const policy: RetryPolicy = {
      maxRetries: options.maxRetries ?? DEFAULT_RETRY_POLICY.maxRetries,
      baseDelayMs: options.retryBaseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
      maxDelayMs: options.retryMaxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
      maxRateLimitWaitMs: options.maxRateLimitWaitMs ?? DEFAULT_RETRY_POLICY.maxRateLimitWaitMs,
      retryBrokenConnections: options.retryBrokenConnections ?? DEFAULT_RETRY_POLICY.retryBrokenConnections,
    };
    const { sleep } = options;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.uploadUrl = options.uploadUrl ?? uploadUrlFor(this.baseUrl, DEFAULT_BASE_URL);
    this.budget = options.budget;
    this.prices = options.prices ?? new PriceBook();
    this.limiter =
      options.limiter ??
      new RequestLimiter({
        ...(options.requestsPerMinute !== undefined && { requestsPerMinute: options.requestsPerMinute }),
        maxInFlight: options.maxInFlight ?? CLIENT_DEFAULTS.maxInFlight,
        windowMs: options.rateWindowMs ?? CLIENT_DEFAULTS.rateWindowMs,
        sleep,
        now: this.now,
      });
    this.exchanger = new Exchanger({
      apiKey: options.apiKey,
      baseUrl: this.baseUrl,
      timeoutMs,
      deadlineMs: options.deadlineMs ?? Math.max(CLIENT_DEFAULTS.deadlineMs, timeoutMs),
      policy,
      transport: options.transport,
      sleep,
      now: this.now,
      random: this.random,
      limiter: this.limiter,
      logger: options.logger,
      redact: this.redact,
    });
    this.jobs = new JobRunner({
      exchanger: this.exchanger,
      sleep,
      now: this.now,
      policy,
      redact: this.redact,
      poll: options.poll,
      baseUrl: this.baseUrl,
      jobTimes: options.jobTimes ?? new MemoryJobTimeStore(),
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
    const estimatedCost = this.prices.costOf(declaration, imagesAsked(declaration, request.values));
    const charge = await this.reserve(declaration, estimatedCost, options);
    const progress = { sent: false, accepted: false };
    const tracked: RunOptions = {
      ...options,
      onAttempt: (attempt) => {
        progress.sent = true;
        options.onAttempt?.(attempt);
      },
    };
    const started = this.balance.begin();
    try {
      let result = await this.runPrepared(declaration, request, options, tracked, progress);
      const drop = this.balance.end(started, result.remainingCredits);
      if (result.cost === undefined && drop !== undefined) result = { ...result, cost: drop };
      if (result.cost !== undefined)
        this.prices.observe(declaration, imagesAsked(declaration, request.values), result.cost);
      await charge?.settle(result.cost);
      return estimatedCost === undefined ? result : { ...result, estimatedCost };
    } catch (error) {
      this.balance.end(started, undefined);
      await charge?.fail(error, progress);
      throw error;
    }
  }

  /**
   * What a call would cost and take, without sending anything: images, credits at the price in force
   * (undefined when the model has no known price) and seconds at `pace` (default: this client's).
   * @throws {InvalidRequestError} as `run` would, before anything is sent.
   */
  estimate(model: ModelDeclaration | string, input: unknown, pace: Pace = this.limiter): Estimate {
    const declaration = this.modelOf(model);
    return this.planner(pace).add(declaration, this.prepare(declaration, input).values).result();
  }

  /** Adds up a whole run call by call (a batch's prompts), at this client's prices and `pace`. */
  planner(pace: Pace = this.limiter): PlanEstimator {
    return new PlanEstimator(this.prices, pace);
  }

  /** Holds the estimate against the client's and the call's budgets; none set, nothing held. */
  private async reserve(
    model: ModelDeclaration,
    estimatedCost: number | undefined,
    options: RunOptions,
  ): Promise<Charge | undefined> {
    const guards = [this.budget, options.budget].filter((guard) => guard !== undefined);
    if (guards.length === 0) return undefined;
    if (estimatedCost === undefined) {
      // A budget cannot be kept without a price: refuse rather than spend blind.
      throw new InvalidRequestError([
        {
          field: 'model',
          value: model.slug,
          allowed: 'a model with a known price while a budget is set',
          message: `model: ${model.slug} has no known price, so a budget cannot be kept; allowed: a model with a known price while a budget is set`,
        },
      ]);
    }
    return Charge.reserve(guards, estimatedCost);
  }

  private async runPrepared(
    declaration: ModelDeclaration,
    request: ModelRequest,
    options: RunOptions,
    tracked: RunOptions,
    progress: { accepted: boolean },
  ): Promise<ModelResult> {
    const encoded = await this.encodeImages(request, options);
    if (this.chooseApi(declaration, options.api) === 'async') {
      let submitted: { ticket: AsyncTicket; acceptedAt: number } | undefined;
      try {
        submitted = await this.submitPrepared(request, encoded, tracked, () => (progress.accepted = true));
      } catch (error) {
        // No async API for this model: v2 does not know the slug, so nothing was accepted.
        if (!(error instanceof NotFoundError) || error.status !== 404) throw error;
        this.syncOnly.add(declaration.slug);
        this.exchanger.log('warn', `${declaration.slug} has no async API (404); using the synchronous API`);
      }
      if (submitted) {
        const { ticket, acceptedAt } = submitted;
        return this.collected(request, await this.jobs.wait(ticket, request, options, acceptedAt));
      }
    }
    return this.runSync(request, encoded, tracked);
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
    return (await this.submitPrepared(request, await this.encodeImages(request, options), options)).ticket;
  }

  /**
   * Waits for a submitted job and fetches its images. A ticket from `submit` carries when it was
   * accepted, so its checks follow what earlier jobs of the model taught, as `generate`'s do.
   */
  async waitFor(ticket: AsyncTicket, options: ResumeOptions = {}): Promise<ModelResult> {
    const model = findModel(ticket.model);
    const request = model ? { model, values: {}, extra: {} } : undefined;
    return this.collected(request, await this.jobs.wait(ticket, request, options, ticket.acceptedAt));
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
    const { status } = await this.jobs.readJob(resolved.statusUrl, resolved.requestId, options);
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
    const response = await this.exchanger.send(
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
    const response = await this.exchanger.send(
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

  private collected(request: ModelRequest | undefined, job: CollectedJob): ModelResult {
    const result = this.finish(request, job.images, job.metadata, 'async', job.polls);
    // Resumed by its id: the request was not kept, but the result says what it was asked to draw.
    if (job.prompt !== undefined && result.request.prompt === undefined) {
      result.request = { ...result.request, prompt: job.prompt };
    }
    return result;
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
      this.exchanger.log('warn', `asked for ${asked} images and got ${images.length}`, {
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
    onAccepted?: () => void,
  ): Promise<{ ticket: AsyncTicket; acceptedAt: number }> {
    const response = await this.exchanger.send(
      {
        method: 'POST',
        url: `${asyncBaseUrl(this.baseUrl)}/${request.model.slug}`,
        body: this.wireBody(request, encoded, 'async'),
        accept: 'application/json',
      },
      options,
    );
    // The job's clock starts when the server answers the submit, as it makes the job: not when the
    // submit left, which may have waited in the limiter's line or sent an image for seconds.
    const acceptedAt = this.now();
    const ticket: AsyncTicket = { ...readSubmit(response.body, request.model.slug), acceptedAt };
    onAccepted?.();
    this.exchanger.log('debug', `submitted ${request.model.slug} as ${ticket.requestId}`);
    await options.onSubmitted?.(ticket);
    return { ticket, acceptedAt };
  }

  /** Reads the account balance. Free, so it is the right call to test a key. */
  async getCredits(options: CallOptions = {}): Promise<CreditBalance> {
    const response = await this.exchanger.send(
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
}

function describeText(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
