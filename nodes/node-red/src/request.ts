import { REQUEST_FIELDS, type FieldSpec, type GenerateInput } from '@sdxl-kit/client/core';
import type { NodeMessage } from './red.ts';

/** What an SDXL node's editor stores: one string per request field, '' meaning "not set here". */
export type NodeFieldValues = Partial<Record<FieldSpec['name'], string | number | boolean>>;

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
]);

/** Keys that look like a credential: the key comes from the config node only, never from a message. */
const CREDENTIAL_KEYS: ReadonlySet<string> = new Set(['apikey', 'api_key', 'key', 'x-api-key', 'token']);

const BY_WIRE_NAME = new Map(REQUEST_FIELDS.map((field) => [field.wire, field]));

export interface ResolvedInput {
  input: GenerateInput;
  /** msg.sdxl keys that were ignored because they look like a credential. */
  ignoredCredentialKeys: string[];
}

function isUnset(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

/** Numbers and booleans arrive as strings from the editor and from forms; the client judges the rest. */
function coerce(field: FieldSpec, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  if (field.kind === 'integer' || field.kind === 'number') {
    const number = Number(text);
    return Number.isFinite(number) ? number : value;
  }
  if (field.kind === 'boolean') {
    if (text === 'true') return true;
    if (text === 'false') return false;
  }
  return value;
}

/**
 * Builds one request from the node's settings and the message. A field set in the node wins;
 * `msg.sdxl.<field>` fills a field the node leaves empty; the prompt falls back to `msg.payload`
 * when that is a string. Unknown `msg.sdxl` keys go through so the client can name them in its error.
 * A `msg.sdxl` that is an SDXL node's result (it has `request`) gives no seed: its seed is the one used.
 */
export function resolveInput(node: NodeFieldValues, msg: NodeMessage): ResolvedInput {
  const fromMsg: Record<string, unknown> = {};
  const ignoredCredentialKeys: string[] = [];
  const sdxl = msg.sdxl;
  if (sdxl && typeof sdxl === 'object' && !Array.isArray(sdxl)) {
    // A result of an SDXL node (chained, or looped back with a new payload) carries the seed it used;
    // taking it would silently repeat that seed. Only the message's own settings count.
    const isResult = 'request' in sdxl && typeof (sdxl as { request: unknown }).request === 'object';
    for (const [key, value] of Object.entries(sdxl as Record<string, unknown>)) {
      if (CREDENTIAL_KEYS.has(key.toLowerCase())) {
        ignoredCredentialKeys.push(key);
        continue;
      }
      if (RESULT_KEYS.has(key) || (isResult && key === 'seed') || isUnset(value)) continue;
      const name = BY_WIRE_NAME.get(key)?.name ?? key;
      // The camelCase name wins when a message carries both spellings.
      if (name !== key && name in (sdxl as object)) continue;
      fromMsg[name] = value;
    }
  }

  const input: Record<string, unknown> = { ...fromMsg };
  for (const field of REQUEST_FIELDS) {
    const own = node[field.name];
    if (!isUnset(own)) input[field.name] = own;
    if (input[field.name] !== undefined) input[field.name] = coerce(field, input[field.name]);
  }
  if (isUnset(input.prompt) && typeof msg.payload === 'string' && msg.payload.trim() !== '') {
    input.prompt = msg.payload;
  }
  return { input: input as GenerateInput, ignoredCredentialKeys };
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
export function missingPrompt(input: GenerateInput, msg: NodeMessage): string | undefined {
  if (!isUnset(input.prompt)) return undefined;
  return (
    `prompt: none given; the node's Prompt is empty, msg.sdxl.prompt is not set and msg.payload is ` +
    `${describePayload(msg.payload)}. Allowed: non-empty text in any of them.`
  );
}
