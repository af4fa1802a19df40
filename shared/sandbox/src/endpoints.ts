import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import {
  MESSAGES,
  cannedAnswer,
  errorAnswer,
  formatCredits,
  insufficientCreditsAnswer,
  jsonAnswer,
  rateLimitedAnswer,
  roundCredits,
  type Answer,
} from './answers.ts';
import { elideString } from './record.ts';
import {
  drawSeed,
  type GenerationModel,
  type PrepareContext,
  type PreparedJob,
  type Rendered,
} from './models.ts';
import type { BilledCall, ResolvedOptions } from './options.ts';
import type { SlidingRateWindow } from './rate-window.ts';
import type { FileStore } from './storage.ts';
import type { AsyncJob } from './async.ts';

/** What the sandbox knows between requests; `configure` swaps `settings`, billing changes `balance`. */
export interface SandboxState {
  settings: ResolvedOptions;
  balance: number;
  readonly rateWindow: SlidingRateWindow;
  /** Uploaded assets and output files, on disk. */
  readonly store: FileStore;
  readonly billed: BilledCall[];
  /** v2 jobs by request id: small records, swept after `resultTtlMs`. */
  readonly jobs: Map<string, AsyncJob>;
  /** Aborted when the sandbox closes: running v2 jobs stop. */
  readonly lifetime: AbortSignal;
}

/** Billed calls kept for tests to count: small records, so plenty. */
const BILLED_LIMIT = 20_000;

/** The request body as read off the wire. */
export type ReadBody =
  { kind: 'text'; text: string; json: { ok: true; value: unknown } | { ok: false } } | { kind: 'too-large' };

export interface Exchange {
  headers: IncomingHttpHeaders;
  body: ReadBody;
  /** Aborted when the client goes away or the sandbox closes: nobody is waiting for an answer any more. */
  signal: AbortSignal;
  /** How the client reached the sandbox, e.g. http://127.0.0.1:PORT (from the Host header). */
  origin: string;
  /** Whether a URL points at this sandbox. */
  isOwn: (url: URL) => boolean;
}

/** How to finish an exchange: send an answer (perhaps cut short), drop the socket, or do nothing. */
export type Reply =
  { kind: 'answer'; answer: Answer; truncate?: boolean } | { kind: 'drop' } | { kind: 'abandoned' };

export function handleCredits(state: SandboxState, exchange: Exchange): Reply {
  const refusal = checkApiKey(exchange.headers, state.settings.apiKey);
  if (refusal) return answer(refusal);
  return answer(jsonAnswer(200, { credits: state.balance, 'free-credits': state.settings.freeCredits }));
}

/**
 * The v1 pipeline every model shares; models differ only in how they check a body and render. The
 * checks run in the order the hosted API appears to run them: who you are, whether the model exists,
 * how you sent it, what you sent, how often, then whether you can pay. Only a call that passes all of
 * them is billed.
 */
export function generationEndpoint(model: GenerationModel) {
  return async (state: SandboxState, exchange: Exchange): Promise<Reply> => {
    const refusal = checkApiKey(exchange.headers, state.settings.apiKey);
    if (refusal) return answer(refusal);
    if (state.settings.retiredModels.includes(model.slug)) return answer(retiredAnswer(model.slug));
    if (!isJsonContentType(exchange.headers['content-type'])) {
      return answer(errorAnswer(406, MESSAGES.invalidContentType));
    }
    const { body } = exchange;
    if (body.kind === 'too-large') return answer(errorAnswer(413, tooLargeMessage(model.bodyLimit)));
    if (!body.json.ok) return answer(errorAnswer(422, MESSAGES.notJson));
    const preparation = await model.prepare(
      body.json.value,
      prepareContext(state, exchange, model.bodyLimit),
    );
    if (exchange.signal.aborted) return { kind: 'abandoned' };
    if (!preparation.ok) return answer(errorAnswer(422, preparation.message));
    const job = preparation.job;

    const { settings } = state;
    const cost = roundCredits(job.samples * model.costPerImage(settings));
    const refused = admit(state, cost);
    if (refused) return answer(refused);

    // Charged up front, so concurrent calls cannot overdraw between the check and the answer.
    state.balance = roundCredits(state.balance - cost);
    const seed = job.seed === undefined || job.seed === -1 ? drawSeed(settings.random) : job.seed;
    const started = performance.now();

    // A binary answer holds one image (the contract knows no multi-image binary body), and so does a
    // forced 'image-string'; only the other base64 shapes need every sample.
    const count = job.base64 && settings.base64Shape !== 'image-string' ? job.samples : 1;
    // Rendering runs during the latency, so latencyMs is the whole wait as long as rendering is quicker.
    const rendering = job.render(seed, count);
    rendering.catch(() => {});
    try {
      if (settings.latencyMs > 0) await delay(settings.latencyMs, undefined, { signal: exchange.signal });
    } catch {
      // Nobody waits any more; the job ran all the same, so it stays billed, as a real one would.
      recordBilling(state, model, job, seed, 'v1', randomUUID(), cost);
      return { kind: 'abandoned' };
    }
    let rendered: Rendered;
    try {
      rendered = await rendering;
    } catch {
      state.balance = roundCredits(state.balance + cost);
      return answer(errorAnswer(500, MESSAGES.serverError));
    }
    const requestId = randomUUID();
    recordBilling(state, model, job, seed, 'v1', requestId, cost);
    if (chance(settings.random, settings.dropRate)) return { kind: 'drop' };
    if (exchange.signal.aborted) return { kind: 'abandoned' };

    const generationSeconds = Math.round(performance.now() - started) / 1000;
    const headers: Record<string, string> = {
      ...(settings.costHeader && { 'x-cost': formatCredits(cost) }),
      ...(job.seed !== undefined && { 'x-seed-value': String(seed) }),
      'x-request-id': requestId,
      'x-generation-time': String(generationSeconds),
    };
    const success: Answer = job.base64
      ? jsonAnswer(200, base64Body(rendered.images, settings.base64Shape, generationSeconds), headers)
      : {
          status: 200,
          headers: { 'content-type': rendered.contentType, ...headers },
          body: rendered.images[0]!,
        };
    return { kind: 'answer', answer: success, truncate: chance(settings.random, settings.truncateRate) };
  };
}

/**
 * The checks after the body, shared by v1 calls and v2 submits: how often (rpm), the scripted
 * statuses and random failures, then whether `cost` can be paid. Undefined admits the call.
 */
export function admit(state: SandboxState, cost: number): Answer | undefined {
  const { settings, rateWindow } = state;
  const now = Date.now();
  if (settings.rpm !== undefined) {
    const verdict = rateWindow.tryAdmit(now, settings.rpm, settings.rateWindowMs);
    if (!verdict.admitted) return rateLimited(settings, verdict.resetAt);
  }
  const scripted = settings.statuses.shift();
  if (scripted !== undefined && scripted !== 200) {
    const resetAt = rateWindow.resetAt(now, settings.rateWindowMs);
    return cannedAnswer(scripted, { balance: state.balance, needed: cost, resetAt });
  }
  // A script is a test's exact plan, so random failures only apply to the unscripted calls.
  if (scripted === undefined && chance(settings.random, settings.failureRate)) {
    return errorAnswer(500, MESSAGES.serverError);
  }
  if (roundCredits(state.balance - cost) < 0) return insufficientCreditsAnswer(state.balance, cost);
  return undefined;
}

export function rateLimited(settings: ResolvedOptions, resetAt: number): Answer {
  const detail = `Rate limit exceeded: ${settings.rpm} requests per ${settings.rateWindowMs / 1000} s.`;
  return rateLimitedAnswer(resetAt, detail);
}

/** What a model needs to read image fields: the store, which URLs are ours, the limits. */
export function prepareContext(
  state: SandboxState,
  exchange: Pick<Exchange, 'isOwn' | 'signal'>,
  maxBytes: number,
  settings = state.settings,
): PrepareContext {
  return {
    settings,
    images: {
      store: state.store,
      isOwn: exchange.isOwn,
      fetchTimeoutMs: settings.fetchTimeoutMs,
      ttlMs: settings.resultTtlMs,
      maxBytes,
      signal: exchange.signal,
    },
  };
}

export function recordBilling(
  state: SandboxState,
  model: GenerationModel,
  job: PreparedJob,
  seed: number,
  api: 'v1' | 'v2',
  requestId: string,
  cost: number,
): void {
  const call: BilledCall = { slug: model.slug, api, requestId, images: job.samples, cost, at: Date.now() };
  if (job.prompt !== undefined) call.prompt = elideString(job.prompt);
  if (job.seed !== undefined) call.seed = seed;
  state.billed.push(call);
  if (state.billed.length > BILLED_LIMIT) state.billed.splice(0, state.billed.length - BILLED_LIMIT);
}

/** A retired model fails fast and is not charged (release notes, 2026-06-14); the body is a guess. */
export function retiredAnswer(slug: string): Answer {
  return errorAnswer(410, `Model ${slug} has been retired and is no longer available.`);
}

export function tooLargeMessage(limit: number): string {
  return `Request body is larger than ${limit / (1024 * 1024)} MiB`;
}

function base64Body(images: Buffer[], shape: ResolvedOptions['base64Shape'], interTime: number): object {
  const encoded = images.map((image) => image.toString('base64'));
  const common = { status: 'success', interTime };
  switch (shape) {
    case 'images-array':
      return { images: encoded, ...common };
    case 'image-array':
      return { image: encoded, ...common };
    case 'image-string':
      return { image: encoded[0], ...common };
    case 'auto':
      return { image: encoded.length === 1 ? encoded[0] : encoded, ...common };
  }
}

export function checkApiKey(headers: IncomingHttpHeaders, apiKey: string): Answer | undefined {
  const sent = headers['x-api-key'];
  if (sent === undefined || sent === '') return errorAnswer(401, MESSAGES.missingKey);
  if (sent !== apiKey) return errorAnswer(401, MESSAGES.badKey);
  return undefined;
}

export function isJsonContentType(contentType: string | undefined): boolean {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  return mediaType === 'application/json';
}

export function chance(random: () => number, probability: number): boolean {
  return probability > 0 && random() < probability;
}

export function answer(value: Answer): Reply {
  return { kind: 'answer', answer: value };
}
