import { findModel } from '@sdxl-kit/client/core';

/** The key the sandbox accepts unless told otherwise. */
export const SANDBOX_DEFAULT_API_KEY = 'sandbox-key';

/** How the sandbox behaves; every knob can be changed later with {@link Sandbox.configure}. */
export interface SandboxOptions {
  /** Key the sandbox accepts in `x-api-key`. @default 'sandbox-key' */
  apiKey?: string;
  /** Starting balance in credits. @default 100 */
  credits?: number;
  /**
   * Free credits (a trial grant), reported apart from `credits` by `GET /v1/get-user-credits` as
   * `free-credits`, as the API does; `x-remaining-credits` reports `credits` alone. Whether and when the
   * API spends free credits is not documented, so the sandbox never spends them. @default 0
   */
  freeCredits?: number;
  /** Credits one sdxl1.0-txt2img image costs. @default 0.008 */
  costPerImage?: number;
  /**
   * Credits one image costs, per model slug, for the other models (and txt2img too, if given here).
   * A slug left out costs its declaration's published `price`. @default {}
   */
  costs?: Partial<Record<string, number>>;
  /**
   * Delay before answering a generation POST (any model, v1) that succeeds, in ms; errors come back at
   * once. Other requests are served meanwhile. On v2 it is a job's PROCESSING time. @default 0
   */
  latencyMs?: number;
  /**
   * Scripted statuses: the next generation POSTs (any model, v1 and v2 submits) are answered with these
   * statuses in order (200 = behave normally); consumed as used. A request turned away before the model
   * (bad key, content type or body, rate limit) does not consume one. A scripted status is never billed.
   */
  statuses?: number[];
  /** Probability 0..1 that a generation POST is answered 500 (not billed). @default 0 */
  failureRate?: number;
  /**
   * Admitted generation POSTs (every model shares the window) per window; beyond that, 429 with `x-rate-limit-reset-at-utc` (ISO 8601 UTC
   * time at which the oldest admitted request leaves the sliding window). No limit when unset.
   */
  rpm?: number;
  /** Length of the rate window in ms (tests shorten it). @default 60000 */
  rateWindowMs?: number;
  /**
   * Probability 0..1 that a 200 body is cut: headers with the full Content-Length are sent, then half
   * the body, then the socket is destroyed. The call is billed, as a real one would be. @default 0
   */
  truncateRate?: number;
  /**
   * Probability 0..1 that the socket is destroyed after the request was read, before any answer.
   * Rolled for generation POSTs that would succeed, after billing and latency: the job ran, the answer was
   * lost, which is why a retry after a broken connection may bill twice. On a v2 submit it is rolled
   * once the job exists: the job runs and is billed, the client never learns its id. @default 0
   */
  dropRate?: number;
  /**
   * Whether a v1 answer carries `x-cost`. Only third-party documentation names the header; Segmind's
   * own pages name `x-remaining-credits` alone, so a client must manage without it. @default true
   */
  costHeader?: boolean;
  /**
   * Shape of base64 answers: 'auto' = `image` is a string for 1 sample and an array for more; or force
   * one of the others. @default 'auto'
   */
  base64Shape?: 'auto' | 'image-string' | 'image-array' | 'images-array';
  /** Random source for failureRate/truncateRate/dropRate and random seeds. @default Math.random */
  random?: () => number;
  /**
   * How many requests `requests` keeps: the oldest are forgotten beyond this, so a long run's memory
   * stays flat. @default 1000
   */
  recordLimit?: number;
  /**
   * Which mask colour sdxl-inpaint repaints. Segmind documents none; diffusers repaints white.
   * @default 'white-repaints'
   */
  maskPolarity?: 'white-repaints' | 'black-repaints';
  /**
   * How long uploaded assets, output files and async results live, in ms; after that they answer 404.
   * @default 3600000 (1 h)
   */
  resultTtlMs?: number;
  /** Timeout for fetching an http(s) image URL that the sandbox did not serve itself, in ms. @default 5000 */
  fetchTimeoutMs?: number;
  /**
   * Largest image, in pixels, the sandbox makes (an esrgan x8 of a big input would exceed it); a request
   * whose result would be larger is answered 422. @default 67108864 (8192 x 8192)
   */
  maxOutputPixels?: number;
  /** v2: how long a job stays QUEUED before PROCESSING, in ms; `latencyMs` is then its processing time. @default 0 */
  queueMs?: number;
  /**
   * v2: scripted answers for the next status and result GETs (`/v2/requests/<id>[/status]`,
   * `/v1/requests/<id>`), consumed in order: a status (200 = behave normally) or `{ status, body }` with
   * `body: 'empty'` for an empty body instead of the JSON error. A 429 carries
   * `x-rate-limit-reset-at-utc` and no Retry-After.
   */
  pollStatuses?: PollStatus[];
  /** v2: probability 0..1 that a status or result GET is answered by dropping the socket. @default 0 */
  pollDropRate?: number;
  /** v2: delay before answering a status or result GET, in ms. @default 0 */
  statusDelayMs?: number;
  /** Slugs of retired models: v1 and v2 POSTs answer 410 `{"error": ...}`, not billed. @default [] */
  retiredModels?: string[];
  /** Slugs that have no async API: `POST /v2/<slug>` answers 404, so a client falls back to v1. @default [] */
  syncOnlyModels?: string[];
  /** Whether status and result GETs count toward `rpm` (only POSTs do otherwise). @default false */
  rpmCountsPolls?: boolean;
  /**
   * v2: makes jobs FAILED with a server error after processing (not billed): a probability 0..1, or a
   * script for the next jobs (true = fail, false = run normally), consumed as jobs finish. @default 0
   */
  failJobs?: number | boolean[];
}

/** A scripted answer to a status or result GET. */
export type PollStatus = number | { status: number; body?: 'json' | 'empty' };

/** One request as the sandbox saw it. */
export interface ReceivedRequest {
  method: string;
  /** The request target as sent, query string included. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /**
   * Parsed JSON, or the raw string if it did not parse, or undefined when empty or over the size limit.
   * Any string longer than 8 KiB (an image in base64) is replaced by a marker
   * `<elided N chars sha256:HEX>`, N its length and HEX the SHA-256 of its UTF-8 bytes.
   */
  body: unknown;
  /** What the sandbox answered; 0 while pending and when no answer was sent (dropped, client gone). */
  status: number;
  /** Epoch ms when the request arrived. */
  receivedAt: number;
}

/** One billed call: a v1 image answer, or a v2 job at its completion. */
export interface BilledCall {
  /** The model's slug. */
  slug: string;
  api: 'v1' | 'v2';
  /** The `x-request-id` of a v1 answer, or the v2 `request_id`. */
  requestId: string;
  /** Images billed (`samples`, or 1). */
  images: number;
  /** Credits charged. */
  cost: number;
  /** The prompt, when the model takes one (elided like recorded bodies when over 8 KiB). */
  prompt?: string;
  /** The seed used, when the model takes one. */
  seed?: number;
  /** Epoch ms of the billing. */
  at: number;
}

/** A running sandbox. */
export interface Sandbox {
  /** Base URL to give a client, e.g. http://127.0.0.1:PORT/v1 */
  readonly url: string;
  readonly port: number;
  /** The server's origin, e.g. http://127.0.0.1:PORT (where /upload-asset, /assets and /files live). */
  readonly origin: string;
  /** What was received, in order of arrival: the last `recordLimit` requests. */
  readonly requests: ReceivedRequest[];
  /** Every billed call, in order of billing (the last 20000, a few MB at most). */
  readonly billed: BilledCall[];
  /** Current balance in credits (settable). */
  credits: number;
  /**
   * Change knobs while running (e.g. set statuses or latency between test steps). Only the keys given
   * change; `statuses` replaces the remaining script, `credits` sets the balance, `rpm: undefined`
   * lifts the limit. A request already being served keeps the knobs it started with.
   */
  configure(options: Partial<SandboxOptions>): void;
  /** Stops listening and destroys open sockets; resolves when closed. Safe to call twice. */
  close(): Promise<void>;
}

export type ResolvedOptions = Required<Omit<SandboxOptions, 'rpm' | 'credits' | 'costs' | 'pollStatuses'>> & {
  rpm: number | undefined;
  costs: Record<string, number>;
  pollStatuses: { status: number; body: 'json' | 'empty' }[];
};

export const DEFAULT_CREDITS = 100;

export function defaultOptions(): ResolvedOptions {
  return {
    apiKey: SANDBOX_DEFAULT_API_KEY,
    costPerImage: 0.008,
    freeCredits: 0,
    latencyMs: 0,
    statuses: [],
    failureRate: 0,
    rpm: undefined,
    rateWindowMs: 60_000,
    truncateRate: 0,
    dropRate: 0,
    costHeader: true,
    base64Shape: 'auto',
    random: Math.random,
    costs: {},
    recordLimit: 1000,
    maskPolarity: 'white-repaints',
    resultTtlMs: 3_600_000,
    fetchTimeoutMs: 5000,
    maxOutputPixels: 8192 * 8192,
    queueMs: 0,
    pollStatuses: [],
    pollDropRate: 0,
    statusDelayMs: 0,
    retiredModels: [],
    syncOnlyModels: [],
    rpmCountsPolls: false,
    failJobs: 0,
  };
}

const BASE64_SHAPES: readonly string[] = ['auto', 'image-string', 'image-array', 'images-array'];
const MASK_POLARITIES: readonly string[] = ['white-repaints', 'black-repaints'];

/**
 * Applies `changes` onto `current`, checking each value so a typo in a test fails loudly at
 * configure time instead of as a puzzling answer later. Keys set to undefined are left alone,
 * except `rpm`, where undefined lifts the limit.
 */
export function applyOptions(current: ResolvedOptions, changes: Partial<SandboxOptions>): ResolvedOptions {
  const next = { ...current };
  if (changes.apiKey !== undefined) {
    if (typeof changes.apiKey !== 'string' || changes.apiKey === '') {
      throw new TypeError('apiKey must be a non-empty string');
    }
    next.apiKey = changes.apiKey;
  }
  if (changes.costPerImage !== undefined)
    next.costPerImage = nonNegative('costPerImage', changes.costPerImage);
  if (changes.freeCredits !== undefined) next.freeCredits = nonNegative('freeCredits', changes.freeCredits);
  if (changes.latencyMs !== undefined) next.latencyMs = nonNegative('latencyMs', changes.latencyMs);
  if (changes.statuses !== undefined) {
    for (const status of changes.statuses) {
      if (!Number.isInteger(status) || status < 100 || status > 599) {
        throw new RangeError(`statuses must hold HTTP statuses (100..599), got ${String(status)}`);
      }
    }
    next.statuses = [...changes.statuses];
  }
  if (changes.failureRate !== undefined) next.failureRate = probability('failureRate', changes.failureRate);
  if (changes.truncateRate !== undefined)
    next.truncateRate = probability('truncateRate', changes.truncateRate);
  if (changes.dropRate !== undefined) next.dropRate = probability('dropRate', changes.dropRate);
  if (changes.costHeader !== undefined) next.costHeader = changes.costHeader === true;
  if ('rpm' in changes) {
    if (changes.rpm !== undefined && (!Number.isInteger(changes.rpm) || changes.rpm < 0)) {
      throw new RangeError(`rpm must be a whole number of requests, got ${String(changes.rpm)}`);
    }
    next.rpm = changes.rpm;
  }
  if (changes.rateWindowMs !== undefined) {
    if (!(changes.rateWindowMs > 0) || !Number.isFinite(changes.rateWindowMs)) {
      throw new RangeError(
        `rateWindowMs must be a positive number of ms, got ${String(changes.rateWindowMs)}`,
      );
    }
    next.rateWindowMs = changes.rateWindowMs;
  }
  if (changes.base64Shape !== undefined) {
    if (!BASE64_SHAPES.includes(changes.base64Shape)) {
      throw new RangeError(`base64Shape must be one of ${BASE64_SHAPES.join(', ')}`);
    }
    next.base64Shape = changes.base64Shape;
  }
  if (changes.random !== undefined) {
    if (typeof changes.random !== 'function') throw new TypeError('random must be a function');
    next.random = changes.random;
  }
  if (changes.costs !== undefined) {
    if (typeof changes.costs !== 'object' || changes.costs === null) {
      throw new TypeError('costs must be an object of credits per image by model slug');
    }
    const costs = { ...next.costs };
    for (const [slug, cost] of Object.entries(changes.costs)) {
      knownSlug('costs', slug);
      if (cost === undefined) delete costs[slug];
      else costs[slug] = nonNegative(`costs.${slug}`, cost);
    }
    next.costs = costs;
  }
  if (changes.recordLimit !== undefined) {
    if (!Number.isInteger(changes.recordLimit) || changes.recordLimit < 1) {
      throw new RangeError(`recordLimit must be a whole number >= 1, got ${String(changes.recordLimit)}`);
    }
    next.recordLimit = changes.recordLimit;
  }
  if (changes.maskPolarity !== undefined) {
    if (!MASK_POLARITIES.includes(changes.maskPolarity)) {
      throw new RangeError(`maskPolarity must be one of ${MASK_POLARITIES.join(', ')}`);
    }
    next.maskPolarity = changes.maskPolarity;
  }
  if (changes.resultTtlMs !== undefined) next.resultTtlMs = positive('resultTtlMs', changes.resultTtlMs);
  if (changes.fetchTimeoutMs !== undefined)
    next.fetchTimeoutMs = positive('fetchTimeoutMs', changes.fetchTimeoutMs);
  if (changes.maxOutputPixels !== undefined)
    next.maxOutputPixels = positive('maxOutputPixels', changes.maxOutputPixels);
  if (changes.queueMs !== undefined) next.queueMs = nonNegative('queueMs', changes.queueMs);
  if (changes.pollStatuses !== undefined) {
    if (!Array.isArray(changes.pollStatuses)) throw new TypeError('pollStatuses must be an array');
    next.pollStatuses = changes.pollStatuses.map((entry) => {
      const status = typeof entry === 'object' && entry !== null ? entry.status : entry;
      const body = typeof entry === 'object' && entry !== null ? (entry.body ?? 'json') : 'json';
      if (
        !Number.isInteger(status) ||
        status < 100 ||
        status > 599 ||
        (body !== 'json' && body !== 'empty')
      ) {
        throw new RangeError(
          `pollStatuses must hold HTTP statuses (100..599) or { status, body: 'json' | 'empty' }, got ${JSON.stringify(entry)}`,
        );
      }
      return { status, body };
    });
  }
  if (changes.pollDropRate !== undefined)
    next.pollDropRate = probability('pollDropRate', changes.pollDropRate);
  if (changes.statusDelayMs !== undefined)
    next.statusDelayMs = nonNegative('statusDelayMs', changes.statusDelayMs);
  if (changes.retiredModels !== undefined)
    next.retiredModels = slugList('retiredModels', changes.retiredModels);
  if (changes.syncOnlyModels !== undefined)
    next.syncOnlyModels = slugList('syncOnlyModels', changes.syncOnlyModels);
  if (changes.rpmCountsPolls !== undefined) {
    if (typeof changes.rpmCountsPolls !== 'boolean')
      throw new TypeError('rpmCountsPolls must be true or false');
    next.rpmCountsPolls = changes.rpmCountsPolls;
  }
  if (changes.failJobs !== undefined) {
    if (Array.isArray(changes.failJobs)) {
      if (!changes.failJobs.every((entry) => typeof entry === 'boolean')) {
        throw new TypeError('failJobs as a script must hold true (fail) or false (run normally)');
      }
      next.failJobs = [...changes.failJobs];
    } else next.failJobs = probability('failJobs', changes.failJobs);
  }
  return next;
}

function slugList(option: string, slugs: unknown): string[] {
  if (!Array.isArray(slugs)) throw new TypeError(`${option} must be an array of model slugs`);
  return slugs.map((slug) => knownSlug(option, slug));
}

function knownSlug(option: string, slug: unknown): string {
  if (typeof slug !== 'string' || findModel(slug) === undefined) {
    throw new RangeError(`${option}: ${String(slug)} is not a declared model slug`);
  }
  return slug;
}

function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a finite number > 0, got ${String(value)}`);
  }
  return value;
}

export function checkCredits(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new RangeError(`credits must be a finite number, got ${String(value)}`);
  }
  return value;
}

function nonNegative(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}

function probability(name: string, value: number): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new RangeError(`${name} must be a probability from 0 to 1, got ${String(value)}`);
  }
  return value;
}
