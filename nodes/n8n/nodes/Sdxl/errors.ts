import { NodeApiError, NodeOperationError } from 'n8n-workflow';
import type { INode, JsonObject } from 'n8n-workflow';
import {
  ApiError,
  ERROR_HINTS,
  InvalidRequestError,
  SdxlError,
  type InvalidField,
  type SdxlErrorCode,
} from '@sdxl-kit/client/core';
import { displayNameOf } from './properties.ts';
import { budgetRefusal } from './budget.ts';

/** What to tell an n8n user for each code: a headline and how to fix it, in the words of this node's fields. */
const WORDING: Partial<Record<SdxlErrorCode, { message: string; description: string }>> = {
  unauthorized: {
    message: 'The SDXL API refused the API key',
    description:
      'Open the SDXL credential and paste the key again: it may be incomplete, revoked or for another account. Saving the credential tests the key.',
  },
  insufficient_credits: {
    message: 'The SDXL account is out of credits',
    description:
      'Top up the account, or ask for fewer images (Options > Number of Images). Nothing was billed for this item.',
  },
  rate_limited: {
    message: 'The SDXL API is rate limiting this account',
    description:
      'Lower Options > Requests per Minute to what the plan allows (5 on the free plan, 50 on Pro), or run fewer workflows at once.',
  },
  server_error: {
    message: 'The SDXL API failed on its side',
    description:
      'Nothing was billed. Trying again later usually works; "Retry On Fail" in the node settings can do that for you.',
  },
  unprocessable: {
    message: 'The SDXL API refused a value in the request',
    description:
      'Check the options against what the API said below (a style or scheduler from an expression is sent as given). Nothing was billed for this item.',
  },
  not_found: {
    message: 'The SDXL API address was not found',
    description:
      'Check the Base URL in the SDXL credential (for the hosted API: https://api.segmind.com/v1).',
  },
  timeout: {
    message: 'The SDXL API did not answer in time',
    description: 'Try again, or raise Options > Timeout (Seconds).',
  },
  connection: {
    message: 'Could not reach the SDXL API',
    description: 'Check the network and the Base URL in the SDXL credential.',
  },
  job_failed: {
    message: 'The SDXL job failed on the API',
    description:
      'The API accepted the request, then could not make the image (the reason is below). Jobs that fail are not billed. Check the input image or URL and try again.',
  },
  request_expired: {
    message: 'The SDXL request is no longer known to the API',
    description:
      'The API keeps a result for about an hour after the submit; this one has expired (or the request ID is wrong). Run the operation again to make a new one.',
  },
  model_retired: {
    message: 'The SDXL API has retired this model',
    description:
      'Nothing was billed. Update the n8n-nodes-sdxl package: a newer version may use another model.',
  },
};

/** How errors name fields: the form's words for each field, and whether the message ends with the item. */
export interface ErrorWording {
  /** The form's words for a field ("Input Binary Field \"data\""); the generate fields' labels otherwise. */
  labels?: ReadonlyMap<string, string>;
  /** Append "[item N]" to the message, as n8n's guidelines ask. */
  tagItem?: boolean;
  /** The ID of the async request this item submitted, if it did: the error says how to resume it. */
  submitted?: string;
}

/**
 * An SdxlError as JSON for n8n: message, status and request id, and the code as `sdxlCode`; never the
 * request or its headers. NodeApiError takes a `code` (or `errorCode`) it finds as the HTTP status,
 * so "timeout" would show as one: the code goes under a name it does not read.
 */
function errorResponse(error: SdxlError): JsonObject {
  const { code, ...rest } = JSON.parse(JSON.stringify(error.toJSON())) as JsonObject;
  return { ...rest, sdxlCode: code ?? null };
}

/** The client's sentence about a field, naming it as the form does ("Number of Images: 5 …", not "samples: 5 …"). */
function inFormWords(field: InvalidField, labels?: ReadonlyMap<string, string>): string {
  const name = labels ? labels.get(field.field) : displayNameOf(field.field);
  return name && field.message.startsWith(field.field)
    ? `${name}${field.message.slice(field.field.length)}`
    : field.message;
}

/**
 * "Retry On Fail" runs the whole node again, every item: with several items it would bill the images
 * that worked a second time, so it is suggested only when the run had one item.
 */
const SERVER_ERROR_OF_MANY =
  'Nothing was billed for this item. Trying again later usually works. "Retry On Fail" would run every item of this node again and bill the images that worked twice: instead set Settings > On Error to "Continue (using error output)" and send the failed items again.';

/**
 * Turns anything the client threw into n8n's error types: `NodeOperationError` for what the user set
 * (nothing was sent), `NodeApiError` for what the API or the network did. Both carry the item index.
 */
export function toNodeError(
  node: INode,
  error: unknown,
  itemIndex: number,
  itemCount = 1,
  wording: ErrorWording = {},
): NodeApiError | NodeOperationError {
  if (error instanceof NodeApiError || error instanceof NodeOperationError) return error;
  const tag = wording.tagItem ? ` [item ${itemIndex}]` : '';
  if (!(error instanceof SdxlError)) {
    const message = error instanceof Error ? error.message : String(error);
    return new NodeOperationError(node, message + tag, { itemIndex });
  }
  if (error instanceof InvalidRequestError) {
    const words = error.fields.map((field) => inFormWords(field, wording.labels)).join('; ');
    return new NodeOperationError(node, words + tag, {
      itemIndex,
      description: `${ERROR_HINTS.invalid_request} Options are under Options in the node; a value from an expression comes from the input item.`,
    });
  }
  // Refused by the run's own cap, not by the API: nothing was sent.
  if (error.code === 'budget_exceeded') return budgetRefusal(node, error, itemIndex, tag);
  // A submitted async job goes on whatever happens here: its ID is how to get the images later.
  const resume = wording.submitted && isResumable(error.code) ? resumeHint(wording.submitted) : '';
  if (error.code === 'aborted') {
    return new NodeOperationError(node, 'The execution was cancelled' + tag, {
      itemIndex,
      ...(resume && { description: resume.trim() }),
    });
  }
  const words =
    error.code === 'server_error' && itemCount > 1
      ? { message: WORDING.server_error?.message ?? error.message, description: SERVER_ERROR_OF_MANY }
      : WORDING[error.code];
  const said = error.message.replace(/[.\s]+$/, '');
  const detail = error instanceof ApiError ? ` The API said: ${said}.` : ` ${said}.`;
  return new NodeApiError(node, errorResponse(error), {
    itemIndex,
    message: (words?.message ?? error.message) + tag,
    description: `${words?.description ?? ERROR_HINTS[error.code]}${detail}${resume}`,
    ...(error instanceof ApiError && { httpCode: String(error.status) }),
  });
}

/** Codes after which a submitted job may still finish: stopped waiting, timed out, or lost on the way. */
function isResumable(code: string): boolean {
  return ['aborted', 'timeout', 'connection', 'server_error', 'rate_limited', 'bad_response'].includes(code);
}

function resumeHint(requestId: string): string {
  return ` The request ${requestId} was submitted and goes on (it is billed when it finishes): to fetch its images, run this node with the operation Resume Request and that Request ID within the hour.`;
}

/** The code a failed item reports with Continue On Fail. */
export function errorCode(error: unknown): string {
  if (error instanceof SdxlError) return error.code;
  // The node's own refusals (a missing binary field, an empty Request ID): nothing was sent.
  if (error instanceof NodeOperationError) return 'invalid_request';
  return 'unknown';
}
