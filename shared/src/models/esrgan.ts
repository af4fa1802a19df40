import { imageField } from './common.ts';
import type { ModelDeclaration } from './declaration.ts';

/** The upscaler: the page lists exactly these four fields (`../shared/spec/segmind-family.md` §3). */
export const esrgan: ModelDeclaration = {
  slug: 'esrgan',
  title: 'ESRGAN: upscale an image',
  operation: 'upscale',
  summary: 'Enlarges an image 2, 4 or 8 times.',
  fields: [
    imageField({ description: 'The image to enlarge.' }),
    {
      name: 'scale',
      wire: 'scale',
      kind: 'choice',
      label: 'Scale',
      default: 2,
      values: [2, 4, 8],
      allowed: '2, 4 or 8',
      description: 'How many times wider and taller the result is.',
    },
    {
      name: 'outputFormat',
      wire: 'output_format',
      kind: 'choice',
      label: 'Output Format',
      default: 'jpeg',
      values: ['jpeg', 'png', 'webp'],
      allowed: 'jpeg, png or webp',
      description: 'The file format of the result.',
    },
    {
      name: 'quality',
      wire: 'quality',
      kind: 'integer',
      label: 'Quality',
      default: 95,
      min: 10,
      max: 100,
      allowed: 'a whole number from 10 to 100',
      description: 'Compression quality of the result: higher is sharper and larger.',
    },
  ],
  imageTransport: 'url',
  output: { formatField: 'outputFormat' },
  typicalSeconds: 4.93,
  price: {
    credits: 0.0047,
    per: 'call',
    source: "Segmind's llms.txt directory (about $0.0047 a call)",
  },
  sources: ['https://www.segmind.com/models/esrgan/api'],
};
