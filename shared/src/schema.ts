import { z } from 'zod/v4';
import { InvalidRequestError, type InvalidField } from './errors.ts';

/** Styles confirmed for SDXL 1.0. The API publishes no list, so any other non-empty value is passed through. */
export const KNOWN_STYLES: readonly string[] = ['base'];

/**
 * Schedulers: `UniPC` is confirmed for SDXL 1.0; the rest are the names sibling Segmind models accept.
 * The API publishes no list, so any other non-empty value is passed through and the server judges it.
 */
export const KNOWN_SCHEDULERS: readonly string[] = [
  'UniPC',
  'DDIM',
  'DPM Multi',
  'DPM Single',
  'Euler a',
  'Euler',
  'Heun',
  'DPM2 a Karras',
  'DPM2 Karras',
  'LMS',
  'PNDM',
  'DDPM',
];

/** Widths and heights the hosted SDXL 1.0 accepts ("can only be 1024 for SDXL"). */
export const KNOWN_DIMENSIONS: readonly number[] = [1024];

export const MAX_SEED = 999_999_999_999_999;

type FieldKind = 'text' | 'choice' | 'integer' | 'number' | 'boolean';

/** Every request option, camelCase. */
export type FieldName =
  | 'prompt'
  | 'negativePrompt'
  | 'style'
  | 'samples'
  | 'scheduler'
  | 'steps'
  | 'guidanceScale'
  | 'strength'
  | 'highNoiseFraction'
  | 'seed'
  | 'width'
  | 'height'
  | 'refiner'
  | 'base64';

/** One request option: its camelCase name, its wire name, its default and bounds, and a plain description. */
export interface FieldSpec {
  readonly name: FieldName;
  readonly wire: string;
  readonly kind: FieldKind;
  readonly required?: boolean;
  readonly default?: string | number | boolean;
  readonly min?: number;
  readonly max?: number;
  /** Suggested values; for text choices other non-empty values are allowed too. */
  readonly values?: readonly (string | number)[];
  /** What is allowed, in words, as error messages show it. */
  readonly allowed: string;
  /** For people who are not programmers: what the option does. */
  readonly description: string;
}

/**
 * The one table that maps options to the wire. Hosts build their forms from it (n8n properties,
 * Node-RED editor fields, Discord command options, CLI flags).
 */
export const REQUEST_FIELDS: readonly FieldSpec[] = [
  {
    name: 'prompt',
    wire: 'prompt',
    kind: 'text',
    required: true,
    allowed: 'non-empty text without control characters',
    description: 'What the image should show.',
  },
  {
    name: 'negativePrompt',
    wire: 'negative_prompt',
    kind: 'text',
    default: '',
    allowed: 'text without control characters',
    description: 'What the image should not show, e.g. "blurry, extra fingers, watermark".',
  },
  {
    name: 'style',
    wire: 'style',
    kind: 'choice',
    default: 'base',
    values: KNOWN_STYLES,
    allowed: `non-empty text (known: ${KNOWN_STYLES.join(', ')})`,
    description: 'A preset look applied to the prompt. "base" applies none.',
  },
  {
    name: 'samples',
    wire: 'samples',
    kind: 'integer',
    default: 1,
    min: 1,
    max: 4,
    allowed: 'a whole number from 1 to 4',
    description: 'How many images to make in one call. Each image is billed.',
  },
  {
    name: 'scheduler',
    wire: 'scheduler',
    kind: 'choice',
    default: 'UniPC',
    values: KNOWN_SCHEDULERS,
    allowed: `non-empty text (known: ${KNOWN_SCHEDULERS.join(', ')})`,
    description: 'The sampling method. UniPC is the default and works well with few steps.',
  },
  {
    name: 'steps',
    wire: 'num_inference_steps',
    kind: 'integer',
    default: 25,
    min: 20,
    max: 100,
    allowed: 'a whole number from 20 to 100',
    description: 'How many refinement passes. More can add detail but takes longer and may cost more.',
  },
  {
    name: 'guidanceScale',
    wire: 'guidance_scale',
    kind: 'number',
    default: 7.5,
    min: 1,
    max: 25,
    allowed: 'a number from 1 to 25',
    description: 'How closely the image follows the prompt. Higher is more literal, lower is more creative.',
  },
  {
    name: 'strength',
    wire: 'strength',
    kind: 'number',
    default: 0.2,
    min: 0.1,
    max: 1,
    allowed: 'a number from 0.1 to 1',
    description: 'How strongly the refiner transforms the image.',
  },
  {
    name: 'highNoiseFraction',
    wire: 'high_noise_fraction',
    kind: 'number',
    default: 0.8,
    min: 0,
    max: 1,
    allowed: 'a number from 0 to 1 (below 1 when the refiner is on)',
    description: 'Share of the steps done by the base model before the refiner takes over.',
  },
  {
    name: 'seed',
    wire: 'seed',
    kind: 'integer',
    default: -1,
    min: -1,
    max: MAX_SEED,
    allowed: `a whole number from -1 to ${MAX_SEED} (-1 picks a random seed)`,
    description: 'Starting point of the noise. The same seed and settings give the same image; -1 picks one.',
  },
  {
    name: 'width',
    wire: 'img_width',
    kind: 'integer',
    default: 1024,
    values: KNOWN_DIMENSIONS,
    allowed: `one of ${KNOWN_DIMENSIONS.join(', ')}`,
    description: 'Image width in pixels. SDXL 1.0 makes 1024 only.',
  },
  {
    name: 'height',
    wire: 'img_height',
    kind: 'integer',
    default: 1024,
    values: KNOWN_DIMENSIONS,
    allowed: `one of ${KNOWN_DIMENSIONS.join(', ')}`,
    description: 'Image height in pixels. SDXL 1.0 makes 1024 only.',
  },
  {
    name: 'refiner',
    wire: 'refiner',
    kind: 'boolean',
    default: true,
    allowed: 'true or false',
    description: 'Run the SDXL refiner for finer detail. Needs a high noise fraction below 1.',
  },
  {
    name: 'base64',
    wire: 'base64',
    kind: 'boolean',
    default: false,
    allowed: 'true or false',
    description: 'Ask the API for base64 JSON instead of raw bytes. Several samples always use base64.',
  },
];

const FIELDS_BY_NAME = new Map(REQUEST_FIELDS.map((field) => [field.name, field]));

/** Looks up a field by its camelCase name. */
export function fieldSpec(name: FieldName): FieldSpec {
  const spec = FIELDS_BY_NAME.get(name);
  if (!spec) throw new Error(`unknown request field ${String(name)}`);
  return spec;
}

function bounded(name: FieldName, base: z.ZodNumber) {
  const spec = fieldSpec(name);
  let schema = base;
  if (spec.min !== undefined) schema = schema.min(spec.min);
  if (spec.max !== undefined) schema = schema.max(spec.max);
  return schema.default(spec.default as number);
}

const nonEmptyText = z.string().trim().min(1);
// NUL and other control characters only come from a file read in the wrong encoding (UTF-16 as
// UTF-8, say): such a prompt would be billed and make nonsense. Tabs and line breaks are fine.
const CONTROL_CHARACTERS = /(?![\t\n\r])\p{Cc}/u;
const withoutControls = (text: string) => !CONTROL_CHARACTERS.test(text);
const dimension = z
  .int()
  .refine((value) => KNOWN_DIMENSIONS.includes(value))
  .default(1024);

/** The request schema: camelCase options with the contract's defaults and bounds. Unknown keys are refused. */
export const generateRequestSchema = z
  .strictObject({
    prompt: nonEmptyText.refine(withoutControls),
    negativePrompt: z.string().refine(withoutControls).default(''),
    style: nonEmptyText.default('base'),
    samples: bounded('samples', z.int()),
    scheduler: nonEmptyText.default('UniPC'),
    steps: bounded('steps', z.int()),
    guidanceScale: bounded('guidanceScale', z.number()),
    strength: bounded('strength', z.number()),
    highNoiseFraction: bounded('highNoiseFraction', z.number()),
    seed: bounded('seed', z.int()),
    width: dimension,
    height: dimension,
    refiner: z.boolean().default(true),
    base64: z.boolean().default(false),
  })
  .refine((request) => !(request.refiner && request.highNoiseFraction >= 1), {
    path: ['highNoiseFraction'],
    message: 'refiner',
  });

/** What a caller may pass: only `prompt` is required. */
export type GenerateInput = z.input<typeof generateRequestSchema>;
/** A validated request with every default filled in. `seed` may still be -1 (random). */
export type GenerateRequest = z.output<typeof generateRequestSchema>;
/** The request as sent: `seed` is the concrete seed used. */
export type ResolvedRequest = GenerateRequest;

/** A value as an error message shows it: JSON, shortened. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function toInvalidFields(input: unknown, issues: readonly z.core.$ZodIssue[]): InvalidField[] {
  const record = typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : {};
  const fields: InvalidField[] = [];
  const seen = new Set<string>();
  for (const issue of issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [String(issue.path[0] ?? 'request')];
    for (const key of keys) {
      if (seen.has(key)) continue;
      seen.add(key);
      const spec = FIELDS_BY_NAME.get(key as FieldName);
      if (issue.code === 'unrecognized_keys' || !spec) {
        const known = REQUEST_FIELDS.map((field) => field.name).join(', ');
        // The value of an unknown key is not echoed: it could be anything, a secret included.
        fields.push({
          field: key,
          value: key === 'request' ? describeValue(input) : 'not shown',
          allowed: key === 'request' ? 'an object with a prompt' : `one of the known options: ${known}`,
          message:
            key === 'request'
              ? `request: ${describeValue(input)} is not allowed; expected an object with a prompt`
              : `${key}: not a known option; known options: ${known}`,
        });
        continue;
      }
      const value = describeValue(record[key]);
      if (issue.message === 'refiner') {
        fields.push({
          field: key,
          wire: spec.wire,
          value,
          allowed: 'below 1 while the refiner is on',
          message: `${key}: ${value} leaves the refiner no steps; set it below 1 or turn the refiner off`,
        });
        continue;
      }
      fields.push({
        field: key,
        wire: spec.wire,
        value,
        allowed: spec.allowed,
        message:
          value === 'missing'
            ? `${key} is required; allowed: ${spec.allowed}`
            : `${key}: ${value} is not allowed; allowed: ${spec.allowed}`,
      });
    }
  }
  return fields;
}

/**
 * Validates options and fills in every default. Throws {@link InvalidRequestError} naming each
 * field, the value given and what is allowed; nothing is sent.
 */
export function parseRequest(input: unknown): GenerateRequest {
  const result = generateRequestSchema.safeParse(input);
  if (result.success) return result.data;
  throw new InvalidRequestError(toInvalidFields(input, result.error.issues));
}

/** The JSON body for the wire: every field explicit, snake_case, so no result rests on a server default. */
export function toWireRequest(request: ResolvedRequest): Record<string, string | number | boolean> {
  const wire: Record<string, string | number | boolean> = {};
  for (const field of REQUEST_FIELDS) wire[field.wire] = request[field.name as keyof ResolvedRequest];
  // One billed call returns several images only as base64 JSON; raw bytes carry one image.
  if (request.samples > 1) wire.base64 = true;
  return wire;
}

/** A fresh random seed in the API's range, drawn per request. */
export function randomSeed(random: () => number): number {
  return Math.floor(random() * (MAX_SEED + 1));
}
