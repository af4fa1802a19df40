// The async API's job runner: when to look at a submitted job, what a status means, and how its
// images are fetched once it is done.
import { readJson, readResult, readStatus, type AsyncTicket, type JobStatus } from './async-api.ts';
import type { SdxlError } from './errors.ts';
import { AbortedError, ApiError, JobFailedError, RequestExpiredError, TimeoutError } from './errors.ts';
import type { CallOptions, Exchanger } from './exchange.ts';
import type { Sleep } from './limiter.ts';
import type { ModelRequest } from './model-request.ts';
import type { ModelDeclaration } from './models/index.ts';
import { extractImages, type ImageMimeType, type ResponseMetadata } from './response.ts';
import type { RetryPolicy } from './retry.ts';

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

/** What a wait hears of: every status a poll reads. */
export interface WaitOptions extends CallOptions {
  onStatus?: (status: JobStatus) => void;
}

/** A completed job's images and what its result said, before the client makes its result of them. */
export interface CollectedJob {
  images: { bytes: Buffer; mimeType: ImageMimeType; index: number; seed?: number }[];
  metadata: ResponseMetadata;
  polls: number;
}

/** What the runner needs of its client. */
export interface JobRunnerSettings {
  exchanger: Exchanger;
  sleep: Sleep;
  now: () => number;
  policy: RetryPolicy;
  redact: (text: string) => string;
  poll: PollOptions | undefined;
}

/** Waits for the client's async jobs; one per client, so what one job teaches the next one uses. */
export class JobRunner {
  private readonly exchanger: Exchanger;
  private readonly sleep: Sleep;
  private readonly now: () => number;
  private readonly policy: RetryPolicy;
  private readonly redact: (text: string) => string;
  private readonly poll: Required<Omit<PollOptions, 'firstDelayMs'>> & { firstDelayMs?: number };
  /** Seconds the last job of each model took, server side: where the first poll of the next one goes. */
  private readonly seenSeconds = new Map<string, number>();

  constructor(settings: JobRunnerSettings) {
    this.exchanger = settings.exchanger;
    this.sleep = settings.sleep;
    this.now = settings.now;
    this.policy = settings.policy;
    this.redact = settings.redact;
    this.poll = {
      intervalMs: settings.poll?.intervalMs ?? 500,
      maxIntervalMs: settings.poll?.maxIntervalMs ?? 4000,
      timeoutMs: settings.poll?.timeoutMs ?? 600_000,
      ...(settings.poll?.firstDelayMs !== undefined && { firstDelayMs: settings.poll.firstDelayMs }),
    };
  }

  /** Polls until the job completes or fails, then fetches its images. */
  async wait(
    ticket: AsyncTicket,
    request: ModelRequest | undefined,
    options: WaitOptions,
    firstDelayMs = this.firstPollDelay(request?.model),
  ): Promise<CollectedJob> {
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
          const failure = this.exchanger.toSdxlError(error, signal);
          if (!isPollRetryable(failure)) throw failure;
          // A poll is free and safe to repeat: keep trying, backing off, until the job's own deadline.
          delay = Math.min(this.policy.baseDelayMs * 2 ** failures++, this.policy.maxDelayMs);
          this.exchanger.log(
            'warn',
            `status check failed (${failure.message}); checking again in ${delay} ms`,
          );
          continue;
        }
        options.onStatus?.(job.status);
        if (job.status.state === 'FAILED') throw this.jobFailed(ticket.requestId, job.status.error);
        if (job.status.state === 'COMPLETED') return await this.collect(ticket, request, options, polls);
        delay = interval;
        interval = Math.min(interval * 1.5, this.poll.maxIntervalMs);
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
    }
  }

  firstPollDelay(model: ModelDeclaration | undefined): number {
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
    polls: number,
  ): Promise<CollectedJob> {
    const { status, body } = await this.readJob(ticket.responseUrl, ticket.requestId, options);
    if (status.state === 'FAILED') throw this.jobFailed(ticket.requestId, status.error);
    const result = readResult(body);
    const model = request?.model;
    if (model && result.totalTime !== undefined) this.seenSeconds.set(model.slug, result.totalTime);
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
    return { images, metadata, polls };
  }

  private async sleepOrAbort(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw new AbortedError();
    try {
      await this.sleep(ms, signal);
    } catch {
      throw new AbortedError();
    }
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
