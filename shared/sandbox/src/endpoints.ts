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
import { renderShared } from './image.ts';
import type { ResolvedOptions } from './options.ts';
import type { SlidingRateWindow } from './rate-window.ts';
import { MAX_SEED, validateTxt2ImgBody, type Txt2ImgRequest } from './wire-request.ts';

/** What the sandbox knows between requests; `configure` swaps `settings`, billing changes `balance`. */
export interface SandboxState {
  settings: ResolvedOptions;
  balance: number;
  readonly rateWindow: SlidingRateWindow;
}

/** The request body as read off the wire. */
export type ReadBody =
  { kind: 'text'; text: string; json: { ok: true; value: unknown } | { ok: false } } | { kind: 'too-large' };

export interface Exchange {
  headers: IncomingHttpHeaders;
  body: ReadBody;
  /** Aborted when the client goes away or the sandbox closes: nobody is waiting for an answer any more. */
  signal: AbortSignal;
}

/** How to finish an exchange: send an answer (perhaps cut short), drop the socket, or do nothing. */
export type Reply =
  { kind: 'answer'; answer: Answer; truncate?: boolean } | { kind: 'drop' } | { kind: 'abandoned' };

export function handleCredits(state: SandboxState, exchange: Exchange): Reply {
  const refusal = checkApiKey(exchange.headers, state.settings.apiKey);
  if (refusal) return answer(refusal);
  return answer(jsonAnswer(200, { credits: state.balance, 'free-credits': 0 }));
}

/**
 * The checks run in the order the hosted API appears to run them: who you are, how you sent it, what
 * you sent, how often, then whether you can pay. Only a call that passes all of them is billed.
 */
export async function handleTxt2Img(state: SandboxState, exchange: Exchange): Promise<Reply> {
  const refusal = checkApiKey(exchange.headers, state.settings.apiKey);
  if (refusal) return answer(refusal);
  if (!isJsonContentType(exchange.headers['content-type'])) {
    return answer(errorAnswer(406, MESSAGES.invalidContentType));
  }
  const { body } = exchange;
  if (body.kind === 'too-large') return answer(errorAnswer(413, MESSAGES.bodyTooLarge));
  if (!body.json.ok) return answer(errorAnswer(422, MESSAGES.notJson));
  const validation = validateTxt2ImgBody(body.json.value);
  if (!validation.ok) return answer(errorAnswer(422, validation.message));
  const wire = validation.request;

  const { settings, rateWindow } = state;
  const needed = roundCredits(wire.samples * settings.costPerImage);
  const now = Date.now();
  if (settings.rpm !== undefined) {
    const verdict = rateWindow.tryAdmit(now, settings.rpm, settings.rateWindowMs);
    if (!verdict.admitted) {
      const detail = `Rate limit exceeded: ${settings.rpm} requests per ${settings.rateWindowMs / 1000} s.`;
      return answer(rateLimitedAnswer(verdict.resetAt, detail));
    }
  }

  const scripted = settings.statuses.shift();
  if (scripted !== undefined && scripted !== 200) {
    const resetAt = rateWindow.resetAt(now, settings.rateWindowMs);
    return answer(cannedAnswer(scripted, { balance: state.balance, needed, resetAt }));
  }
  // A script is a test's exact plan, so random failures only apply to the unscripted calls.
  if (scripted === undefined && chance(settings.random, settings.failureRate)) {
    return answer(errorAnswer(500, MESSAGES.serverError));
  }
  if (roundCredits(state.balance - needed) < 0)
    return answer(insufficientCreditsAnswer(state.balance, needed));

  // Charged up front, so concurrent calls cannot overdraw between the check and the answer.
  state.balance = roundCredits(state.balance - needed);
  const seed = wire.seed === -1 ? Math.floor(settings.random() * (MAX_SEED + 1)) : wire.seed;
  const started = performance.now();

  // Rendering runs during the latency, so latencyMs is the whole wait as long as rendering is quicker.
  const rendering = renderAll(wire, seed, settings.base64Shape);
  rendering.catch(() => {});
  try {
    if (settings.latencyMs > 0) await delay(settings.latencyMs, undefined, { signal: exchange.signal });
  } catch {
    return { kind: 'abandoned' };
  }
  if (chance(settings.random, settings.dropRate)) return { kind: 'drop' };
  let images: Buffer[];
  try {
    images = await rendering;
  } catch {
    state.balance = roundCredits(state.balance + needed);
    return answer(errorAnswer(500, MESSAGES.serverError));
  }
  if (exchange.signal.aborted) return { kind: 'abandoned' };

  const generationSeconds = Math.round(performance.now() - started) / 1000;
  const headers = {
    'x-cost': formatCredits(needed),
    'x-seed-value': String(seed),
    'x-request-id': randomUUID(),
    'x-generation-time': String(generationSeconds),
  };
  const success: Answer = wire.base64
    ? jsonAnswer(200, base64Body(images, settings.base64Shape, generationSeconds), headers)
    : { status: 200, headers: { 'content-type': 'image/jpeg', ...headers }, body: images[0]! };
  return { kind: 'answer', answer: success, truncate: chance(settings.random, settings.truncateRate) };
}

function renderAll(
  wire: Txt2ImgRequest,
  seed: number,
  shape: ResolvedOptions['base64Shape'],
): Promise<Buffer[]> {
  // A binary answer holds one image (the contract knows no multi-image binary body), and so does a
  // forced 'image-string'; only the other base64 shapes need every sample.
  const count = wire.base64 && shape !== 'image-string' ? wire.samples : 1;
  return Promise.all(
    Array.from({ length: count }, (_, index) =>
      renderShared({ prompt: wire.prompt, seed, index, width: wire.img_width, height: wire.img_height }),
    ),
  );
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

function checkApiKey(headers: IncomingHttpHeaders, apiKey: string): Answer | undefined {
  const sent = headers['x-api-key'];
  if (sent === undefined || sent === '') return errorAnswer(401, MESSAGES.missingKey);
  if (sent !== apiKey) return errorAnswer(401, MESSAGES.badKey);
  return undefined;
}

function isJsonContentType(contentType: string | undefined): boolean {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  return mediaType === 'application/json';
}

function chance(random: () => number, probability: number): boolean {
  return probability > 0 && random() < probability;
}

function answer(value: Answer): Reply {
  return { kind: 'answer', answer: value };
}
