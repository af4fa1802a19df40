import type { JobOperation } from '../store/job-store.ts';

/**
 * img2img strengths (0 keeps the source, 1 ignores it). 0.35 for Vary (Subtle): low enough that the
 * composition, colours and subject stay and only details change, as Midjourney's subtle mode does.
 * 0.75 for Vary (Strong) and V1–V4: the layout still comes from the source, but shapes and content
 * move visibly; above ~0.85 SDXL img2img mostly forgets the source, and then it is a 🔄, not a variation.
 */
export const SUBTLE_STRENGTH = 0.35;
export const STRONG_STRENGTH = 0.75;

/** How an operation is named in messages: "Variation (strength 0.35) of image 2" or "Upscaled 4x". */
export function operationLabel(operation: JobOperation): string {
  if (operation.kind === 'upscale') return `Upscaled ${operation.scale}x`;
  const mode =
    operation.strength === SUBTLE_STRENGTH
      ? 'Vary (Subtle)'
      : operation.strength === STRONG_STRENGTH
        ? 'Vary (Strong)'
        : 'Variation';
  return `${mode} of image ${operation.sourceIndex + 1}`;
}
