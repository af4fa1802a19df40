// One validation for every declared model: a zod schema built from the declaration's fields, the
// same error shape for every refusal (field, value, what is allowed), and the wire body.
import { z } from 'zod/v4';
import { InvalidRequestError, type InvalidField } from './errors.ts';
import { describeImage, isImageProblem, readImageInput, type PreparedImage } from './image-input.ts';
import type { ModelDeclaration, ModelField } from './models/declaration.ts';

/** A JSON value sent as it is under a wire name the declaration lacks. */
export type ExtraValue = string | number | boolean | null;

/** A validated request of any model: camelCase values with documented defaults, images read. */
export interface ModelRequest {
  readonly model: ModelDeclaration;
  /** camelCase values; a field left unset with no documented default is absent. Images are {@link PreparedImage}s. */
  readonly values: Readonly<Record<string, unknown>>;
  /** Fields the declaration lacks, sent by wire name as given (`extra`). */
  readonly extra: Readonly<Record<string, ExtraValue>>;
}

/** The input key for fields the declaration lacks: `{ extra: { new_field: 1 } }`. */
export const EXTRA_KEY = 'extra';

const nonEmptyText = z.string().trim().min(1);
// NUL and other control characters only come from a file read in the wrong encoding (UTF-16 as
// UTF-8, say): such a prompt would be billed and make nonsense. Tabs and line breaks are fine.
const CONTROL_CHARACTERS = /(?![\t\n\r])\p{Cc}/u;
const withoutControls = (text: string) => !CONTROL_CHARACTERS.test(text);
const IMAGE_PROBLEM = 'image';

function fieldSchema(field: ModelField): z.ZodType {
  let schema: z.ZodType;
  switch (field.kind) {
    case 'text':
      schema = (field.required ? nonEmptyText : z.string()).refine(withoutControls);
      break;
    case 'choice':
      if (field.open) {
        schema = nonEmptyText;
        break;
      }
      // A closed choice of numbers takes them as text too ("2"): Segmind's own samples send scale so.
      schema = z.preprocess(
        (value) =>
          typeof value === 'string' && field.values?.some((allowed) => typeof allowed === 'number')
            ? value.trim() === ''
              ? value
              : Number(value)
            : value,
        z.union([z.string(), z.number()]).refine((value) => field.values?.includes(value) ?? false),
      );
      break;
    case 'integer':
    case 'number': {
      let number = field.kind === 'integer' ? z.int() : z.number();
      if (field.min !== undefined) number = number.min(field.min);
      if (field.max !== undefined) number = number.max(field.max);
      schema = field.values ? number.refine((value) => field.values!.includes(value)) : number;
      break;
    }
    case 'boolean':
      schema = z.boolean();
      break;
    case 'image':
      schema = z.unknown().transform((value, context) => {
        const read = readImageInput(value);
        if (!isImageProblem(read)) return read;
        context.addIssue({ code: 'custom', message: IMAGE_PROBLEM, params: { problem: read.problem } });
        return z.NEVER;
      });
      break;
  }
  if (field.default !== undefined) return schema.default(field.default as never);
  return field.required ? schema : schema.optional();
}

const schemas = new WeakMap<ModelDeclaration, z.ZodType>();

function schemaOf(model: ModelDeclaration): z.ZodType {
  let schema = schemas.get(model);
  if (!schema) {
    const shape: Record<string, z.ZodType> = {};
    for (const field of model.fields) shape[field.name] = fieldSchema(field);
    schema = z.strictObject(shape);
    schemas.set(model, schema);
  }
  return schema;
}

/** A value as an error message shows it: JSON, shortened. Images are described, never dumped. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function describeImageInput(value: unknown): string {
  if (typeof value === 'string' && value.startsWith('data:'))
    return `a data: URL of ${value.length} characters`;
  if (typeof value === 'string' && value.length > 60 && !/^https?:/i.test(value)) {
    return `${value.length} characters of text`;
  }
  return describeValue(value);
}

function toInvalidFields(
  model: ModelDeclaration,
  input: unknown,
  issues: readonly z.core.$ZodIssue[],
): InvalidField[] {
  const record = typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : {};
  const byName = new Map(model.fields.map((field) => [field.name, field]));
  const fields: InvalidField[] = [];
  const seen = new Set<string>();
  for (const issue of issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [String(issue.path[0] ?? 'request')];
    for (const key of keys) {
      if (seen.has(key)) continue;
      seen.add(key);
      const spec = byName.get(key);
      if (issue.code === 'unrecognized_keys' || !spec) {
        const known = model.fields.map((field) => field.name).join(', ');
        const wanted = model.fields.some((field) => field.name === 'prompt') ? 'a prompt' : 'an image';
        // The value of an unknown key is not echoed: it could be anything, a secret included.
        fields.push({
          field: key,
          value: key === 'request' ? describeValue(input) : 'not shown',
          allowed: key === 'request' ? `an object with ${wanted}` : `one of the known options: ${known}`,
          message:
            key === 'request'
              ? `request: ${describeValue(input)} is not allowed; expected an object with ${wanted}`
              : `${key}: not a known option; known options: ${known} (send others by their API name under "${EXTRA_KEY}")`,
        });
        continue;
      }
      const given = record[key];
      const value = spec.kind === 'image' ? describeImageInput(given) : describeValue(given);
      const problem = (issue as { params?: { problem?: string } }).params?.problem;
      fields.push({
        field: key,
        wire: spec.wire,
        value,
        allowed: spec.allowed,
        message:
          value === 'missing'
            ? `${key} is required; allowed: ${spec.allowed}`
            : problem
              ? `${key}: ${value} ${problem}; allowed: ${spec.allowed}`
              : `${key}: ${value} is not allowed; allowed: ${spec.allowed}`,
      });
    }
  }
  return fields;
}

function readExtra(
  model: ModelDeclaration,
  extra: unknown,
): { extra: Record<string, ExtraValue>; problems: InvalidField[] } {
  const problems: InvalidField[] = [];
  const result: Record<string, ExtraValue> = {};
  if (extra === undefined) return { extra: result, problems };
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) {
    problems.push({
      field: EXTRA_KEY,
      value: describeValue(extra),
      allowed: 'an object of API field names and values',
      message: `${EXTRA_KEY}: ${describeValue(extra)} is not allowed; allowed: an object of API field names and values`,
    });
    return { extra: result, problems };
  }
  const declared = new Map(model.fields.map((field) => [field.wire, field]));
  for (const [wire, value] of Object.entries(extra)) {
    const field = declared.get(wire);
    const primitive =
      value === null ||
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value));
    if (field || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(wire) || !primitive) {
      const allowed = field
        ? `not a declared field: set the option ${field.name} instead`
        : 'an API field name (letters, digits, _) with text, a number, true, false or null';
      problems.push({
        field: `${EXTRA_KEY}.${wire}`,
        value: field ? describeValue(value) : 'not shown',
        allowed,
        message: `${EXTRA_KEY}.${wire}: not allowed; allowed: ${allowed}`,
      });
      continue;
    }
    result[wire] = value as ExtraValue;
  }
  return { extra: result, problems };
}

/** Mask and image must be the same size where both are bytes (a URL cannot be measured without fetching it). */
function checkMaskSize(model: ModelDeclaration, values: Record<string, unknown>): InvalidField[] {
  const source = model.fields.find((field) => field.kind === 'image' && field.role === 'source');
  const mask = model.fields.find((field) => field.kind === 'image' && field.role === 'mask');
  if (!source || !mask) return [];
  const image = values[source.name] as PreparedImage | undefined;
  const maskImage = values[mask.name] as PreparedImage | undefined;
  if (image?.kind !== 'bytes' || maskImage?.kind !== 'bytes') return [];
  if (image.width === maskImage.width && image.height === maskImage.height) return [];
  const allowed = `a mask of the image's size, ${image.width}x${image.height}`;
  return [
    {
      field: mask.name,
      wire: mask.wire,
      value: describeImage(maskImage),
      allowed,
      message: `${mask.name}: ${describeImage(maskImage)} is not allowed; allowed: ${allowed}`,
    },
  ];
}

/**
 * Validates a request for `model`, fills documented defaults and reads every image. Throws
 * {@link InvalidRequestError} naming each field, the value given and what is allowed; nothing is sent.
 */
export function parseModelRequest(model: ModelDeclaration, input: unknown): ModelRequest {
  const record =
    typeof input === 'object' && input !== null && !Array.isArray(input)
      ? (input as Record<string, unknown>)
      : undefined;
  const { [EXTRA_KEY]: extraInput, ...rest } = record ?? {};
  const { extra, problems } = readExtra(model, extraInput);
  const result = schemaOf(model).safeParse(record ? rest : input);
  if (!result.success) {
    const fields = toInvalidFields(model, record ? rest : input, result.error.issues);
    // Rules across fields are judged on what was given (defaults filled), so one error names every
    // problem, not only the first kind.
    const given: Record<string, unknown> = {};
    for (const field of model.fields) given[field.name] = rest[field.name] ?? field.default;
    const named = new Set(fields.map((field) => field.field));
    const crossField = record ? (model.check?.(given) ?? []).filter((field) => !named.has(field.field)) : [];
    throw new InvalidRequestError([...fields, ...crossField, ...problems]);
  }
  const values = result.data as Record<string, unknown>;
  const crossField = [...(model.check?.(values) ?? []), ...checkMaskSize(model, values), ...problems];
  if (crossField.length > 0) throw new InvalidRequestError(crossField);
  return { model, values, extra };
}

/**
 * The JSON body for the wire: every set value under its wire name, images as `encoded` gives them
 * (raw base64 or an uploaded URL), then the extra fields.
 */
export function toModelWire(
  request: ModelRequest,
  encoded: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  for (const field of request.model.fields) {
    const value = request.values[field.name];
    if (value === undefined) continue;
    wire[field.wire] = field.kind === 'image' ? encoded[field.name] : value;
  }
  return { ...wire, ...request.extra };
}
