import {
  guidanceScaleField,
  imageField,
  negativePromptField,
  promptField,
  samplesField,
  schedulerField,
  seedField,
  stepsField,
  strengthField,
} from './common.ts';
import type { ModelDeclaration } from './declaration.ts';

/**
 * A variation of an image: the image and a prompt in, a new image out. Only `image`, `prompt`,
 * `samples` and `negative_prompt` are documented; the other fields appear in the page's sample with no
 * default or bound, so they are sent only when set (`../shared/spec/segmind-family.md` §1).
 */
export const sdxlImg2Img: ModelDeclaration = {
  slug: 'sdxl-img2img',
  title: 'SDXL: vary an image',
  operation: 'vary',
  summary: 'Makes a variation of an image, guided by a prompt.',
  fields: [
    imageField({ description: 'The image to vary.' }),
    promptField({ description: 'What the variation should show.' }),
    negativePromptField(),
    samplesField(),
    strengthField(),
    schedulerField(),
    {
      name: 'baseModel',
      wire: 'base_model',
      kind: 'text',
      label: 'Base Model',
      allowed: 'non-empty text (the page\'s sample uses "juggernaut"; the list is not published)',
      description: 'The SDXL checkpoint that makes the variation.',
    },
    stepsField(),
    guidanceScaleField(),
    seedField(),
  ],
  imageTransport: 'base64',
  output: { countField: 'samples', base64: true },
  typicalSeconds: 8.39,
  price: {
    credits: 0.0195,
    per: 'image',
    source:
      "Segmind's llms.txt directory (about $0.0195 a call for one image); more samples are counted per image",
  },
  sources: [
    'https://www.segmind.com/models/sdxl-img2img/api',
    'https://segmind.com/models/sdxl-img2img/api (older "Attributes" layout, base64 sample)',
  ],
};
