import type { AxiosInstance } from 'axios';
import {
  TransportError,
  failureFor,
  normalizeHeaders,
  systemCodeOf,
  type Transport,
  type TransportRequest,
  type TransportResponse,
} from './transport.ts';

export interface AxiosTransportOptions {
  /** An axios instance of your own (proxy, agents). @default a fresh instance */
  instance?: AxiosInstance;
  /** Largest body accepted, in bytes. @default 64 MiB (four 1024x1024 images as base64 fit easily) */
  maxBodyBytes?: number;
}

/**
 * The default transport. Bodies are read as bytes; every status is returned, not thrown; the
 * timeout covers the whole exchange (axios's own only covers socket idleness); and no AxiosError
 * escapes, because AxiosError keeps the request headers, and so the API key.
 */
export function createAxiosTransport(options: AxiosTransportOptions = {}): Transport {
  // axios loads with the first request: a process that never uses it (no proxy) never pays for it.
  let made: Promise<AxiosInstance> | undefined;
  const instance = () =>
    options.instance
      ? Promise.resolve(options.instance)
      : (made ??= import('axios').then(({ default: axios }) => axios.create()));
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024 * 1024;

  return {
    async request(request: TransportRequest): Promise<TransportResponse> {
      const attempt = abortable(request.signal, request.timeoutMs);
      try {
        const response = await (
          await instance()
        ).request<ArrayBuffer>({
          method: request.method,
          url: request.url,
          headers: request.headers,
          data: request.body,
          signal: attempt.signal,
          responseType: 'arraybuffer',
          transformResponse: [(data: unknown) => data],
          validateStatus: () => true,
          maxRedirects: 0,
          maxContentLength: maxBodyBytes,
        });
        return {
          status: response.status,
          headers: normalizeHeaders(response.headers),
          body: new Uint8Array(response.data ?? new ArrayBuffer(0)),
        };
      } catch (error) {
        throw toTransportError(error, request, attempt.timedOut);
      } finally {
        attempt.release();
      }
    },
  };
}

/**
 * A signal that aborts when the caller's does or the attempt's time is up. Not `AbortSignal.timeout`:
 * its timer stays armed for the whole timeout (two minutes) after the answer came, so a batch kept
 * thousands of them alive, each outliving a young-generation collection into the old one; this timer
 * is cleared with the answer. Not `AbortSignal.any`: Node-RED 4 may run this bundle on a Node without
 * it (it came in 20.3), where every call would fail as a confusing connection error. `release` stops
 * listening, so a long-lived caller signal does not collect one listener per call.
 */
function abortable(
  caller: AbortSignal | undefined,
  timeoutMs: number,
): { signal: AbortSignal; timedOut: () => boolean; release: () => void } {
  const controller = new AbortController();
  let expired = false;
  const abort = () => controller.abort();
  const timer = setTimeout(() => {
    expired = true;
    abort();
  }, timeoutMs);
  // Like AbortSignal.timeout's, the timer alone does not keep a process alive.
  timer.unref();
  if (caller?.aborted) abort();
  caller?.addEventListener('abort', abort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => expired,
    release: () => {
      clearTimeout(timer);
      caller?.removeEventListener('abort', abort);
    },
  };
}

function toTransportError(
  error: unknown,
  request: TransportRequest,
  timedOut: () => boolean,
): TransportError {
  if (request.signal?.aborted) return new TransportError('aborted', 'The request was aborted.');
  if (timedOut()) {
    return new TransportError('timeout', `No complete answer within ${request.timeoutMs} ms.`);
  }
  return failureFor(systemCodeOf(error), safeHost(request.url));
}

/** The host only: a base URL may carry credentials in its user-info part. */
function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the API';
  }
}
