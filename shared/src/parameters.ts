// How an image was made, as text in AUTOMATIC1111's "parameters" layout: the layout its PNG Info tab,
// Civitai and many image sites read back from a file.
import { imageSize } from 'image-size';
import type { ModelImage, ModelResult } from './client.ts';
import { embedText } from './embed-text.ts';

/** A result's parts that the parameters text is made from. */
export type ParametersSource = Pick<ModelResult, 'model' | 'request'> &
  Partial<Pick<ModelResult, 'seed' | 'requestId'>>;

/** Our own fields, appended after the request's, e.g. `{ 'Source image': 'cat.png' }`. Empty values are left out. */
export type ParametersExtra = Record<string, string | number | undefined>;

/** Request fields under the names AUTOMATIC1111 gives them, in its order. */
const A1111_NAMES: readonly (readonly [string, string])[] = [
  ['steps', 'Steps'],
  ['scheduler', 'Sampler'],
  ['guidanceScale', 'CFG scale'],
];

/** Fields that appear elsewhere in the text (prompt lines, Seed, Size) or say nothing about the image. */
const NOT_LISTED = new Set([
  'prompt',
  'negativePrompt',
  'seed',
  'width',
  'height',
  'samples',
  'base64',
  ...A1111_NAMES.map(([key]) => key),
]);

/** Our names for fields whose camelCase name does not read well as words. */
const LABELS: Record<string, string> = {
  strength: 'Denoising strength',
  highNoiseFraction: 'High noise fraction',
};

/**
 * The parameters text of one image of a result, in AUTOMATIC1111's layout: the prompt, a
 * `Negative prompt:` line when there is one, then `Steps: 25, Sampler: UniPC, CFG scale: 7.5, Seed: …,
 * Size: 1024x1024, Model: sdxl1.0-txt2img`, the request's other fields, `Request id: …` and `extra`.
 * `Size` is read from the image itself, so an upscale says what it made.
 */
export function parametersText(
  result: ParametersSource,
  image: Pick<ModelImage, 'bytes' | 'index' | 'seed'>,
  extra: ParametersExtra = {},
): string {
  const request = result.request;
  const fields: [string, unknown][] = [];
  for (const [key, label] of A1111_NAMES) fields.push([label, request[key]]);
  const seed = image.seed ?? result.seed ?? request.seed;
  fields.push(['Seed', typeof seed === 'number' && seed >= 0 ? seed : undefined]);
  fields.push(['Size', sizeOf(image.bytes)]);
  fields.push(['Model', result.model]);
  for (const [key, value] of Object.entries(request)) {
    if (!NOT_LISTED.has(key)) fields.push([LABELS[key] ?? words(key), value]);
  }
  const samples = request.samples;
  if (typeof samples === 'number' && samples > 1) {
    fields.push(['Batch size', samples], ['Batch pos', image.index]);
  }
  fields.push(['Request id', result.requestId]);
  for (const [label, value] of Object.entries(extra)) fields.push([label, value]);

  const lines: string[] = [];
  if (typeof request.prompt === 'string') lines.push(request.prompt);
  const negative = request.negativePrompt;
  if (typeof negative === 'string' && negative.trim() !== '') lines.push(`Negative prompt: ${negative}`);
  const listed = fields.flatMap(([label, value]) =>
    isShown(value) ? [`${label}: ${quote(show(value))}`] : [],
  );
  lines.push(listed.join(', '));
  return lines.join('\n');
}

/** Whether images get their parameters written into them, and what else to add. */
export interface EmbedOptions {
  /** `false` leaves every image exactly as the API sent it (privacy: prompts can be personal). @default true */
  enabled?: boolean;
  extra?: ParametersExtra;
}

/**
 * A result's images with their parameters text written into each file (see {@link embedText}); the
 * pixels stay the API's bytes. With `enabled: false` the images are returned as they are.
 */
export function withParameters<T extends Pick<ModelImage, 'bytes' | 'mimeType' | 'index' | 'seed'>>(
  result: ParametersSource,
  images: readonly T[],
  options: EmbedOptions = {},
): T[] {
  if (options.enabled === false) return [...images];
  return images.map((image) => ({
    ...image,
    bytes: embedText(image.bytes, image.mimeType, parametersText(result, image, options.extra)),
  }));
}

function sizeOf(bytes: Uint8Array): string | undefined {
  try {
    const { width, height } = imageSize(bytes);
    return width && height ? `${width}x${height}` : undefined;
  } catch {
    return undefined;
  }
}

function isShown(value: unknown): value is string | number | boolean {
  if (typeof value === 'string') return value.trim() !== '';
  if (typeof value === 'number') return Number.isFinite(value);
  return typeof value === 'boolean';
}

function show(value: string | number | boolean): string {
  return typeof value === 'boolean' ? (value ? 'yes' : 'no') : String(value);
}

/** AUTOMATIC1111 quotes a value that holds a comma, colon or line break as JSON, so it parses back. */
function quote(text: string): string {
  return /[,:\n]/.test(text) ? JSON.stringify(text) : text;
}

/** `highNoiseFraction` → `High noise fraction`. */
function words(key: string): string {
  const spaced = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}
