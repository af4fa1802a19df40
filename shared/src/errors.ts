/** A stable string for branching on errors without `instanceof` (two copies of a package break it). */
export type SdxlErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'not_found'
  | 'method_not_allowed'
  | 'insufficient_credits'
  | 'unprocessable'
  | 'rate_limited'
  | 'server_error'
  | 'timeout'
  | 'connection'
  | 'aborted'
  | 'bad_response'
  | 'job_failed'
  | 'request_expired'
  | 'model_retired'
  | 'budget_exceeded';

/** What each code means for a user and what they can do about it; hosts may word it their own way. */
export const ERROR_HINTS: Readonly<Record<SdxlErrorCode, string>> = {
  invalid_request: 'Fix the option named in the message; nothing was sent and nothing was billed.',
  unauthorized: 'The API key was refused. Check that it is complete and still active.',
  not_found: 'The API address does not exist. Check the base URL.',
  method_not_allowed: 'The API refused the HTTP method. Check the base URL.',
  insufficient_credits: 'The account has too few credits for this request. Top up, or ask for fewer images.',
  unprocessable: 'The API refused a parameter. Check the values named in the message.',
  rate_limited: 'Too many requests for the plan. Lower the requests per minute, or wait and try again.',
  server_error: 'The API failed on its side. Trying again later usually works; nothing was billed.',
  timeout: 'No answer in time. Try again, or allow a longer timeout.',
  connection: 'The connection to the API failed. Check the network and the base URL.',
  aborted: 'The request was cancelled.',
  bad_response: 'The API answered with something that is not an image. Try again later.',
  job_failed:
    'The API accepted the job, then it failed (often a value it refused, named in the message). It was not billed.',
  request_expired:
    'The API no longer knows this request id: results are kept for an hour after submission. Submit again.',
  model_retired: 'The API has retired this model. Choose another model; nothing was billed.',
  budget_exceeded:
    'The call would spend past a budget its operator set. Nothing was sent or billed; wait for the budget to reset, or raise it.',
};

/** The root of every error the client throws. Carries no request headers, so no API key. */
export class SdxlError extends Error {
  readonly code: SdxlErrorCode;
  /**
   * The async request this error concerns, where one was submitted: the job may go on (and be billed)
   * after the caller stopped waiting, so a host can report it and pick it up again with `resume`.
   */
  requestId: string | undefined;

  constructor(code: SdxlErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }

  /** What a user can do about it. */
  get hint(): string {
    return ERROR_HINTS[this.code];
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.requestId !== undefined && { requestId: this.requestId }),
    };
  }
}

/** One option that failed validation. */
export interface InvalidField {
  /** camelCase option name, or the unknown key given. */
  field: string;
  /** The wire (snake_case) name, for known fields. */
  wire?: string;
  /** The value given, shortened for display. */
  value: string;
  /** What is allowed, in words. */
  allowed: string;
  /** One sentence naming the field, the value and what is allowed. */
  message: string;
}

/** The request was refused before anything was sent. */
export class InvalidRequestError extends SdxlError {
  readonly fields: readonly InvalidField[];

  /** `what` names what was refused: the request (default) or, say, the client's options. */
  constructor(fields: readonly InvalidField[], what = 'request') {
    super('invalid_request', `Invalid ${what}: ${fields.map((field) => field.message).join('; ')}`);
    this.fields = fields;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), fields: this.fields };
  }
}

/** The API answered with a status other than 2xx. Keeps response headers only. */
export class ApiError extends SdxlError {
  readonly status: number;
  /** Response headers, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** The server's message (from JSON `error`/`message`, an HTML title, or plain text), shortened. */
  readonly serverMessage: string;

  constructor(code: SdxlErrorCode, status: number, serverMessage: string, headers: Record<string, string>) {
    super(code, `${status} ${serverMessage}`);
    this.status = status;
    this.headers = headers;
    this.serverMessage = serverMessage;
    this.requestId = headers['x-request-id'];
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), status: this.status, requestId: this.requestId };
  }
}

export class UnauthorizedError extends ApiError {}
export class NotFoundError extends ApiError {}
export class MethodNotAllowedError extends ApiError {}
export class InsufficientCreditsError extends ApiError {}
export class UnprocessableError extends ApiError {}
export class ServerError extends ApiError {}
export class UnexpectedStatusError extends ApiError {}
/** 410 Gone: the model was retired ("fail fast, not charged"). */
export class ModelRetiredError extends ApiError {}
/** An async request id the API no longer knows: expired (kept an hour) or never issued. Not billed. */
export class RequestExpiredError extends ApiError {}

/** An async job the API accepted that then FAILED (422 on its status and result). Not billed. */
export class JobFailedError extends ApiError {
  /** The server's own words, e.g. "Prompt is Mandatory and must be string". */
  readonly serverError: string;

  constructor(status: number, serverError: string, headers: Record<string, string>, requestId: string) {
    super('job_failed', status, `The job failed: ${serverError}`, { ...headers, 'x-request-id': requestId });
    this.serverError = serverError;
  }
}

export class RateLimitError extends ApiError {
  /** When the API said the limit resets, if it did. */
  readonly resetAt: Date | undefined;

  constructor(status: number, serverMessage: string, headers: Record<string, string>, resetAt?: Date) {
    super('rate_limited', status, serverMessage, headers);
    this.resetAt = resetAt;
  }
}

/** No answer within the per-attempt timeout or the overall deadline. */
export class TimeoutError extends SdxlError {
  constructor(message: string) {
    super('timeout', message);
  }
}

/** The connection failed. `sent` tells whether the request may have reached the API (and been billed). */
export class ConnectionError extends SdxlError {
  readonly sent: boolean;

  constructor(message: string, sent: boolean) {
    super('connection', message);
    this.sent = sent;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), sent: this.sent };
  }
}

/** The caller aborted. Never retried. */
export class AbortedError extends SdxlError {
  constructor(message = 'The request was aborted.') {
    super('aborted', message);
  }
}

/** What a budget refusal knows: the limit, where it stands and what was asked. */
export interface BudgetRefusal {
  readonly limit: {
    readonly id: string;
    readonly credits: number;
    readonly window: string;
    readonly label?: string;
  };
  /** Credits settled in the limit's window. */
  readonly spent: number;
  /** Credits held by calls in flight. */
  readonly reserved: number;
  /** Credits the refused call would have held. */
  readonly requested: number;
  /** When the window starts again; undefined for a total budget. */
  readonly resetsAt: Date | undefined;
}

/** A call refused before it was sent, because its estimate does not fit a budget. Nothing was billed. */
export class BudgetExceededError extends SdxlError implements BudgetRefusal {
  readonly limit: BudgetRefusal['limit'];
  readonly spent: number;
  readonly reserved: number;
  readonly requested: number;
  readonly resetsAt: Date | undefined;

  constructor(refusal: BudgetRefusal) {
    const { limit } = refusal;
    const name = limit.label ?? `the budget ${limit.id}`;
    const held =
      refusal.reserved > 0 ? ` and ${formatCredits(refusal.reserved)} held by calls in flight` : '';
    const reset = refusal.resetsAt ? `; it resets at ${refusal.resetsAt.toISOString()}` : '';
    super(
      'budget_exceeded',
      `${name} is ${formatCredits(limit.credits)} credits: ${formatCredits(refusal.spent)} spent${held}, so this call (about ${formatCredits(refusal.requested)}) does not fit${reset}. Nothing was sent.`,
    );
    this.limit = limit;
    this.spent = refusal.spent;
    this.reserved = refusal.reserved;
    this.requested = refusal.requested;
    this.resetsAt = refusal.resetsAt;
  }

  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      budget: { id: this.limit.id, window: this.limit.window, credits: this.limit.credits },
      spent: this.spent,
      reserved: this.reserved,
      requested: this.requested,
      ...(this.resetsAt && { resetsAt: this.resetsAt.toISOString() }),
    };
  }
}

/** Credits as people read them: up to six decimals, no trailing zeros. */
export function formatCredits(credits: number): string {
  return String(Math.round(credits * 1_000_000) / 1_000_000);
}

/** A 2xx answer that holds no usable image, or a body that is not what the API promises. */
export class BadResponseError extends SdxlError {
  constructor(message: string) {
    super('bad_response', message);
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const MAX_MESSAGE_LENGTH = 300;

function shorten(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_MESSAGE_LENGTH ? `${flat.slice(0, MAX_MESSAGE_LENGTH - 3)}...` : flat;
}

/** Reads the server's own words from a JSON, HTML, plain-text or empty body. */
export function serverMessageFrom(status: number, bodyText: string, contentType = ''): string {
  const fallback = STATUS_TEXT[status] ?? `HTTP ${status}`;
  const text = bodyText.trim();
  if (!text) return fallback;
  if (contentType.includes('json') || text.startsWith('{')) {
    try {
      const body = JSON.parse(text) as unknown;
      if (body && typeof body === 'object') {
        const record = body as Record<string, unknown>;
        for (const key of ['error', 'message', 'detail']) {
          const value = record[key];
          if (typeof value === 'string' && value.trim()) return shorten(value);
          if (
            value &&
            typeof value === 'object' &&
            typeof (value as { message?: unknown }).message === 'string'
          ) {
            return shorten((value as { message: string }).message);
          }
        }
      }
    } catch {
      // Not JSON after all: fall through to the text readings.
    }
  }
  if (contentType.includes('html') || /^<(!doctype|html)/i.test(text)) {
    const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1]?.trim();
    const stripped = shorten(text.replace(/<[^>]*>/g, ' '));
    return title || stripped || fallback;
  }
  return shorten(text);
}

/** Parses `x-rate-limit-reset-at-utc` (ISO time, or epoch seconds or ms) into a Date. */
export function parseResetAt(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) {
    const number = Number(text);
    return new Date(number > 1e12 ? number : number * 1000);
  }
  const hasZone = /(z|[+-]\d\d:?\d\d|gmt|utc)$/i.test(text);
  const time = Date.parse(hasZone ? text : `${text}Z`);
  return Number.isNaN(time) ? undefined : new Date(time);
}

/**
 * The one factory from an HTTP answer to an error. `redact` removes secrets from whatever the
 * server said, in case it echoes them.
 */
export function errorFromResponse(
  status: number,
  bodyText: string,
  headers: Record<string, string>,
  redact: (text: string) => string = (text) => text,
): ApiError {
  const message = redact(serverMessageFrom(status, bodyText, headers['content-type']));
  // Headers stay on the error for callers (x-request-id, the rate-limit reset); a server that echoes
  // the key in one must not put it into util.inspect(error).
  headers = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, redact(value)]));
  switch (status) {
    case 401:
    case 403:
      return new UnauthorizedError('unauthorized', status, message, headers);
    case 404:
      return new NotFoundError('not_found', status, message, headers);
    case 410:
      return new ModelRetiredError('model_retired', status, message, headers);
    case 405:
      return new MethodNotAllowedError('method_not_allowed', status, message, headers);
    case 402:
    case 406:
      return new InsufficientCreditsError('insufficient_credits', status, message, headers);
    case 400:
    case 413:
    case 422:
      return new UnprocessableError('unprocessable', status, message, headers);
    case 429:
      return new RateLimitError(status, message, headers, parseResetAt(headers['x-rate-limit-reset-at-utc']));
    default:
      if (status >= 500) return new ServerError('server_error', status, message, headers);
      return new UnexpectedStatusError('bad_response', status, message, headers);
  }
}

/** Builds a function that replaces every secret in a text; short strings are left alone to keep text readable. */
export function createRedactor(secrets: readonly (string | undefined)[]): (text: string) => string {
  const targets = secrets.filter(
    (secret): secret is string => typeof secret === 'string' && secret.length >= 4,
  );
  if (targets.length === 0) return (text) => text;
  return (text) => targets.reduce((result, secret) => result.split(secret).join('[redacted]'), text);
}
