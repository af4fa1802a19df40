/** One HTTP exchange, as the client asks for it. */
export interface TransportRequest {
  method: 'GET' | 'POST';
  url: string;
  /** Includes `x-api-key` when the client holds the key; a transport must never put headers in its errors. */
  headers: Record<string, string>;
  /**
   * Whether the key belongs on this request: true for the API's own hosts, false for anything else,
   * public output files included, wherever they are. A transport that adds the key itself (n8n's
   * credential) must add it only when this is true.
   */
  authenticate: boolean;
  body?: string;
  /** Give up on this attempt after this long, in ms. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Any HTTP answer, whatever its status: the client, not the transport, decides what a status means. */
export interface TransportResponse {
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: Uint8Array;
}

/**
 * Why no answer came. `connect`: the request never left (safe to retry); `broken`: the connection
 * failed after the request was sent (it may be billed); `timeout`; `aborted` by the caller.
 */
export type TransportFailure = 'connect' | 'broken' | 'timeout' | 'aborted';

/** Thrown by a transport when there is no HTTP answer. Carries a short reason, never the request. */
export class TransportError extends Error {
  readonly failure: TransportFailure;
  /** A system code such as ECONNREFUSED, where known. */
  readonly systemCode: string | undefined;

  constructor(failure: TransportFailure, message: string, systemCode?: string) {
    super(message);
    this.name = 'TransportError';
    this.failure = failure;
    this.systemCode = systemCode;
  }
}

/**
 * The HTTP client behind the SDXL client. The default is Node's own HTTP (axios behind a proxy); the
 * n8n node supplies n8n's own request helper so that n8n's proxy, SSRF and credential handling apply.
 */
export interface Transport {
  request(request: TransportRequest): Promise<TransportResponse>;
}

/** Lower-cases header names and joins repeated values, for any header shape a library returns. */
export function normalizeHeaders(headers: unknown): Record<string, string> {
  const result: Record<string, string> = {};
  if (!headers || typeof headers !== 'object') return result;
  const entries =
    typeof (headers as { entries?: unknown }).entries === 'function' && !Array.isArray(headers)
      ? Array.from((headers as { entries(): Iterable<[string, unknown]> }).entries())
      : Object.entries(headers as Record<string, unknown>);
  for (const [name, value] of entries) {
    if (value === undefined || value === null) continue;
    result[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return result;
}

/** System codes that mean the request never reached the server. */
export const NOT_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ERR_INVALID_URL',
]);

/** The system code of a library's or Node's error, when it has one. */
export function systemCodeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The failure a transport reports for an exchange that ended without a whole answer, by its system
 * code: only a code that says the request never left is safe to retry; anything else may have been billed.
 */
export function failureFor(systemCode: string | undefined, host: string): TransportError {
  if (systemCode && NOT_SENT_CODES.has(systemCode)) {
    return new TransportError('connect', `Could not connect to ${host} (${systemCode}).`, systemCode);
  }
  if (systemCode === 'ERR_FR_MAX_BODY_LENGTH_EXCEEDED' || systemCode === 'ERR_BAD_RESPONSE') {
    return new TransportError('broken', `The answer from ${host} was cut off or too large.`, systemCode);
  }
  return new TransportError(
    'broken',
    `The connection to ${host} failed after the request was sent (${systemCode ?? 'no code'}).`,
    systemCode,
  );
}
