// Text to image, the kit's first model, in the names every host already uses: REQUEST_FIELDS,
// parseRequest, toWireRequest. Validation itself is the one every model shares (model-request.ts).
import { parseModelRequest } from './model-request.ts';
import { MAX_SEED, REQUEST_FIELDS, sdxlTxt2Img, type FieldName, type FieldSpec } from './models/index.ts';

export {
  KNOWN_DIMENSIONS,
  KNOWN_SCHEDULERS,
  KNOWN_STYLES,
  MAX_SEED,
  REQUEST_FIELDS,
  type FieldName,
  type FieldSpec,
} from './models/index.ts';
export { describeValue } from './model-request.ts';

const FIELDS_BY_NAME = new Map(REQUEST_FIELDS.map((field) => [field.name, field]));

/** Looks up a text-to-image field by its camelCase name. */
export function fieldSpec(name: FieldName): FieldSpec {
  const spec = FIELDS_BY_NAME.get(name);
  if (!spec) throw new Error(`unknown request field ${String(name)}`);
  return spec;
}

/** What a caller may pass: only `prompt` is required. */
export type GenerateInput = {
  prompt: string;
  negativePrompt?: string;
  style?: string;
  samples?: number;
  scheduler?: string;
  steps?: number;
  guidanceScale?: number;
  strength?: number;
  highNoiseFraction?: number;
  seed?: number;
  width?: number;
  height?: number;
  refiner?: boolean;
  base64?: boolean;
};

/** A validated request with every default filled in. `seed` may still be -1 (random). */
export type GenerateRequest = Required<GenerateInput>;
/** The request as sent: `seed` is the concrete seed used. */
export type ResolvedRequest = GenerateRequest;

/**
 * Validates options and fills in every default. Throws {@link InvalidRequestError} naming each
 * field, the value given and what is allowed; nothing is sent.
 */
export function parseRequest(input: unknown): GenerateRequest {
  return parseModelRequest(sdxlTxt2Img, input).values as GenerateRequest;
}

/** The JSON body for the wire: every field explicit, snake_case, so no result rests on a server default. */
export function toWireRequest(request: ResolvedRequest): Record<string, string | number | boolean> {
  const wire: Record<string, string | number | boolean> = {};
  for (const field of REQUEST_FIELDS) wire[field.wire] = request[field.name];
  // One billed call returns several images only as base64 JSON; raw bytes carry one image.
  if (request.samples > 1) wire.base64 = true;
  return wire;
}

/** A fresh random seed in the API's range, drawn per request. */
export function randomSeed(random: () => number): number {
  return Math.floor(random() * (MAX_SEED + 1));
}
