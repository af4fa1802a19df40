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
import { OPTION_FIELDS, displayNameOf, type OperationName } from './properties.ts';
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
    // What to check depends on the operation: see jobFailedAdvice.
    description:
      'The API accepted the request, then could not make the image. Jobs that fail are not billed.',
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
  /** The operation the item runs: what a failed job's error tells to check, and how to resume. */
  operation?: OperationName;
  /** The form's words for a field ("Input Binary Field \"data\""); the generate fields' labels otherwise. */
  labels?: ReadonlyMap<string, string>;
  /**
   * Where to fix a field, in the form's words ("Options > Strength", "the file in Mask Binary Field
   * \"mask\""); otherwise Generate Image's: its prompts up front, the rest under Options.
   */
  places?: ReadonlyMap<string, string>;
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

/** Where in the form to fix each refused field, each named once: "Options > Steps and Prompt". */
function placesToFix(fields: readonly InvalidField[], wording: ErrorWording): string {
  const places = fields.map((field) => {
    const place = wording.places?.get(field.field);
    if (place) return place;
    const name = displayNameOf(field.field) ?? field.field;
    return (OPTION_FIELDS as readonly string[]).includes(field.field) ? `Options > ${name}` : name;
  });
  return [...new Set(places)].join(' and ');
}

/** After a failed job: what to check, in the terms of the operation that submitted it. */
function jobFailedAdvice(operation: OperationName | undefined): string {
  switch (operation) {
    case 'generateImage':
      return ' Check the prompt and the options against what it said (a content filter refuses some prompts), then run it again.';
    case 'resumeRequest':
      return ' Check the input of the run that submitted it against what it said, then run that operation again.';
    case undefined:
      return '';
    default:
      return ' Check the input image (or its URL) and the options against what it said, then run it again.';
  }
}

/**
 * What to do about an async request that was submitted when the run stopped waiting: fetch it, for
 * free, rather than submit again. `requestIds` is one ID, or "(item 0: …; item 2: …)".
 */
export function resumeAdvice(requestIds: string, resuming = false): string {
  if (resuming) {
    return `Run Resume Request again with Request ID ${requestIds} within the hour: fetching the images bills nothing.`;
  }
  return `Resume Request with Request ID ${requestIds} fetches the images within the hour without billing again: what was submitted goes on, and is billed when it finishes. Running this operation again (or Retry On Fail) submits a new request and bills again.`;
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
      description: `Fix ${placesToFix(error.fields, wording)}: nothing was sent and nothing was billed. A value from an expression comes from the input item.`,
    });
  }
  // Refused by the run's own cap, not by the API: nothing was sent.
  if (error.code === 'budget_exceeded') return budgetRefusal(node, error, itemIndex, tag);
  // A submitted async job goes on whatever happens here: its ID is how to get the images later, and
  // that comes first, before anything that would submit (and bill) again.
  const resume =
    wording.submitted && isResumable(error.code)
      ? resumeAdvice(wording.submitted, wording.operation === 'resumeRequest')
      : '';
  if (error.code === 'aborted') {
    return new NodeOperationError(node, 'The execution was cancelled' + tag, {
      itemIndex,
      ...(resume && { description: resume }),
    });
  }
  const said = error.message.replace(/[.\s]+$/, '');
  const detail = error instanceof ApiError ? ` The API said: ${said}.` : ` ${said}.`;
  if (resume) {
    // The job went on while the node stopped waiting: "try again" would submit and bill it twice.
    const waitedTooLong = error.code === 'timeout';
    return new NodeApiError(node, errorResponse(error), {
      itemIndex,
      message:
        (waitedTooLong ? 'The SDXL job did not finish in time' : (WORDING[error.code]?.message ?? said)) +
        tag,
      description: waitedTooLong
        ? `${resume} To wait longer next time, raise Options > Timeout (Seconds).`
        : `${resume}${detail}`,
      ...(error instanceof ApiError && { httpCode: String(error.status) }),
    });
  }
  const words =
    error.code === 'server_error' && itemCount > 1
      ? { message: WORDING.server_error?.message ?? error.message, description: SERVER_ERROR_OF_MANY }
      : WORDING[error.code];
  const advice = error.code === 'job_failed' ? jobFailedAdvice(wording.operation) : '';
  return new NodeApiError(node, errorResponse(error), {
    itemIndex,
    message: (words?.message ?? error.message) + tag,
    description: `${words?.description ?? ERROR_HINTS[error.code]}${detail}${advice}`,
    ...(error instanceof ApiError && { httpCode: String(error.status) }),
  });
}

/** Codes after which a submitted job may still finish: stopped waiting, timed out, or lost on the way. */
function isResumable(code: string): boolean {
  return ['aborted', 'timeout', 'connection', 'server_error', 'rate_limited', 'bad_response'].includes(code);
}

/** The code a failed item reports with Continue On Fail. */
export function errorCode(error: unknown): string {
  if (error instanceof SdxlError) return error.code;
  // The node's own refusals (a missing binary field, an empty Request ID): nothing was sent.
  if (error instanceof NodeOperationError) return 'invalid_request';
  return 'unknown';
}
