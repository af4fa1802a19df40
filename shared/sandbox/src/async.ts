import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  MESSAGES,
  errorAnswer,
  jsonAnswer,
  rateLimitedAnswer,
  roundCredits,
  type Answer,
} from './answers.ts';
import {
  admit,
  answer,
  chance,
  checkApiKey,
  isJsonContentType,
  prepareContext,
  rateLimited,
  recordBilling,
  retiredAnswer,
  tooLargeMessage,
  type Exchange,
  type Reply,
  type SandboxState,
} from './endpoints.ts';
import { drawSeed, type GenerationModel, type PreparedJob, type Rendered } from './models.ts';
import type { ResolvedOptions } from './options.ts';
import { elideString } from './record.ts';
import type { StoredFile } from './storage.ts';

// The async API (v2), as docs.segmind.com/api-reference/async-inference and the official SDK describe
// it: submit, then poll a status URL until COMPLETED or FAILED, then read the result URL.

export type JobStatus = 'QUEUED' | 'PROCESSING' | 'COMPLETED' | 'FAILED';

/**
 * What the sandbox keeps of a v2 job: ids, times, file names and billing, never the request body or
 * the images (those live on disk), so thousands of jobs stay small. Swept `resultTtlMs` after submit.
 */
export interface AsyncJob {
  id: string;
  slug: string;
  status: JobStatus;
  /** How the client reached the sandbox: the base of the job's URLs. */
  origin: string;
  submittedAt: number;
  startedAt?: number;
  finishedAt?: number;
  files?: StoredFile[];
  prompt?: string;
  seed?: number;
  cost?: number;
  remainingCredits?: number;
  error?: string;
}

/** `POST /v2/<slug>`: the same checks as v1 up to the body, then a job; the body is judged by the job. */
export function submitEndpoint(model: GenerationModel) {
  return (state: SandboxState, exchange: Exchange): Reply => {
    const { settings } = state;
    // A model without an async API is a path that does not exist.
    if (settings.syncOnlyModels.includes(model.slug)) return answer(errorAnswer(404, MESSAGES.notFound));
    const refusal = checkApiKey(exchange.headers, settings.apiKey);
    if (refusal) return answer(refusal);
    if (settings.retiredModels.includes(model.slug)) return answer(retiredAnswer(model.slug));
    if (!isJsonContentType(exchange.headers['content-type'])) {
      return answer(errorAnswer(406, MESSAGES.invalidContentType));
    }
    const { body } = exchange;
    if (body.kind === 'too-large') return answer(errorAnswer(413, tooLargeMessage(model.bodyLimit)));
    const parsed = body.json.ok ? body.json.value : undefined;
    const refused = admit(state, roundCredits(samplesOf(model, parsed) * model.costPerImage(settings)));
    if (refused) return answer(refused);

    const now = Date.now();
    const job: AsyncJob = {
      id: randomUUID(),
      slug: model.slug,
      status: 'QUEUED',
      origin: exchange.origin,
      submittedAt: now,
    };
    state.jobs.set(job.id, job);
    // The job holds the body only while it runs; it may be megabytes of base64.
    runJob(state, model, job, body.json.ok ? { ok: true, value: parsed } : { ok: false }, {
      isOwn: exchange.isOwn,
      settings,
    }).catch(() => {});

    if (chance(settings.random, settings.dropRate)) return { kind: 'drop' };
    const urls = urlsOf(job);
    const submitted = jsonAnswer(200, {
      request_id: job.id,
      status: 'QUEUED',
      poll_url: urls.poll,
      status_url: urls.status,
      response_url: urls.response,
    });
    return { kind: 'answer', answer: submitted, truncate: chance(settings.random, settings.truncateRate) };
  };
}

/** Images a body asks for, for the credit check at submit; 1 when the body does not say (or is invalid). */
function samplesOf(model: GenerationModel, body: unknown): number {
  const countField = model.declaration.output.countField;
  const wire = model.declaration.fields.find((field) => field.name === countField)?.wire;
  const value =
    wire && typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[wire] : 1;
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 100 ? value : 1;
}

async function runJob(
  state: SandboxState,
  model: GenerationModel,
  job: AsyncJob,
  body: { ok: true; value: unknown } | { ok: false },
  context: { isOwn: (url: URL) => boolean; settings: ResolvedOptions },
): Promise<void> {
  const { settings } = context;
  const signal = state.lifetime;
  if (settings.queueMs > 0) await delay(settings.queueMs, undefined, { signal });
  if (!state.jobs.has(job.id)) return; // expired while queued
  job.status = 'PROCESSING';
  job.startedAt = Date.now();

  if (!body.ok) return fail(job, MESSAGES.notJson);
  const preparation = await model.prepare(
    body.value,
    prepareContext(state, { isOwn: context.isOwn, signal }, model.bodyLimit, settings),
  );
  if (!preparation.ok) return fail(job, preparation.message);
  const prepared: PreparedJob = preparation.job;
  const seed =
    prepared.seed === undefined || prepared.seed === -1 ? drawSeed(settings.random) : prepared.seed;
  // v2 answers with a URL per image, so every sample is made.
  const rendering = prepared.render(seed, prepared.samples);
  rendering.catch(() => {});
  if (settings.latencyMs > 0) await delay(settings.latencyMs, undefined, { signal });
  let rendered: Rendered;
  try {
    rendered = await rendering;
  } catch {
    return fail(job, MESSAGES.serverError);
  }
  if (failsByScript(state.settings)) return fail(job, `Inference failed: ${MESSAGES.serverError}`);

  const cost = roundCredits(prepared.samples * model.costPerImage(settings));
  if (roundCredits(state.balance - cost) < 0) return fail(job, 'Insufficient credits');
  const files = await Promise.all(
    rendered.images.map((image) => state.store.put('files', image, rendered.contentType, Date.now())),
  );
  if (signal.aborted || !state.jobs.has(job.id)) return;
  // Billed once, at completion.
  state.balance = roundCredits(state.balance - cost);
  recordBilling(state, model, prepared, seed, 'v2', job.id, cost);
  job.files = files;
  if (prepared.prompt !== undefined) job.prompt = elideString(prepared.prompt);
  if (prepared.seed !== undefined) job.seed = seed;
  job.cost = cost;
  job.remainingCredits = state.balance;
  job.finishedAt = Date.now();
  job.status = 'COMPLETED';
}

/** failJobs: a script is consumed per finishing job; a number is a probability. Read live, like statuses. */
function failsByScript(settings: ResolvedOptions): boolean {
  const { failJobs } = settings;
  if (Array.isArray(failJobs)) return failJobs.shift() === true;
  return chance(settings.random, failJobs);
}

function fail(job: AsyncJob, error: string): void {
  job.error = error;
  job.finishedAt = Date.now();
  job.status = 'FAILED';
}

function urlsOf(job: AsyncJob): { poll: string; status: string; response: string } {
  return {
    poll: `${job.origin}/v1/requests/${job.id}`,
    status: `${job.origin}/v2/requests/${job.id}/status`,
    response: `${job.origin}/v2/requests/${job.id}`,
  };
}

const seconds = (ms: number): number => Math.round(ms) / 1000;

/** What the status and result GETs answer. `full` is the result URL: output and billing when done. */
export function pollEndpoint(full: boolean) {
  return async (state: SandboxState, exchange: Exchange, id: string): Promise<Reply> => {
    const { settings } = state;
    const refusal = checkApiKey(exchange.headers, settings.apiKey);
    if (refusal) return answer(refusal);
    const now = Date.now();
    if (settings.rpmCountsPolls && settings.rpm !== undefined) {
      const verdict = state.rateWindow.tryAdmit(now, settings.rpm, settings.rateWindowMs);
      if (!verdict.admitted) return answer(rateLimited(settings, verdict.resetAt));
    }
    const scripted = settings.pollStatuses.shift();
    if (scripted !== undefined && scripted.status !== 200) {
      return answer(pollFailure(scripted, state.rateWindow.resetAt(now, settings.rateWindowMs)));
    }
    if (chance(settings.random, settings.pollDropRate)) return { kind: 'drop' };
    if (settings.statusDelayMs > 0) {
      try {
        await delay(settings.statusDelayMs, undefined, { signal: exchange.signal });
      } catch {
        return { kind: 'abandoned' };
      }
    }
    const job = findJob(state, id);
    if (!job) return answer(errorAnswer(404, `Request ${id} not found`));
    return answer(jobAnswer(job, full));
  };
}

/** A job still held: unknown and expired ids (and their files' index) are gone alike. */
export function findJob(state: SandboxState, id: string): AsyncJob | undefined {
  const job = state.jobs.get(id);
  if (!job) return undefined;
  if (Date.now() - job.submittedAt >= state.settings.resultTtlMs) {
    state.jobs.delete(id);
    return undefined;
  }
  return job;
}

/** Forgets every job older than the TTL (run from the server's sweep). */
export function sweepJobs(state: SandboxState, now: number): void {
  for (const [id, job] of state.jobs) {
    if (now - job.submittedAt >= state.settings.resultTtlMs) state.jobs.delete(id);
  }
}

function jobAnswer(job: AsyncJob, full: boolean): Answer {
  const urls = urlsOf(job);
  const inferenceTime = seconds((job.finishedAt ?? Date.now()) - (job.startedAt ?? job.submittedAt));
  switch (job.status) {
    case 'QUEUED':
    case 'PROCESSING':
      return jsonAnswer(200, {
        status: job.status,
        request_id: job.id,
        status_url: urls.status,
        response_url: urls.response,
        metrics: {},
      });
    case 'FAILED':
      // Under 422 on both GETs, with no billing fields (the SDK's fixture and its comment on heimdall).
      return jsonAnswer(422, {
        status: 'FAILED',
        error: job.error,
        metrics: { inference_time: inferenceTime },
        request_id: job.id,
      });
    case 'COMPLETED': {
      if (!full) {
        return jsonAnswer(200, {
          status: 'COMPLETED',
          request_id: job.id,
          metrics: { inference_time: inferenceTime },
        });
      }
      const images = (job.files ?? []).map((file) => ({
        url: `${job.origin}/files/${file.name}`,
        content_type: file.contentType,
        file_name: file.name,
        file_size: file.size,
      }));
      return jsonAnswer(200, {
        status: 'COMPLETED',
        request_id: job.id,
        output: images[0]?.url,
        images,
        ...(job.seed !== undefined && { seed: job.seed }),
        ...(job.prompt !== undefined && { prompt: job.prompt }),
        metrics: {
          inference_time: inferenceTime,
          queue_time: seconds((job.startedAt ?? job.submittedAt) - job.submittedAt),
          total_time: seconds((job.finishedAt ?? job.submittedAt) - job.submittedAt),
          cost: job.cost,
          remaining_credits: job.remainingCredits,
        },
      });
    }
  }
}

/** A scripted failure of a status or result GET: the gateway's statuses, with a JSON or an empty body. */
function pollFailure(scripted: { status: number; body: 'json' | 'empty' }, resetAt: number): Answer {
  const { status } = scripted;
  let base: Answer;
  if (status === 429) base = rateLimitedAnswer(resetAt, 'Rate limit exceeded.');
  else if (status === 502) base = errorAnswer(502, 'Bad Gateway: Service temporarily unavailable');
  else if (status === 504) base = errorAnswer(504, 'Timeout: Request timed out');
  else if (status === 503) base = errorAnswer(503, 'Service Unavailable');
  else base = errorAnswer(status, status === 500 ? 'Internal server error' : `Status ${status}`);
  if (scripted.body === 'json') return base;
  const { 'content-type': _dropped, ...headers } = base.headers;
  return { status, headers, body: Buffer.alloc(0) };
}
