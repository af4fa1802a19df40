import { STATUS_CODES } from 'node:http';

/** A complete answer, ready to send: the sender adds Content-Length and `x-remaining-credits`. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export const MESSAGES = {
  notFound: 'The requested model endpoint or URL does not exist.',
  missingKey: 'Missing Authorization or x-api-key in header',
  // Never echoes the key that was sent: the answer may end up in logs.
  badKey: 'Unauthorized. API key is invalid or may have expired. Check your API key and try again.',
  invalidContentType: 'Invalid content type',
  invalidParameters: 'Invalid or missing parameters in the request body',
  bodyTooLarge: 'Request body is larger than 1 MiB',
  notJson: 'body: is not valid JSON',
  serverError: 'An error occurred while generating the image. Please try again.',
} as const;

export function jsonAnswer(status: number, value: unknown, headers: Record<string, string> = {}): Answer {
  return {
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: Buffer.from(JSON.stringify(value)),
  };
}

export function errorAnswer(status: number, message: string, headers: Record<string, string> = {}): Answer {
  return jsonAnswer(status, { error: message }, headers);
}

/** The hosted API answers a wrong method with a web server's HTML page, not JSON. */
export function methodNotAllowedAnswer(allow: string): Answer {
  const html =
    '<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n' +
    '<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n';
  return {
    status: 405,
    headers: { 'content-type': 'text/html; charset=utf-8', allow },
    body: Buffer.from(html),
  };
}

/** Plain text, as seen for this 406 in the wild: clients must not assume error bodies parse. */
export function insufficientCreditsAnswer(balance: number, needed: number): Answer {
  return {
    status: 406,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    body: Buffer.from(
      `Insufficient credits: balance ${formatCredits(balance)}, needed ${formatCredits(needed)}`,
    ),
  };
}

export function rateLimitedAnswer(resetAt: number, detail: string): Answer {
  const resetIso = new Date(resetAt).toISOString();
  return errorAnswer(429, `${detail} Try again after ${resetIso}.`, {
    'x-rate-limit-reset-at-utc': resetIso,
  });
}

/**
 * The answer the hosted API gives for `status` when nothing more specific is known, used for scripted
 * statuses. `context` supplies what some of them quote.
 */
export function cannedAnswer(
  status: number,
  context: { balance: number; needed: number; resetAt: number },
): Answer {
  switch (status) {
    case 401:
      return errorAnswer(401, MESSAGES.badKey);
    case 404:
      return errorAnswer(404, MESSAGES.notFound);
    case 405:
      return methodNotAllowedAnswer('POST');
    case 406:
      return insufficientCreditsAnswer(context.balance, context.needed);
    case 422:
      return errorAnswer(422, MESSAGES.invalidParameters);
    case 429:
      return rateLimitedAnswer(context.resetAt, 'Rate limit exceeded.');
    case 500:
      return errorAnswer(500, MESSAGES.serverError);
    default:
      return errorAnswer(status, STATUS_CODES[status] ?? `Status ${status}`);
  }
}

/** Rounds to 10 decimals, enough for fractional credits without float noise like 99.99199999999999. */
export function roundCredits(value: number): number {
  return Number(value.toFixed(10));
}

/** A plain decimal, never exponent notation, so any decimal parser reads it. */
export function formatCredits(value: number): string {
  const fixed = value.toFixed(10);
  const trimmed = fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
  return trimmed === '-0' ? '0' : trimmed;
}
