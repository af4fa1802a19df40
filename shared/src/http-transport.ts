import http from 'node:http';
import https from 'node:https';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import {
  TransportError,
  failureFor,
  normalizeHeaders,
  systemCodeOf,
  type Transport,
  type TransportRequest,
  type TransportResponse,
} from './transport.ts';

export interface HttpTransportOptions {
  /** Largest body accepted, in bytes (after decompression). @default 64 MiB */
  maxBodyBytes?: number;
}

/**
 * A transport on Node's own `http` and `https`, with the axios transport's contract: bodies as
 * bytes, every status returned, the timeout over the whole exchange, no redirect followed, and no
 * error that carries the request (so never the key). It exists for memory: axios builds, merges and
 * checks several copies of its config for every request (about 80 KB of garbage each, three times
 * Node's own), and a batch that polls makes several requests per image, so the young generation kept
 * growing with the batch. No proxy support: `createClient` keeps axios when a proxy is configured.
 */
export function createHttpTransport(options: HttpTransportOptions = {}): Transport {
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024 * 1024;
  return { request: (request) => exchange(request, maxBodyBytes) };
}

function exchange(request: TransportRequest, maxBodyBytes: number): Promise<TransportResponse> {
  return new Promise((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      reject(new TransportError('connect', 'The request address is not a valid URL.', 'ERR_INVALID_URL'));
      return;
    }
    const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
    if (!client) {
      reject(new TransportError('connect', `Unsupported protocol ${url.protocol}.`, 'ERR_INVALID_URL'));
      return;
    }
    if (request.signal?.aborted) {
      reject(new TransportError('aborted', 'The request was aborted.'));
      return;
    }
    const headers: Record<string, string> = { 'accept-encoding': 'gzip, deflate, br', ...request.headers };
    if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));

    let settled = false;
    const finish = (error: TransportError | undefined, response?: TransportResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
      if (error) {
        req.destroy();
        reject(error);
      } else resolve(response!);
    };
    const onAbort = () => finish(new TransportError('aborted', 'The request was aborted.'));
    const timer = setTimeout(
      () => finish(new TransportError('timeout', `No complete answer within ${request.timeoutMs} ms.`)),
      request.timeoutMs,
    );
    // Like AbortSignal.timeout's, the timer alone does not keep a process alive.
    timer.unref();
    const req = client.request(url, { method: request.method, headers });
    req.on('error', (error) => finish(failureOf(error, url.host)));
    req.on('response', (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBodyBytes) {
          finish(tooLarge(url.host));
          return;
        }
        chunks.push(chunk);
      });
      response.on('error', (error) => finish(failureOf(error, url.host)));
      response.on('aborted', () => finish(cutOff(url.host)));
      response.on('end', () => {
        if (!response.complete) {
          finish(cutOff(url.host));
          return;
        }
        let body: Buffer;
        try {
          body = decode(Buffer.concat(chunks, size), response.headers['content-encoding'], maxBodyBytes);
        } catch {
          finish(cutOff(url.host));
          return;
        }
        finish(undefined, {
          status: response.statusCode ?? 0,
          headers: normalizeHeaders(response.headers),
          body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
        });
      });
    });
    request.signal?.addEventListener('abort', onAbort, { once: true });
    req.end(request.body);
  });
}

function decode(body: Buffer, encoding: string | undefined, maxBodyBytes: number): Buffer {
  const limit = { maxOutputLength: maxBodyBytes };
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(body, limit);
    case 'deflate':
      return inflateSync(body, limit);
    case 'br':
      return brotliDecompressSync(body, limit);
    default:
      return body;
  }
}

/** An answer that ended early, or a body that could not be decompressed. */
function cutOff(host: string): TransportError {
  return failureFor('ERR_BAD_RESPONSE', host);
}

function tooLarge(host: string): TransportError {
  return failureFor('ERR_FR_MAX_BODY_LENGTH_EXCEEDED', host);
}

function failureOf(error: unknown, host: string): TransportError {
  return failureFor(systemCodeOf(error), host);
}
