import { ERROR_HINTS, type SdxlError } from '@sdxl-kit/client';

import { EXIT } from './exit-codes.ts';

export { EXIT };

/** One refused setting, named as the user gave it (`flag`: a flag, a variable or a prompt's place). */
export interface UsageField {
  flag: string;
  field: string;
  value: string;
  allowed: string;
  message: string;
}

/** Bad command-line input: exits 2, nothing sent. */
export class UsageError extends Error {
  /** The refused request fields, when the client's validation refused them. */
  readonly fields: readonly UsageField[] | undefined;

  constructor(message: string, fields?: readonly UsageField[]) {
    super(message);
    this.name = 'UsageError';
    this.fields = fields;
  }
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof UsageError) return EXIT.invalidInput;
  switch ((error as { code?: string } | null)?.code) {
    case 'out_in_use':
      return EXIT.outInUse;
    case 'invalid_request':
      return EXIT.invalidInput;
    case 'unauthorized':
      return EXIT.unauthorized;
    case 'insufficient_credits':
      return EXIT.insufficientCredits;
    case 'rate_limited':
      return EXIT.rateLimited;
    case 'budget_exceeded':
      return EXIT.budgetExceeded;
    case 'aborted':
      return EXIT.interrupted;
    default:
      return EXIT.failure;
  }
}

/** What the hints name: the settings this run actually used. */
export interface HintContext {
  /** Where the API address came from: `--base-url`, `SDXL_BASE_URL`, or the default. */
  baseUrl?: string;
  /** The per-attempt timeout in seconds. */
  timeoutSeconds?: number;
}

function cliHint(code: SdxlError['code'], context: HintContext): string | undefined {
  const address = context.baseUrl ?? 'the API address';
  switch (code) {
    case 'unauthorized':
      return 'Check SDXL_API_KEY (or SEGMIND_API_KEY): the key was refused. Try --sandbox to work offline.';
    case 'not_found':
      return `Check ${address}: nothing answers at that address.`;
    case 'method_not_allowed':
      return `Check ${address}: it does not point at the SDXL API.`;
    case 'connection':
      return `The connection to the API failed. Check the network and ${address}.`;
    case 'rate_limited':
      return 'Still rate limited after retries. Lower --rpm (5 on the free plan) and run again.';
    case 'timeout':
      return `No answer in time${context.timeoutSeconds !== undefined ? ` (${context.timeoutSeconds} s per attempt)` : ''}. Try again, or allow more time with --timeout SECONDS.`;
    default:
      return undefined;
  }
}

function messageOf(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(error);
}

/** One line for a person: what happened and what to do, naming the settings this run used. */
export function describeError(error: unknown, context: HintContext = {}): string {
  const code = (error as Partial<SdxlError> | null)?.code;
  const message = messageOf(error);
  // An outcome the CLI words itself says what to do in its message, or in its own `hint`.
  if (error !== null && typeof error === 'object' && Object.hasOwn(error, 'hint')) {
    const { hint } = error as { hint?: unknown };
    return typeof hint === 'string' && hint ? `${message}\n${hint}` : message;
  }
  if (!code || !(code in ERROR_HINTS)) return message;
  if (code === 'invalid_request' || code === 'aborted') return message;
  return `${message}\n${cliHint(code, context) ?? ERROR_HINTS[code]}`;
}

/** The `error` member of JSON output. */
export function errorJson(error: unknown): {
  code: string;
  message: string;
  fields?: readonly UsageField[];
  requestId?: string;
} {
  const code =
    (error as Partial<SdxlError> | null)?.code ?? (error instanceof UsageError ? 'invalid_request' : 'error');
  const fields = error instanceof UsageError ? error.fields : undefined;
  // A job submitted before the failure may still finish and be billed: its id lets `sdxl resume` collect it.
  const requestId = (error as Partial<SdxlError> | null)?.requestId;
  return { code, message: messageOf(error), ...(fields && { fields }), ...(requestId && { requestId }) };
}
