// Segmind's async API (v2) as the wire has it: where its addresses are, and what its answers hold.
// Bodies are read leniently ("don't assume a fixed key set", the official SDK says), but a field we
// rely on must be there: an answer without a request id or an image is a bad response, not a guess.
import { z } from 'zod/v4';
import { BadResponseError } from './errors.ts';
import { parseDecimal } from './response.ts';

/** A submitted async request: what a host stores to pick it up again after a restart. */
export interface AsyncTicket {
  requestId: string;
  /** The model's slug. */
  model: string;
  statusUrl: string;
  responseUrl: string;
  /**
   * When the server answered the submit, on the client's clock (`now`, milliseconds since the epoch
   * by default): `waitFor` times its status checks from it, as `generate` does. Absent on a ticket
   * made from a request id alone, whose first check goes at once.
   */
  acceptedAt?: number;
}

/** Where the async job stands: QUEUED, PROCESSING, COMPLETED or FAILED. */
export type JobState = 'QUEUED' | 'PROCESSING' | 'COMPLETED' | 'FAILED';

export interface JobStatus {
  requestId: string;
  state: JobState | string;
  /** The server's error text when FAILED. */
  error?: string;
}

/** The base of the async API for a base URL: `https://api.segmind.com/v1` gives `https://api.segmind.com/v2`. */
export function asyncBaseUrl(baseUrl: string): string {
  return `${rootOf(baseUrl)}/v2`;
}

/** The base URL without its trailing version (`/v1`), where the API's other services live. */
function rootOf(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '').replace(/\/v\d+$/, '');
}

/** Segmind's storage upload; follows a base URL other than the hosted one, so a proxy or sandbox gets it too. */
export function uploadUrlFor(baseUrl: string, hostedBaseUrl: string): string {
  if (baseUrl.replace(/\/+$/, '') === hostedBaseUrl) return 'https://workflows-api.segmind.com/upload-asset';
  return `${rootOf(baseUrl)}/upload-asset`;
}

/** A ticket for a request id alone, its addresses built from the base URL (`resume` after a restart). */
export function ticketFor(requestId: string, baseUrl: string, model = 'unknown'): AsyncTicket {
  const base = `${asyncBaseUrl(baseUrl)}/requests/${encodeURIComponent(requestId)}`;
  return { requestId, model, statusUrl: `${base}/status`, responseUrl: base };
}

const submitBody = z.looseObject({
  request_id: z.string().min(1),
  status_url: z.string().url(),
  response_url: z.string().url(),
});

function json(bytes: Uint8Array, what: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new BadResponseError(`The ${what} answer is not JSON.`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new BadResponseError(`The ${what} answer is not a JSON object.`);
  }
  return body as Record<string, unknown>;
}

/** Reads a submit answer; the SDK refuses one without request_id, status_url and response_url, and so do we. */
export function readSubmit(bytes: Uint8Array, model: string): AsyncTicket {
  const parsed = submitBody.safeParse(json(bytes, 'submit'));
  if (!parsed.success) {
    throw new BadResponseError(
      'The submit answer lacks request_id, status_url or response_url. The job may have been accepted; check the Segmind dashboard before submitting again.',
    );
  }
  return {
    requestId: parsed.data.request_id,
    model,
    statusUrl: parsed.data.status_url,
    responseUrl: parsed.data.response_url,
  };
}

/** Reads a status (or not yet complete result) answer. */
export function readStatus(body: Record<string, unknown>, requestId: string): JobStatus {
  const state = typeof body.status === 'string' ? body.status.toUpperCase() : undefined;
  if (!state) throw new BadResponseError('The status answer has no status.');
  const status: JobStatus = { requestId, state };
  if (typeof body.error === 'string' && body.error.trim()) status.error = body.error.trim();
  return status;
}

export { json as readJson };

/** One output file of a completed job. */
export interface OutputFile {
  url: string;
  contentType?: string;
}

export interface JobResult {
  files: OutputFile[];
  seed?: number;
  /** The prompt the job ran with, where the result says it. */
  prompt?: string;
  cost?: number;
  remainingCredits?: number;
  /** Seconds of inference. */
  inferenceTime?: number;
  /** Seconds waiting for a worker. */
  queueTime?: number;
  /** Seconds from submit to completion, as the server measured it. */
  totalTime?: number;
}

function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return typeof value === 'string' ? parseDecimal(value) : undefined;
}

/** Reads a completed result: `images[]` of `{url, content_type}`, else `output` as a URL or a list of them. */
export function readResult(body: Record<string, unknown>): JobResult {
  const files: OutputFile[] = [];
  if (Array.isArray(body.images)) {
    for (const image of body.images) {
      if (typeof image === 'string') files.push({ url: image });
      else if (image && typeof image === 'object' && typeof (image as { url?: unknown }).url === 'string') {
        const { url, content_type: contentType } = image as { url: string; content_type?: unknown };
        files.push(typeof contentType === 'string' ? { url, contentType } : { url });
      }
    }
  }
  if (files.length === 0) {
    const output = Array.isArray(body.output) ? body.output : [body.output];
    for (const url of output) if (typeof url === 'string' && /^https?:\/\//.test(url)) files.push({ url });
  }
  if (files.length === 0) throw new BadResponseError('The completed job holds no image URL.');
  const metrics = (body.metrics && typeof body.metrics === 'object' ? body.metrics : {}) as Record<
    string,
    unknown
  >;
  const result: JobResult = { files };
  const seed = numberOf(body.seed);
  if (seed !== undefined && Number.isSafeInteger(seed)) result.seed = seed;
  if (typeof body.prompt === 'string') result.prompt = body.prompt;
  const cost = numberOf(metrics.cost);
  if (cost !== undefined) result.cost = cost;
  const remainingCredits = numberOf(metrics.remaining_credits);
  if (remainingCredits !== undefined) result.remainingCredits = remainingCredits;
  const inferenceTime = numberOf(metrics.inference_time);
  if (inferenceTime !== undefined) result.inferenceTime = inferenceTime;
  const queueTime = numberOf(metrics.queue_time);
  if (queueTime !== undefined) result.queueTime = queueTime;
  const totalTime = numberOf(metrics.total_time);
  if (totalTime !== undefined) result.totalTime = totalTime;
  return result;
}
