import { REQUEST_FIELDS, type GenerateInput, type ModelField } from '@sdxl-kit/client/core';
import { DEFAULT_MASK_PROPERTY, modelOf, propertyFor, type NodeOperation } from './operations.ts';
import type { NodeMessage } from './red.ts';

/**
 * What an SDXL node's editor stores: one string per request field of each operation ('' meaning
 * "not set here"), keyed by {@link propertyFor}.
 */
export type NodeFieldValues = Partial<Record<string, string | number | boolean>>;

/**
 * Keys the SDXL node itself writes into `msg.sdxl`; a chained node skips them rather than refusing them.
 * `seed` is one too, but only skipped in a result (see resolveInput): elsewhere it is a setting.
 */
const RESULT_KEYS: ReadonlySet<string> = new Set([
  'index',
  'count',
  'remainingCredits',
  'lowCredits',
  'threshold',
  'cost',
  'requestId',
  'mimeType',
  'generationTime',
  'images',
  'request',
  'model',
  'operation',
  'api',
  'polls',
  'missingImages',
]);

/** Keys that look like a credential: the key comes from the config node only, never from a message. */
const CREDENTIAL_KEYS: ReadonlySet<string> = new Set(['apikey', 'api_key', 'key', 'x-api-key', 'token']);

export interface ResolvedInput {
  input: GenerateInput & Record<string, unknown>;
  /** msg.sdxl keys that were ignored because they look like a credential. */
  ignoredCredentialKeys: string[];
}

function isUnset(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

/** Numbers and booleans arrive as strings from the editor and from forms; the client judges the rest. */
function coerce(field: Pick<ModelField, 'kind' | 'values'>, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  // A choice among numbers (an upscale's 2, 4 or 8) is a number too, so a refusal shows 3, not "3".
  const numericChoice =
    field.kind === 'choice' && !!field.values?.every((known) => typeof known === 'number');
  if (field.kind === 'integer' || field.kind === 'number' || numericChoice) {
    const number = Number(text);
    return Number.isFinite(number) ? number : value;
  }
  if (field.kind === 'boolean') {
    if (text === 'true') return true;
    if (text === 'false') return false;
  }
  return value;
}

/** Whether msg.sdxl is what an SDXL node sent out (it has `request`), not settings someone wrote. */
export function isResultFacts(sdxl: unknown): boolean {
  return (
    !!sdxl &&
    typeof sdxl === 'object' &&
    'request' in sdxl &&
    typeof (sdxl as { request: unknown }).request === 'object'
  );
}

/**
 * Builds one request from the node's settings and the message. A field set in the node wins;
 * `msg.sdxl.<field>` fills a field the node leaves empty; the prompt falls back to `msg.payload`
 * when that is a string. Unknown `msg.sdxl` keys go through so the client can name them in its error.
 * A `msg.sdxl` that is an SDXL node's result (it has `request`) gives no seed: its seed is the one used.
 */
export function resolveInput(
  node: NodeFieldValues,
  msg: NodeMessage,
  operation: NodeOperation = 'generate',
): ResolvedInput {
  const fields: readonly ModelField[] = operation === 'generate' ? REQUEST_FIELDS : modelOf(operation).fields;
  const byWireName = new Map(fields.map((field) => [field.wire, field]));
  const fromMsg: Record<string, unknown> = {};
  const ignoredCredentialKeys: string[] = [];
  const sdxl = msg.sdxl;
  if (sdxl && typeof sdxl === 'object' && !Array.isArray(sdxl)) {
    // A result of an SDXL node (chained, or looped back with a new payload) carries the seed it used;
    // taking it would silently repeat that seed. Only the message's own settings count.
    const isResult = isResultFacts(sdxl);
    for (const [key, value] of Object.entries(sdxl as Record<string, unknown>)) {
      if (CREDENTIAL_KEYS.has(key.toLowerCase())) {
        ignoredCredentialKeys.push(key);
        continue;
      }
      if (RESULT_KEYS.has(key) || (isResult && key === 'seed') || isUnset(value)) continue;
      const name = byWireName.get(key)?.name ?? key;
      // The camelCase name wins when a message carries both spellings.
      if (name !== key && name in (sdxl as object)) continue;
      fromMsg[name] = value;
    }
  }

  const input: Record<string, unknown> = { ...fromMsg };
  for (const field of fields) {
    // Images come from the message (see imageInputs), never from a form value.
    if (field.kind === 'image') continue;
    const own = node[propertyFor(operation, field)];
    if (!isUnset(own)) input[field.name] = own;
    if (input[field.name] !== undefined) input[field.name] = coerce(field, input[field.name]);
  }
  if (
    operation === 'generate' &&
    isUnset(input.prompt) &&
    typeof msg.payload === 'string' &&
    msg.payload.trim() !== ''
  ) {
    input.prompt = msg.payload;
  }
  return { input: input as ResolvedInput['input'], ignoredCredentialKeys };
}

function describePayload(payload: unknown): string {
  if (payload === undefined) return 'not set';
  if (payload === null) return 'null';
  if (typeof payload === 'string') return 'empty text';
  if (Buffer.isBuffer(payload)) return `a Buffer (${payload.length} bytes)`;
  if (Array.isArray(payload)) return `an array (${payload.length} items)`;
  if (typeof payload === 'object') return 'an object';
  const shown = String(payload);
  return `a ${typeof payload} (${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown})`;
}

/**
 * When no prompt came from anywhere, says where it was looked for and what msg.payload held, so a
 * flow author sees at once why (say, a JSON object arrived where text was expected).
 */
export function missingPrompt(
  input: GenerateInput,
  msg: NodeMessage,
  operation: NodeOperation = 'generate',
): string | undefined {
  if (!isUnset(input.prompt)) return undefined;
  if (operation !== 'generate') {
    if (!modelOf(operation).fields.some((field) => field.name === 'prompt' && field.required))
      return undefined;
    return (
      `prompt: none given; the node's Prompt is empty and msg.sdxl.prompt is not set ` +
      `(msg.payload holds the image to ${operation}, and a result's prompt is never reused). ` +
      `Allowed: non-empty text in either of them.`
    );
  }
  return (
    `prompt: none given; the node's Prompt is empty, msg.sdxl.prompt is not set and msg.payload is ` +
    `${describePayload(msg.payload)}. Allowed: non-empty text in any of them.`
  );
}

/** Where each image of an operation comes from: the source from msg.payload, a mask from a property. */
export interface ImageSources {
  /** msg property names (no `msg.`) for mask-role fields, keyed by field name. */
  maskProperty?: string;
  getProperty(msg: NodeMessage, path: string): unknown;
}

/** The words a refusal uses for a value that is no image at all. */
function describeImageValue(value: unknown): string {
  if (typeof value === 'string') return value.trim() === '' ? 'empty text' : 'text';
  return describePayload(value);
}

/** A Buffer, a Uint8Array or non-empty text (URL, data: URL, base64): the client judges the rest. */
function looksLikeImageInput(value: unknown): boolean {
  return value instanceof Uint8Array || (typeof value === 'string' && value.trim() !== '');
}

/**
 * Puts the operation's images into the request: the source image from `msg.payload` (unless a
 * message's own `msg.sdxl.image` gives one), a mask from the configured message property. Returns a
 * refusal naming the field and where it was looked for when an image is missing or no image at all.
 */
export function addImages(
  input: Record<string, unknown>,
  msg: NodeMessage,
  operation: NodeOperation,
  sources: ImageSources,
): { field: string; message: string } | undefined {
  if (operation === 'generate') return undefined;
  for (const field of modelOf(operation).fields) {
    if (field.kind !== 'image') continue;
    let where: string;
    let value: unknown;
    if (field.role === 'mask') {
      const property = sources.maskProperty?.trim() || DEFAULT_MASK_PROPERTY;
      where = `msg.${property}`;
      value = sources.getProperty(msg, property);
    } else if (!isUnset(input[field.name])) {
      where = `msg.sdxl.${field.name}`;
      value = input[field.name];
    } else {
      where = 'msg.payload';
      value = msg.payload;
    }
    if (Array.isArray(value)) {
      return {
        field: field.name,
        message:
          `${field.name}: ${where} is ${describePayload(value)}; allowed: one image per message (set the ` +
          `SDXL node before to "one message per image", or put a Split node between). ${field.allowed}.`,
      };
    }
    if (!looksLikeImageInput(value)) {
      if (!field.required && value === undefined) continue;
      return {
        field: field.name,
        message: `${field.name}: ${where} is ${describeImageValue(value)}; allowed: ${field.allowed} (a Buffer from File In or HTTP Request, say).`,
      };
    }
    input[field.name] = value;
  }
  return undefined;
}
