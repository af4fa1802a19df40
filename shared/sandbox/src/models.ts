import {
  MODELS,
  esrgan,
  sdxlControlnet,
  sdxlImg2Img,
  sdxlInpaint,
  sdxlTxt2Img,
  ssd1b,
  type ModelDeclaration,
  type ModelField,
} from '@sdxl-kit/client/core';
import { renderShared } from './image.ts';
import { resolveImage, type ImageSource, type InputImage } from './image-input.ts';
import type { ResolvedOptions } from './options.ts';
import {
  CONTENT_TYPES,
  renderControlled,
  renderInpaint,
  renderUpscale,
  renderVariation,
  type OutputFormat,
} from './transforms.ts';
import { MAX_SEED, validateTxt2ImgBody } from './wire-request.ts';

/** Bodies of models without image fields stay under 1 MiB, as txt2img's always have. */
export const SMALL_BODY_BYTES = 1024 * 1024;
/** Bodies that carry images in base64 are large; this leaves room for a few big PNGs. */
export const LARGE_BODY_BYTES = 64 * 1024 * 1024;

/** What a generation makes: its images and their type. */
export interface Rendered {
  images: Buffer[];
  contentType: string;
}

/** A body that passed validation, with its images read: everything the pipeline needs to run it. */
export interface PreparedJob {
  /** The prompt, for models that take one. */
  prompt: string | undefined;
  /** Images billed. */
  samples: number;
  /** The seed asked for: -1 draws one; undefined for a model that takes no seed. */
  seed: number | undefined;
  /** Whether the v1 answer is base64 JSON. */
  base64: boolean;
  /** Renders `count` images (sample 0 first) with the seed actually used. */
  render(seed: number, count: number): Promise<Rendered>;
}

export type Preparation = { ok: true; job: PreparedJob } | { ok: false; message: string };

/** What preparing a body needs besides the body. */
export interface PrepareContext {
  images: ImageSource;
  settings: ResolvedOptions;
}

/**
 * A model as the sandbox serves it: the shared pipeline (key, content type, rate, script, credits,
 * billing, latency, answer) asks it only to check and read a body, and the prepared job to render.
 */
export interface GenerationModel {
  readonly slug: string;
  readonly declaration: ModelDeclaration;
  readonly bodyLimit: number;
  /** Credits one image costs under `settings`. */
  costPerImage(settings: ResolvedOptions): number;
  prepare(body: unknown, context: PrepareContext): Promise<Preparation>;
}

type Wire = Record<string, unknown>;

/**
 * Checks a body against a declaration's wire names, its documented required fields and bounds only;
 * unknown fields are ignored, as the hosted API does. Fills in documented defaults. Every problem is a
 * `field: what's wrong` clause.
 */
export function validateWire(
  declaration: ModelDeclaration,
  body: unknown,
): { ok: true; values: Wire } | { ok: false; message: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, message: 'body: must be a JSON object' };
  }
  const fields = body as Wire;
  const problems: string[] = [];
  const values: Wire = {};
  for (const field of declaration.fields) {
    const value = fields[field.wire];
    if (value === undefined || value === null) {
      if (field.required) problems.push(`${field.wire}: is required`);
      else if (field.default !== undefined) values[field.wire] = field.default;
      continue;
    }
    const checked = checkField(field, value);
    if (typeof checked === 'string') problems.push(`${field.wire}: ${checked}, got ${describe(value)}`);
    else values[field.wire] = checked.value;
  }
  // `base64` is documented for every model that makes `samples` images, declared or not.
  if (declaration.output.countField !== undefined && fields['base64'] !== undefined) {
    if (typeof fields['base64'] !== 'boolean') {
      problems.push(`base64: must be true or false, got ${describe(fields['base64'])}`);
    } else values['base64'] = fields['base64'];
  }
  if (problems.length > 0) return { ok: false, message: problems.join('; ') };
  return { ok: true, values };
}

function checkField(field: ModelField, value: unknown): { value: unknown } | string {
  switch (field.kind) {
    case 'text':
    case 'image':
      if (typeof value !== 'string' || (field.required && value.length === 0)) {
        return field.kind === 'image'
          ? 'must be an image as raw base64, a data: URL or an http(s) URL'
          : `must be a ${field.required ? 'non-empty ' : ''}string`;
      }
      return { value };
    case 'boolean':
      return typeof value === 'boolean' ? { value } : 'must be true or false';
    case 'choice': {
      const values = field.values ?? [];
      if (values.length > 0 && typeof values[0] === 'number') {
        // A numeric choice also comes as a string: the esrgan page's own sample sends "scale": "2".
        const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
        if (typeof number === 'number' && values.includes(number)) return { value: number };
        return `must be one of ${values.join(', ')}`;
      }
      if (typeof value !== 'string' || value.length === 0) return 'must be a non-empty string';
      if (!field.open && values.length > 0 && !values.includes(value))
        return `must be one of ${values.join(', ')}`;
      return { value };
    }
    case 'integer':
    case 'number': {
      const whole = field.kind === 'integer';
      const fits =
        typeof value === 'number' &&
        Number.isFinite(value) &&
        (!whole || Number.isInteger(value)) &&
        (field.min === undefined || value >= field.min) &&
        (field.max === undefined || value <= field.max) &&
        (field.values === undefined || field.values.includes(value));
      if (fits) return { value };
      if (field.values !== undefined) return `must be one of ${field.values.join(', ')}`;
      const what = whole ? 'a whole number' : 'a number';
      if (field.min !== undefined && field.max !== undefined)
        return `must be ${what} from ${field.min} to ${field.max}`;
      if (field.min !== undefined) return `must be ${what} >= ${field.min}`;
      if (field.max !== undefined) return `must be ${what} <= ${field.max}`;
      return `must be ${what}`;
    }
  }
}

/** A short rendering of a wrong value: enough to spot the mistake, never a whole pasted image. */
function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** Reads every image field of a validated body; the first failure is the answer. */
async function readImages(
  declaration: ModelDeclaration,
  values: Wire,
  source: ImageSource,
): Promise<{ ok: true; images: Record<string, InputImage> } | { ok: false; message: string }> {
  const images: Record<string, InputImage> = {};
  const fields = declaration.fields.filter(
    (field) => field.kind === 'image' && typeof values[field.wire] === 'string',
  );
  const resolved = await Promise.all(
    fields.map((field) => resolveImage(field.wire, values[field.wire] as string, source)),
  );
  for (const [index, result] of resolved.entries()) {
    if (!result.ok) return { ok: false, message: result.message };
    images[fields[index]!.wire] = result.image;
  }
  return { ok: true, images };
}

function tooLarge(
  field: string,
  width: number,
  height: number,
  settings: ResolvedOptions,
): string | undefined {
  if (width * height <= settings.maxOutputPixels) return undefined;
  return `${field}: the result would be ${width}x${height} pixels, more than this server makes (${settings.maxOutputPixels})`;
}

type Recipe = (
  values: Wire,
  images: Record<string, InputImage>,
  settings: ResolvedOptions,
) => { ok: true; render: PreparedJob['render'] } | { ok: false; message: string };

const jpegs = async (make: (index: number) => Promise<Buffer>, count: number): Promise<Rendered> => ({
  images: await Promise.all(Array.from({ length: count }, (_, index) => make(index))),
  contentType: 'image/jpeg',
});

const text = (values: Wire, wire: string): string =>
  typeof values[wire] === 'string' ? (values[wire] as string) : '';
const num = (values: Wire, wire: string, fallback: number): number =>
  typeof values[wire] === 'number' ? (values[wire] as number) : fallback;

// How each model draws. Fields whose default is not documented get the page sample's value here.
const RECIPES: Record<string, Recipe> = {
  [ssd1b.slug]: (values) => ({
    ok: true,
    render: (seed, count) =>
      jpegs(
        (index) =>
          renderShared({
            prompt: text(values, 'prompt'),
            seed,
            index,
            width: num(values, 'img_width', 1024),
            height: num(values, 'img_height', 1024),
            look: {
              negativePrompt: text(values, 'negative_prompt'),
              ...(typeof values.scheduler === 'string' && { scheduler: values.scheduler }),
              ...(typeof values.num_inference_steps === 'number' && { steps: values.num_inference_steps }),
              ...(typeof values.guidance_scale === 'number' && { guidanceScale: values.guidance_scale }),
            },
          }),
        count,
      ),
  }),
  [sdxlImg2Img.slug]: (values, images, settings) => {
    const input = images['image']!;
    const problem = tooLarge('image', input.width, input.height, settings);
    if (problem) return { ok: false, message: problem };
    const strength = num(values, 'strength', 0.65);
    return {
      ok: true,
      render: (seed, count) =>
        jpegs(
          (index) => renderVariation(input, { prompt: text(values, 'prompt'), seed, index }, strength),
          count,
        ),
    };
  },
  [sdxlInpaint.slug]: (values, images, settings) => {
    const input = images['image']!;
    const mask = images['mask']!;
    const problem = tooLarge('image', input.width, input.height, settings);
    if (problem) return { ok: false, message: problem };
    const strength = num(values, 'strength', 1);
    const polarity = settings.maskPolarity;
    return {
      ok: true,
      render: (seed, count) =>
        jpegs(
          (index) =>
            renderInpaint(input, mask, { prompt: text(values, 'prompt'), seed, index }, strength, polarity),
          count,
        ),
    };
  },
  [esrgan.slug]: (values, images, settings) => {
    const input = images['image']!;
    const scale = num(values, 'scale', 2);
    const problem = tooLarge('scale', input.width * scale, input.height * scale, settings);
    if (problem) return { ok: false, message: problem };
    const format = (text(values, 'output_format') || 'jpeg') as OutputFormat;
    const quality = num(values, 'quality', 95);
    return {
      ok: true,
      render: async () => ({
        images: [await renderUpscale(input, scale, format, quality)],
        contentType: CONTENT_TYPES[format],
      }),
    };
  },
  [sdxlControlnet.slug]: (values, images, settings) => {
    const control = images['image']!;
    const problem = tooLarge('image', control.width, control.height, settings);
    if (problem) return { ok: false, message: problem };
    const controlScale = num(values, 'controlnet_scale', 0.9);
    return {
      ok: true,
      render: (seed, count) =>
        jpegs(
          (index) => renderControlled(control, { prompt: text(values, 'prompt'), seed, index }, controlScale),
          count,
        ),
    };
  },
};

/** sdxl1.0-txt2img keeps its own, independent validator (wire-request.ts) and the original renderer. */
const txt2img: GenerationModel = {
  slug: sdxlTxt2Img.slug,
  declaration: sdxlTxt2Img,
  bodyLimit: SMALL_BODY_BYTES,
  costPerImage: (settings) => settings.costs[sdxlTxt2Img.slug] ?? settings.costPerImage,
  prepare(body) {
    const validation = validateTxt2ImgBody(body);
    if (!validation.ok) return Promise.resolve(validation);
    const wire = validation.request;
    return Promise.resolve({
      ok: true,
      job: {
        prompt: wire.prompt,
        samples: wire.samples,
        seed: wire.seed,
        base64: wire.base64,
        render: (seed, count) =>
          jpegs(
            (index) =>
              renderShared({
                prompt: wire.prompt,
                seed,
                index,
                width: wire.img_width,
                height: wire.img_height,
                look: {
                  steps: wire.num_inference_steps,
                  guidanceScale: wire.guidance_scale,
                  scheduler: wire.scheduler,
                  style: wire.style,
                  negativePrompt: wire.negative_prompt ?? '',
                  strength: wire.strength,
                  highNoiseFraction: wire.high_noise_fraction,
                  refiner: wire.refiner,
                },
              }),
            count,
          ),
      },
    });
  },
};

function declaredModel(declaration: ModelDeclaration): GenerationModel {
  const recipe = RECIPES[declaration.slug];
  if (!recipe) throw new Error(`the sandbox has no renderer for ${declaration.slug}`);
  const hasImages = declaration.fields.some((field) => field.kind === 'image');
  const hasSeed = declaration.fields.some((field) => field.wire === 'seed');
  const countWire = declaration.fields.find((field) => field.name === declaration.output.countField)?.wire;
  return {
    slug: declaration.slug,
    declaration,
    bodyLimit: hasImages ? LARGE_BODY_BYTES : SMALL_BODY_BYTES,
    costPerImage: (settings) => settings.costs[declaration.slug] ?? declaration.price?.credits ?? 0,
    async prepare(body, context) {
      const validation = validateWire(declaration, body);
      if (!validation.ok) return validation;
      const { values } = validation;
      // A count must be at least 1 even where the page documents no bound (sdxl-inpaint).
      const samples = countWire === undefined ? 1 : num(values, countWire, 1);
      if (countWire !== undefined && samples < 1) {
        return { ok: false, message: `${countWire}: must be a whole number >= 1, got ${samples}` };
      }
      const read = await readImages(declaration, values, context.images);
      if (!read.ok) return read;
      const recipe_ = recipe(values, read.images, context.settings);
      if (!recipe_.ok) return recipe_;
      const seed = hasSeed ? num(values, 'seed', -1) : undefined;
      return {
        ok: true,
        job: {
          prompt: typeof values['prompt'] === 'string' ? values['prompt'] : undefined,
          samples,
          seed,
          base64: values['base64'] === true,
          render: recipe_.render,
        },
      };
    },
  };
}

/** Every declared model, by slug, as the sandbox serves it. */
export const GENERATION_MODELS: ReadonlyMap<string, GenerationModel> = new Map(
  MODELS.map((declaration) => [
    declaration.slug,
    declaration.slug === sdxlTxt2Img.slug ? txt2img : declaredModel(declaration),
  ]),
);

/** A random seed in the documented range. */
export function drawSeed(random: () => number): number {
  return Math.floor(random() * (MAX_SEED + 1));
}
