import sharp from 'sharp';
import { renderShared } from './image.ts';
import type { InputImage } from './image-input.ts';

// Pictures made from an input image: cheap stand-ins whose pixels show what the real model would have
// done (a variation keeps the input's layout, an inpaint changes only the masked region, an upscale is
// the input enlarged), so a test can check a client's plumbing by looking at the result.

const JPEG_QUALITY = 85;

interface Pattern {
  prompt: string;
  seed: number;
  index: number;
}

/** Raw RGB of an image at a given size. */
async function rgb(bytes: Buffer, width: number, height: number): Promise<Buffer> {
  return sharp(bytes).resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer();
}

function jpeg(pixels: Buffer, width: number, height: number): Promise<Buffer> {
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: JPEG_QUALITY, optimiseCoding: false })
    .toBuffer();
}

async function patternPixels(pattern: Pattern, width: number, height: number): Promise<Buffer> {
  const rendered = await renderShared({ ...pattern, width, height });
  return sharp(rendered).removeAlpha().raw().toBuffer();
}

/**
 * sdxl-img2img: the input blended with the seed's pattern by `strength` (0 keeps the input, 1 is the
 * pattern alone), at the input's size.
 */
export async function renderVariation(
  input: InputImage,
  pattern: Pattern,
  strength: number,
): Promise<Buffer> {
  const { width, height } = input;
  const [source, drawn] = await Promise.all([
    rgb(input.bytes, width, height),
    patternPixels(pattern, width, height),
  ]);
  const out = Buffer.alloc(source.length);
  for (let i = 0; i < source.length; i++)
    out[i] = Math.round(source[i]! + (drawn[i]! - source[i]!) * strength);
  return jpeg(out, width, height);
}

/**
 * sdxl-inpaint: the masked region repainted with the seed's pattern (weighted by `strength` and by how
 * white, or black, the mask is there); elsewhere the input is kept. The mask is stretched to the input's
 * size when it differs.
 */
export async function renderInpaint(
  input: InputImage,
  mask: InputImage,
  pattern: Pattern,
  strength: number,
  polarity: 'white-repaints' | 'black-repaints',
): Promise<Buffer> {
  const { width, height } = input;
  const [source, drawn, maskGrey] = await Promise.all([
    rgb(input.bytes, width, height),
    patternPixels(pattern, width, height),
    sharp(mask.bytes)
      .resize(width, height, { fit: 'fill' })
      .flatten({ background: '#000' })
      .greyscale()
      .raw()
      .toBuffer(),
  ]);
  const out = Buffer.alloc(source.length);
  for (let pixel = 0; pixel < width * height; pixel++) {
    const level = maskGrey[pixel]! / 255;
    const weight = strength * (polarity === 'white-repaints' ? level : 1 - level);
    for (let channel = 0; channel < 3; channel++) {
      const i = pixel * 3 + channel;
      out[i] = Math.round(source[i]! + (drawn[i]! - source[i]!) * weight);
    }
  }
  return jpeg(out, width, height);
}

export type OutputFormat = 'jpeg' | 'png' | 'webp';

/** esrgan: the input enlarged `scale` times, in the requested format and quality. */
export function renderUpscale(
  input: InputImage,
  scale: number,
  format: OutputFormat,
  quality: number,
): Promise<Buffer> {
  const resized = sharp(input.bytes, { limitInputPixels: false })
    .resize(input.width * scale, input.height * scale, { fit: 'fill', kernel: 'lanczos3' })
    .removeAlpha();
  switch (format) {
    case 'png':
      return resized.png().toBuffer();
    case 'webp':
      return resized.webp({ quality }).toBuffer();
    case 'jpeg':
      return resized.jpeg({ quality }).toBuffer();
  }
}

/**
 * sdxl-controlnet: the seed's pattern at the control image's size, with the control image's edges
 * drawn over it, darker the higher `controlScale`.
 */
export async function renderControlled(
  control: InputImage,
  pattern: Pattern,
  controlScale: number,
): Promise<Buffer> {
  const { width, height } = control;
  const [drawn, edges] = await Promise.all([
    patternPixels(pattern, width, height),
    sharp(control.bytes)
      .resize(width, height, { fit: 'fill' })
      .flatten({ background: '#fff' })
      .greyscale()
      .convolve({ width: 3, height: 3, kernel: [-1, -1, -1, -1, 8, -1, -1, -1, -1] })
      .raw()
      .toBuffer(),
  ]);
  const out = Buffer.alloc(drawn.length);
  for (let pixel = 0; pixel < width * height; pixel++) {
    const darken = 1 - controlScale * Math.min(1, (edges[pixel]! * 4) / 255);
    for (let channel = 0; channel < 3; channel++)
      out[pixel * 3 + channel] = Math.round(drawn[pixel * 3 + channel]! * darken);
  }
  return jpeg(out, width, height);
}

export const CONTENT_TYPES: Record<OutputFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
};
