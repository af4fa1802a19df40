// Fields that several models share, so each declaration says only what is its own. A model whose
// contract differs (a default not documented, other bounds) overrides the parts that differ.
import type { ModelField } from './declaration.ts';

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

/** The seed range documented for SDXL 1.0 and SSD-1B. */
export const MAX_SEED = 999_999_999_999_999;

type Overrides = Partial<Omit<ModelField, 'kind'>>;

export function promptField(overrides: Overrides = {}): ModelField {
  return {
    name: 'prompt',
    wire: 'prompt',
    kind: 'text',
    label: 'Prompt',
    required: true,
    allowed: 'non-empty text without control characters',
    description: 'What the image should show.',
    ...overrides,
  };
}

export function negativePromptField(overrides: Overrides = {}): ModelField {
  return {
    name: 'negativePrompt',
    wire: 'negative_prompt',
    kind: 'text',
    label: 'Negative Prompt',
    allowed: 'text without control characters',
    description: 'What the image should not show, e.g. "blurry, extra fingers, watermark".',
    ...overrides,
  };
}

export function samplesField(overrides: Overrides = {}): ModelField {
  return {
    name: 'samples',
    wire: 'samples',
    kind: 'integer',
    label: 'Number of Images',
    default: 1,
    min: 1,
    max: 4,
    allowed: 'a whole number from 1 to 4',
    description: 'How many images to make in one call. Each image is billed.',
    ...overrides,
  };
}

export function schedulerField(overrides: Overrides = {}): ModelField {
  return {
    name: 'scheduler',
    wire: 'scheduler',
    kind: 'choice',
    label: 'Scheduler',
    values: KNOWN_SCHEDULERS,
    open: true,
    allowed: `non-empty text (known: ${KNOWN_SCHEDULERS.join(', ')})`,
    description: 'The sampling method.',
    ...overrides,
  };
}

export function stepsField(overrides: Overrides = {}): ModelField {
  return {
    name: 'steps',
    wire: 'num_inference_steps',
    kind: 'integer',
    label: 'Steps',
    allowed: 'a whole number',
    description: 'How many refinement passes. More can add detail but takes longer and may cost more.',
    ...overrides,
  };
}

export function guidanceScaleField(overrides: Overrides = {}): ModelField {
  return {
    name: 'guidanceScale',
    wire: 'guidance_scale',
    kind: 'number',
    label: 'Guidance Scale',
    allowed: 'a number',
    description: 'How closely the image follows the prompt. Higher is more literal, lower is more creative.',
    ...overrides,
  };
}

export function seedField(overrides: Overrides = {}): ModelField {
  return {
    name: 'seed',
    wire: 'seed',
    kind: 'integer',
    label: 'Seed',
    allowed: 'a whole number',
    description: 'Starting point of the noise. The same seed and settings give the same image.',
    ...overrides,
  };
}

export function imageField(overrides: Overrides = {}): ModelField {
  return {
    name: 'image',
    wire: 'image',
    kind: 'image',
    label: 'Image',
    required: true,
    role: 'source',
    allowed: 'a JPEG, PNG or WebP image: bytes, a data: URL, base64, or an http(s) URL',
    description: 'The image to start from.',
    ...overrides,
  };
}

/** Strength of an img2img-style pass: how far the result may move from the input image. */
export function strengthField(overrides: Overrides = {}): ModelField {
  return {
    name: 'strength',
    wire: 'strength',
    kind: 'number',
    label: 'Strength',
    // The bound is the diffusers pipeline's (the model page names StableDiffusionImg2ImgPipeline,
    // which refuses strength outside [0, 1]); Segmind documents no default.
    min: 0,
    max: 1,
    allowed: 'a number from 0 to 1',
    description: 'How far the result may move from the input image: low keeps it close, high changes more.',
    ...overrides,
  };
}
