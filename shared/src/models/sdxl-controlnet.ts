import {
  guidanceScaleField,
  imageField,
  negativePromptField,
  promptField,
  samplesField,
  schedulerField,
  seedField,
  stepsField,
} from './common.ts';
import type { ModelDeclaration } from './declaration.ts';

/** SDXL guided by the edges, depth, scribble or pose of a control image (`../shared/spec/segmind-family.md` §4). */
export const sdxlControlnet: ModelDeclaration = {
  slug: 'sdxl-controlnet',
  title: 'SDXL ControlNet: follow a control image',
  operation: 'control',
  summary: "Makes an image that follows the shapes of a control image (its edges, depth or a person's pose).",
  fields: [
    imageField({ role: 'control', label: 'Control Image', description: 'The image whose shapes to follow.' }),
    promptField(),
    negativePromptField(),
    samplesField(),
    {
      name: 'cnModel',
      wire: 'cn_model',
      kind: 'choice',
      label: 'Control Type',
      default: 'sdxl_canny',
      values: ['sdxl_canny', 'sdxl_depth', 'sdxl_scribble', 'sdxl_softedge', 'sdxl_openpose'],
      allowed: 'sdxl_canny, sdxl_depth, sdxl_scribble, sdxl_softedge or sdxl_openpose',
      description: 'What to take from the control image: edges, depth, a scribble, soft edges or a pose.',
    },
    {
      name: 'controlnetScale',
      wire: 'controlnet_scale',
      kind: 'number',
      label: 'Control Strength',
      default: 0.9,
      min: 0,
      max: 1,
      allowed: 'a number from 0 to 1',
      description: 'How strictly the image follows the control image.',
    },
    schedulerField(),
    stepsField({ default: 30 }),
    guidanceScaleField({ default: 6, min: 1, max: 25, allowed: 'a number from 1 to 25' }),
    seedField(),
  ],
  imageTransport: 'base64',
  output: { countField: 'samples', base64: true },
  typicalSeconds: 10.47,
  price: {
    credits: 0.012,
    per: 'image',
    source: "Segmind's model page (about $0.012 a call for one image); more samples are counted per image",
  },
  sources: ['https://segmind.com/models/sdxl-controlnet/api'],
};
