import { esrgan } from '@sdxl-kit/client';
import type { JobOperation } from '../store/job-store.ts';
import { MAX_SOURCE_SIDE } from './source-image.ts';

/**
 * img2img strengths (0 keeps the source, 1 ignores it). 0.35 for Vary (Subtle): low enough that the
 * composition, colours and subject stay and only details change, as Midjourney's subtle mode does.
 * 0.75 for Vary (Strong) and V1–V4: the layout still comes from the source, but shapes and content
 * move visibly; above ~0.85 SDXL img2img mostly forgets the source, and then it is a 🔄, not a variation.
 */
export const SUBTLE_STRENGTH = 0.35;
export const STRONG_STRENGTH = 0.75;

/** A member's file name as message text: no backticks or line breaks to break the formatting, at most 60 characters. */
function fileLabel(name: string): string {
  const plain = name.replace(/[`\r\n]/g, '').trim() || 'image';
  return plain.length <= 60 ? plain : `${plain.slice(0, 59)}\u2026`;
}

/** The strength an attached image is varied at when `strength` is not given: that of V1–V4. */
export const DEFAULT_SOURCE_STRENGTH = STRONG_STRENGTH;

/**
 * How an operation is named in messages: "Vary (Subtle) of image 2", "Vary (Strong) of image 2",
 * "Variation of image 2" (V1–V4), "Variation (strength 0.5) of `cat.png`" or "Upscaled 4x".
 */
export function operationLabel(operation: JobOperation): string {
  if (operation.kind === 'upscale') return `Upscaled ${operation.scale}x`;
  if (operation.sourceName !== undefined)
    return `Variation (strength ${operation.strength}) of \`${fileLabel(operation.sourceName)}\``;
  // Jobs stored before the mode was kept: only Vary (Subtle) sent the subtle strength.
  const mode = operation.mode ?? (operation.strength === SUBTLE_STRENGTH ? 'subtle' : undefined);
  const name = mode === 'subtle' ? 'Vary (Subtle)' : mode === 'strong' ? 'Vary (Strong)' : 'Variation';
  return `${name} of image ${operation.sourceIndex + 1}`;
}

/** The scales the Upscale buttons offer. */
export const UPSCALE_SCALES = [2, 4] as const;
export type UpscaleScale = (typeof UPSCALE_SCALES)[number];

/** The scales esrgan's declaration allows (2, 4 or 8): the buttons offer only those among theirs. */
const ESRGAN_SCALES = new Set(esrgan.fields.find((field) => field.name === 'scale')?.values ?? []);

/**
 * The Upscale buttons an image of this size gets: each scale esrgan declares whose result stays within
 * {@link MAX_SOURCE_SIDE} pixels a side, the largest image the bot takes in (so an upscale can come back
 * in) and posts. esrgan's declaration bounds the scale only; its input and output sizes are not
 * published, so the bot's own bound is the one applied. 1024 → 2x and 4x; 2048 → 2x; 4096 → none.
 */
export function upscalesFor(size: { width: number; height: number }): UpscaleScale[] {
  const side = Math.max(size.width, size.height);
  return UPSCALE_SCALES.filter((scale) => ESRGAN_SCALES.has(scale) && side * scale <= MAX_SOURCE_SIDE);
}
