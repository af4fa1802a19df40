import { sleep as n8nSleep } from 'n8n-workflow';
import type { IExecuteFunctions, IHttpRequestOptions } from 'n8n-workflow';
import {
  AbortedError,
  NOT_SENT_CODES,
  TransportError,
  normalizeHeaders,
  type Sleep,
  type Transport,
  type TransportFailure,
} from '@sdxl-kit/client/core';

/** The credential type every request authenticates with. */
export const CREDENTIAL_TYPE = 'sdxlApi';

/**
 * One of n8n's request helpers, called in `httpRequestWithAuthentication`'s option shape.
 * `authenticate` says whether the credential's key may go with the request: the client decides.
 */
export type HttpRequester = (options: IHttpRequestOptions, authenticate: boolean) => Promise<unknown>;

/**
 * The client's transport over n8n's own request helper, so n8n's proxy settings, SSRF protection and
 * credential handling apply to every call. The credential adds `x-api-key`; the client never holds it.
 */
export function createN8nTransport(request: HttpRequester): Transport {
  return {
    async request(wire) {
      let response: unknown;
      try {
        response = await request(
          {
            method: wire.method,
            url: wire.url,
            headers: wire.headers,
            ...(wire.body !== undefined && { body: wire.body }),
            // Every status comes back as an answer, as bytes: the client, not n8n, decides what it means.
            returnFullResponse: true,
            ignoreHttpStatusErrors: true,
            encoding: 'arraybuffer',
            json: false,
            timeout: wire.timeoutMs,
            ...(wire.signal && { abortSignal: wire.signal }),
          },
          wire.authenticate,
        );
      } catch (error) {
        throw toTransportError(error, wire.signal);
      }
      return fromFullResponse(response);
    },
  };
}

/**
 * For executions: what the client authenticates (the API's own calls) goes through
 * `this.helpers.httpRequestWithAuthentication`, which adds the credential's key; everything else,
 * the async API's public output files included, through `this.helpers.httpRequest`, without it.
 * Output files may be served from the Base URL's own origin, so the address alone cannot decide.
 */
export function executeRequester(context: IExecuteFunctions): HttpRequester {
  return async (options, authenticate) =>
    authenticate
      ? await context.helpers.httpRequestWithAuthentication.call(context, CREDENTIAL_TYPE, options)
      : await context.helpers.httpRequest(options);
}

interface FullResponse {
  statusCode?: unknown;
  status?: unknown;
  headers?: unknown;
  body?: unknown;
}

function fromFullResponse(raw: unknown): {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
} {
  const response = (raw && typeof raw === 'object' ? raw : {}) as FullResponse;
  const status = Number(response.statusCode ?? response.status);
  if (!Number.isInteger(status)) {
    throw new TransportError('broken', 'The HTTP helper returned no status code.');
  }
  return { status, headers: normalizeHeaders(response.headers), body: toBytes(response.body) };
}

function toBytes(body: unknown): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (body === undefined || body === null) return new Uint8Array(0);
  // A helper that parsed the body after all (some versions do for JSON): send the client bytes again.
  return Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
}

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  name?: unknown;
}

/** System and axios codes found anywhere in an error and its causes (n8n wraps axios errors). */
function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const { code, cause } = current as ErrorLike;
    if (typeof code === 'string') codes.push(code);
    current = cause;
  }
  return codes;
}

function errorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const { message, cause } = current as ErrorLike;
    if (typeof message === 'string') parts.push(message);
    current = cause;
  }
  return parts.join(' ');
}

const TIMEOUT_CODES = new Set(['ECONNABORTED', 'ETIMEDOUT', 'ESOCKETTIMEDOUT']);
const ABORT_CODES = new Set(['ERR_CANCELED', 'ABORT_ERR']);

/**
 * Maps whatever n8n's helper threw (an axios error, perhaps wrapped in a NodeApiError) to the
 * client's failure kinds. Keeps a short reason only: the request, with its headers, stays behind.
 */
export function toTransportError(error: unknown, signal: AbortSignal | undefined): TransportError {
  const codes = errorCodes(error);
  const text = errorText(error);
  const systemCode = codes.find((code) => /^E[A-Z]+$/.test(code));
  const reason = systemCode ?? codes[0] ?? 'no answer';
  // Codes first: n8n rewords some of them in the message (ECONNABORTED reads "The connection was aborted").
  let failure: TransportFailure;
  if (signal?.aborted || codes.some((code) => ABORT_CODES.has(code))) failure = 'aborted';
  else if (codes.some((code) => TIMEOUT_CODES.has(code))) failure = 'timeout';
  else if (codes.some((code) => NOT_SENT_CODES.has(code))) failure = 'connect';
  else if (codes.length === 0 && /\bcancel(l)?ed\b/i.test(text)) failure = 'aborted';
  else if (codes.length === 0 && /timeout|timed out/i.test(text)) failure = 'timeout';
  else failure = 'broken';
  const messages: Record<TransportFailure, string> = {
    aborted: 'The request was cancelled.',
    timeout: `No answer in time (${reason}).`,
    connect: `Could not connect to the API (${reason}).`,
    broken: `The connection failed (${reason}).`,
  };
  return new TransportError(failure, messages[failure], systemCode);
}

/**
 * n8n's `sleep` (the one timer a verified node may use), made to stop when `signal` aborts even on
 * n8n versions whose `sleep` takes no signal.
 */
export const abortableSleep: Sleep = async (ms, signal) => {
  if (!signal) return await n8nSleep(ms);
  if (signal.aborted) throw new AbortedError();
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    (n8nSleep as (ms: number, signal?: AbortSignal) => Promise<void>)(ms, signal).then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      () => reject(new AbortedError()),
    );
  });
};
