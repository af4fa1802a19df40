import type { InvalidField } from '../errors.ts';
import {
  MAX_SEED,
  guidanceScaleField,
  negativePromptField,
  promptField,
  samplesField,
  schedulerField,
  seedField,
  stepsField,
} from './common.ts';
import type { ModelDeclaration, ModelField } from './declaration.ts';

/** Styles confirmed for SDXL 1.0. The API publishes no list, so any other non-empty value is passed through. */
export const KNOWN_STYLES: readonly string[] = ['base'];

/** Widths and heights the hosted SDXL 1.0 accepts ("can only be 1024 for SDXL"). */
export const KNOWN_DIMENSIONS: readonly number[] = [1024];

/** Every text-to-image option, camelCase. */
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

/** One text-to-image option: a {@link ModelField} whose name is one of {@link FieldName}. */
export interface FieldSpec extends ModelField {
  readonly name: FieldName;
  readonly kind: 'text' | 'choice' | 'integer' | 'number' | 'boolean';
}

const dimension = (name: 'width' | 'height', wire: string, label: string): FieldSpec => ({
  name,
  wire,
  kind: 'integer',
  label,
  default: 1024,
  values: KNOWN_DIMENSIONS,
  allowed: `one of ${KNOWN_DIMENSIONS.join(', ')}`,
  description: `Image ${name} in pixels. SDXL 1.0 makes 1024 only.`,
});

/**
 * The text-to-image fields, every default documented (`../shared/spec/sdxl-api.md`), so every one is
 * sent explicitly and no result rests on a server default. Hosts build their forms from this table.
 */
export const REQUEST_FIELDS: readonly FieldSpec[] = [
  promptField() as FieldSpec,
  negativePromptField({ default: '' }) as FieldSpec,
  {
    name: 'style',
    wire: 'style',
    kind: 'choice',
    label: 'Style',
    default: 'base',
    values: KNOWN_STYLES,
    open: true,
    allowed: `non-empty text (known: ${KNOWN_STYLES.join(', ')})`,
    description: 'A preset look applied to the prompt. "base" applies none.',
  },
  samplesField() as FieldSpec,
  schedulerField({
    default: 'UniPC',
    description: 'The sampling method. UniPC is the default and works well with few steps.',
  }) as FieldSpec,
  stepsField({ default: 25, min: 20, max: 100, allowed: 'a whole number from 20 to 100' }) as FieldSpec,
  guidanceScaleField({ default: 7.5, min: 1, max: 25, allowed: 'a number from 1 to 25' }) as FieldSpec,
  {
    name: 'strength',
    wire: 'strength',
    kind: 'number',
    label: 'Refiner Strength',
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
    label: 'High Noise Fraction',
    default: 0.8,
    min: 0,
    max: 1,
    allowed: 'a number from 0 to 1 (below 1 when the refiner is on)',
    description: 'Share of the steps done by the base model before the refiner takes over.',
  },
  seedField({
    default: -1,
    min: -1,
    max: MAX_SEED,
    allowed: `a whole number from -1 to ${MAX_SEED} (-1 picks a random seed)`,
    description: 'Starting point of the noise. The same seed and settings give the same image; -1 picks one.',
  }) as FieldSpec,
  dimension('width', 'img_width', 'Width'),
  dimension('height', 'img_height', 'Height'),
  {
    name: 'refiner',
    wire: 'refiner',
    kind: 'boolean',
    label: 'Refiner',
    default: true,
    allowed: 'true or false',
    description: 'Run the SDXL refiner for finer detail. Needs a high noise fraction below 1.',
  },
  {
    name: 'base64',
    wire: 'base64',
    kind: 'boolean',
    label: 'Base64',
    default: false,
    allowed: 'true or false',
    description: 'Ask the API for base64 JSON instead of raw bytes. Several samples always use base64.',
  },
];

/** The refiner needs steps of its own: a high noise fraction of 1 leaves it none, and the API refuses it. */
function refinerNeedsSteps(request: Readonly<Record<string, unknown>>): InvalidField[] {
  const fraction = request.highNoiseFraction;
  if (request.refiner === false || typeof fraction !== 'number' || fraction < 1) return [];
  return [
    {
      field: 'highNoiseFraction',
      wire: 'high_noise_fraction',
      value: String(fraction),
      allowed: 'below 1 while the refiner is on',
      message: `highNoiseFraction: ${fraction} leaves the refiner no steps; set it below 1 or turn the refiner off`,
    },
  ];
}

export const sdxlTxt2Img: ModelDeclaration = {
  slug: 'sdxl1.0-txt2img',
  title: 'SDXL 1.0: text to image',
  operation: 'generate',
  summary: 'Makes 1024x1024 images from a prompt.',
  fields: REQUEST_FIELDS,
  imageTransport: 'base64',
  output: { countField: 'samples', base64: true },
  typicalSeconds: 6.26,
  price: {
    credits: 0.00798,
    per: 'image',
    source:
      "the model page: about $0.008 a call for one 1024x1024 image ($0.007976 in Segmind's llms.txt directory, 2026-08); more samples are counted per image",
  },
  sources: ['https://www.segmind.com/models/sdxl1.0-txt2img/api', 'Segmind llms.txt directory, 2026-08'],
  check: refinerNeedsSteps,
};
