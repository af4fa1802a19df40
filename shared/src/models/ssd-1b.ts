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
import type { ModelDeclaration } from './declaration.ts';

const only1024 = (name: 'width' | 'height', wire: string, label: string) => ({
  name,
  wire,
  kind: 'integer' as const,
  label,
  default: 1024,
  values: [1024],
  allowed: 'one of 1024',
  description: `Image ${name} in pixels. SSD-1B makes 1024 only.`,
});

/** Segmind's distilled SDXL: faster and cheaper text to image (`../shared/spec/segmind-family.md` §4). */
export const ssd1b: ModelDeclaration = {
  slug: 'ssd-1b',
  title: 'SSD-1B: fast text to image',
  operation: 'generate',
  summary: 'Makes 1024x1024 images from a prompt, faster and cheaper than SDXL 1.0.',
  fields: [
    promptField(),
    negativePromptField(),
    samplesField(),
    schedulerField(),
    stepsField({ default: 25, min: 20, max: 100, allowed: 'a whole number from 20 to 100' }),
    guidanceScaleField({ default: 7.5, min: 1, max: 25, allowed: 'a number from 1 to 25' }),
    seedField({
      default: -1,
      min: -1,
      max: MAX_SEED,
      allowed: `a whole number from -1 to ${MAX_SEED} (-1 picks a random seed)`,
    }),
    only1024('width', 'img_width', 'Width'),
    only1024('height', 'img_height', 'Height'),
  ],
  imageTransport: 'base64',
  output: { countField: 'samples', base64: true },
  typicalSeconds: 2.79,
  price: {
    credits: 0.004,
    per: 'image',
    source: "Segmind's model page (about $0.004 a call for one image); more samples are counted per image",
  },
  sources: ['https://www.segmind.com/models/ssd-1b/api'],
};
