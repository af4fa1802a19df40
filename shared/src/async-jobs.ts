// The async API's job runner: when to look at a submitted job, what a status means, and how its
// images are fetched once it is done.
import {
  readJson,
  readResult,
  readStatus,
  type AsyncTicket,
  type JobResult,
  type JobStatus,
} from './async-api.ts';
import type { SdxlError } from './errors.ts';
import { AbortedError, ApiError, JobFailedError, RequestExpiredError, TimeoutError } from './errors.ts';
import type { CallOptions, Exchanger } from './exchange.ts';
import type { Sleep } from './limiter.ts';
import { LearntJobTimes, type JobTimeStore } from './job-times.ts';
import type { ModelRequest } from './model-request.ts';
import type { ModelDeclaration } from './models/index.ts';
import { forecast, nextCheckAt, type Cadence, type Checked } from './poll-schedule.ts';
import { extractImages, type ImageMimeType, type ResponseMetadata } from './response.ts';
import type { RetryPolicy } from './retry.ts';

/**
 * How the async API is polled. Segmind publishes no cadence; its SDK checks at once and then every
 * second for 600 s. This client learns each model's job time (from the server's `queue_time`,
 * `inference_time` and `total_time`, bounded by its own checks), looks just after a job should end,
 * then closely, and never checks more often than checking at once and then every `intervalMs` would.
 */
export interface PollOptions {
  /** The first status check while nothing is learnt of the model, in ms after the submit. @default 250 */
  firstDelayMs?: number;
  /**
   * The pace while nothing is learnt, or once a job runs well past its forecast, in ms; no job gets
   * more checks than checking at once and then at this pace would make. @default 1000, as Segmind's SDK
   */
  intervalMs?: number;
  /** @deprecated Not used since checks follow the learnt job time; kept so older settings still load. */
  maxIntervalMs?: number;
  /** How long to wait for a job, in ms from its submit, before giving up (the job goes on). @default 600000 */
  timeoutMs?: number;
}

/** The schedule's defaults; `intervalMs` is the pace of Segmind's SDK. */
export const POLL_DEFAULTS = { firstDelayMs: 250, intervalMs: 1000, timeoutMs: 600_000 } as const;

/** What a wait hears of: every status a poll reads. */
export interface WaitOptions extends CallOptions {
  onStatus?: (status: JobStatus) => void;
}

/** A completed job's images and what its result said, before the client makes its result of them. */
export interface CollectedJob {
  images: { bytes: Buffer; mimeType: ImageMimeType; index: number; seed?: number }[];
  metadata: ResponseMetadata;
  polls: number;
  /** The prompt the job ran with, where the result says it. */
  prompt?: string;
}

/** What the runner needs of its client. */
export interface JobRunnerSettings {
  exchanger: Exchanger;
  sleep: Sleep;
  now: () => number;
  policy: RetryPolicy;
  redact: (text: string) => string;
  poll: PollOptions | undefined;
  /** The API's base URL: what is learnt is kept per address and model. */
  baseUrl: string;
  jobTimes: JobTimeStore;
}

/** Where a wait's checks stand, and what the one that found the job done saw. */
interface Watch extends Checked {
  /** The last check that found the job not done yet, ms after the submit. */
  notDoneAtMs?: number;
}

/** Waits for the client's async jobs; one per client, so what one job teaches the next one uses. */
export class JobRunner {
  private readonly exchanger: Exchanger;
  private readonly sleep: Sleep;
  private readonly now: () => number;
  private readonly policy: RetryPolicy;
  private readonly redact: (text: string) => string;
  private readonly cadence: Cadence;
  private readonly timeoutMs: number;
  private readonly baseUrl: string;
  private readonly learnt: LearntJobTimes;

  constructor(settings: JobRunnerSettings) {
    this.exchanger = settings.exchanger;
    this.sleep = settings.sleep;
    this.now = settings.now;
    this.policy = settings.policy;
    this.redact = settings.redact;
    this.cadence = {
      firstDelayMs: settings.poll?.firstDelayMs ?? POLL_DEFAULTS.firstDelayMs,
      intervalMs: settings.poll?.intervalMs ?? POLL_DEFAULTS.intervalMs,
    };
    this.timeoutMs = settings.poll?.timeoutMs ?? POLL_DEFAULTS.timeoutMs;
    this.baseUrl = settings.baseUrl;
    this.learnt = new LearntJobTimes(settings.jobTimes, (message) => this.exchanger.log('warn', message));
  }

  /** What is learnt of a model is kept under this: one address, one model. */
  private keyOf(model: ModelDeclaration): string {
    return `${this.baseUrl} ${model.slug}`;
  }

  /**
   * Polls until the job completes or fails, then fetches its images. `acceptedAt` is when its submit was
   * answered (on `now`'s clock): the schedule counts from it. Without it (a resumed job) the first check
   * goes at once and later ones at the cadence.
   */
  async wait(
    ticket: AsyncTicket,
    request: ModelRequest | undefined,
    options: WaitOptions,
    acceptedAt?: number,
  ): Promise<CollectedJob> {
    const { signal } = options;
    const start = acceptedAt ?? this.now();
    const giveUpAt = start + this.timeoutMs;
    const key = request && this.keyOf(request.model);
    // A job resumed from its request id has no known submit time to align a forecast with.
    const expectation = () =>
      key && acceptedAt !== undefined ? forecast(this.learnt.samples(key)) : undefined;
    let expected = expectation();
    let wake: AbortController | undefined;
    // Another job of this model finishing teaches this one: re-plan, and look now if it is due.
    const stopListening = key
      ? this.learnt.onLearn(key, () => {
          expected = expectation();
          wake?.abort();
        })
      : () => {};
    // What another run or process learnt arrives like a job finishing here, and the first plan waits
    // for it, but never long: a store that hangs (Redis away) costs at most one interval, once.
    if (key) await this.atMost(this.learnt.refresh(key), this.cadence.intervalMs);
    const watch: Watch = { polls: 0 };
    let notBefore = start;
    let failures = 0;
    const tag = (error: SdxlError) => {
      error.requestId ??= ticket.requestId;
      return error;
    };
    try {
      for (;;) {
        const at = Math.max(
          notBefore,
          start +
            (acceptedAt === undefined && watch.polls === 0 ? 0 : nextCheckAt(watch, this.cadence, expected)),
        );
        if (at > this.now()) {
          wake = new AbortController();
          const woken = await this.pause(at - this.now(), signal, wake);
          wake = undefined;
          if (woken) continue;
        }
        if (this.now() >= giveUpAt) {
          throw new TimeoutError(
            `The job was not done within ${Math.round(this.timeoutMs / 1000)} s. It may still finish (and be billed): resume it with its request id ${ticket.requestId}.`,
          );
        }
        watch.lastAtMs = this.now() - start;
        watch.polls++;
        let job: { status: JobStatus; body: Record<string, unknown> };
        try {
          job = await this.readJob(ticket.statusUrl, ticket.requestId, options);
          failures = 0;
        } catch (error) {
          const failure = this.exchanger.toSdxlError(error, signal);
          if (!isPollRetryable(failure)) throw failure;
          // A poll is free and safe to repeat: keep trying, backing off, until the job's own deadline.
          const delay = Math.min(this.policy.baseDelayMs * 2 ** failures++, this.policy.maxDelayMs);
          notBefore = this.now() + delay;
          this.exchanger.log(
            'warn',
            `status check failed (${failure.message}); checking again in ${delay} ms`,
          );
          continue;
        }
        options.onStatus?.(job.status);
        if (job.status.state === 'FAILED') throw this.jobFailed(ticket.requestId, job.status.error);
        if (job.status.state === 'COMPLETED') {
          return await this.collect(ticket, request, options, watch, acceptedAt !== undefined);
        }
        watch.lastState = job.status.state;
        watch.notDoneAtMs = watch.lastAtMs;
      }
    } catch (error) {
      const failure = this.exchanger.toSdxlError(error, signal);
      if (failure instanceof AbortedError) {
        throw tag(
          new AbortedError(
            `Stopped waiting for request ${ticket.requestId}; the job goes on and will be billed. Resume it with that request id.`,
          ),
        );
      }
      throw tag(failure);
    } finally {
      stopListening();
    }
  }

  /** Waits for `promise` (which never rejects), or `ms`, whichever comes first. */
  private async atMost(promise: Promise<void>, ms: number): Promise<void> {
    const timer = new AbortController();
    try {
      await Promise.race([promise, this.sleep(ms, timer.signal).catch(() => {})]);
    } finally {
      timer.abort();
    }
  }

  /**
   * Sleeps `ms`; true when `wake` cut it short, an AbortedError when `signal` did. Both signals are
   * joined by hand, not with `AbortSignal.any`: Node-RED 4 may run this bundle on a Node without it.
   */
  private async pause(ms: number, signal: AbortSignal | undefined, wake: AbortController): Promise<boolean> {
    if (signal?.aborted) throw new AbortedError();
    const stop = () => wake.abort();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      await this.sleep(ms, wake.signal);
      return false;
    } catch {
      if (signal?.aborted || !wake.signal.aborted) throw new AbortedError();
      return true;
    } finally {
      signal?.removeEventListener('abort', stop);
    }
  }

  /**
   * Learns a completed job: the server's `total_time` held within what the checks saw (done by the
   * check that found it, not before the one before), else the middle of that, when the submit's time is known.
   */
  private learn(key: string, watch: Watch, result: JobResult, timed: boolean): void {
    const seconds = (value: number | undefined) => (value === undefined ? undefined : value * 1000);
    const foundAtMs = watch.lastAtMs ?? 0;
    let totalMs = seconds(result.totalTime);
    if (timed) {
      const notBeforeMs = watch.notDoneAtMs ?? 0;
      totalMs =
        totalMs === undefined
          ? (notBeforeMs + foundAtMs) / 2
          : Math.min(foundAtMs, Math.max(notBeforeMs, totalMs));
    }
    if (totalMs === undefined) return;
    const queueMs = seconds(result.queueTime);
    const inferenceMs = seconds(result.inferenceTime);
    void this.learnt.record(key, {
      totalMs: Math.round(totalMs),
      ...(queueMs !== undefined && { queueMs }),
      ...(inferenceMs !== undefined && { inferenceMs }),
    });
  }

  private jobFailed(requestId: string, serverError: string | undefined): JobFailedError {
    return new JobFailedError(422, this.redact(serverError ?? 'no reason given'), {}, requestId);
  }

  /** GETs a status or result URL; a FAILED body under 422 is a status, a 404 an expired request. */
  async readJob(
    url: string,
    requestId: string,
    options: CallOptions,
  ): Promise<{ status: JobStatus; body: Record<string, unknown> }> {
    try {
      const response = await this.exchanger.send(
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
    watch: Watch,
    timed: boolean,
  ): Promise<CollectedJob> {
    const { status, body } = await this.readJob(ticket.responseUrl, ticket.requestId, options);
    if (status.state === 'FAILED') throw this.jobFailed(ticket.requestId, status.error);
    const result = readResult(body);
    const key = request && this.keyOf(request.model);
    if (key) this.learn(key, watch, result, timed);
    const seed = result.seed ?? (request?.values.seed as number | undefined);
    const images: CollectedJob['images'] = [];
    for (const [index, file] of result.files.entries()) {
      const response = await this.exchanger.send(
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
    return {
      images,
      metadata,
      polls: watch.polls,
      ...(result.prompt !== undefined && { prompt: result.prompt }),
    };
  }
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

/** What a status check may run into and still try again: the job itself is fine. */
function isPollRetryable(error: SdxlError): boolean {
  return ['rate_limited', 'server_error', 'connection', 'timeout', 'bad_response'].includes(error.code);
}
