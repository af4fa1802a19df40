import {
  guidanceScaleField,
  imageField,
  negativePromptField,
  promptField,
  schedulerField,
  seedField,
  stepsField,
  strengthField,
} from './common.ts';
import type { ModelDeclaration } from './declaration.ts';

/**
 * Repaints the masked region of an image. Segmind states no mask polarity; white repaints, as in
 * diffusers (`../shared/spec/segmind-family.md` §2). Only image, mask and prompt are documented; the
 * rest appear in the page's sample with no default or bound.
 */
export const sdxlInpaint: ModelDeclaration = {
  slug: 'sdxl-inpaint',
  title: 'SDXL: inpaint a region',
  operation: 'inpaint',
  summary: 'Repaints the region of an image that a mask marks (white repaints, black keeps).',
  fields: [
    imageField({ description: 'The image to edit.' }),
    imageField({
      name: 'mask',
      wire: 'mask',
      label: 'Mask',
      role: 'mask',
      allowed:
        'a JPEG, PNG or WebP image of the same size as the image: bytes, a data: URL, base64, or an http(s) URL',
      description: 'Where to repaint: white is repainted, black is kept. Same size as the image.',
    }),
    promptField({ description: 'What the repainted region should show.' }),
    negativePromptField(),
    {
      name: 'samples',
      wire: 'samples',
      kind: 'integer',
      label: 'Number of Images',
      allowed: 'a whole number',
      description: 'How many images to make in one call. Each image is billed.',
    },
    strengthField({
      description: 'How much the masked region may change: low keeps it close, high repaints it.',
    }),
    schedulerField(),
    stepsField(),
    guidanceScaleField(),
    seedField(),
  ],
  imageTransport: 'url',
  output: { countField: 'samples', base64: true },
  typicalSeconds: 8.55,
  price: {
    credits: 0.0069,
    per: 'image',
    source:
      "Segmind's llms.txt directory (about $0.0069 a call for one image); more samples are counted per image",
  },
  sources: ['https://www.segmind.com/models/sdxl-inpaint/api'],
};
