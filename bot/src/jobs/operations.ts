import type { JobOperation } from '../store/job-store.ts';

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

/** How an operation is named in messages: "Vary (Subtle) of image 2", "Variation (strength 0.5) of `cat.png`" or "Upscaled 4x". */
export function operationLabel(operation: JobOperation): string {
  if (operation.kind === 'upscale') return `Upscaled ${operation.scale}x`;
  if (operation.sourceName !== undefined)
    return `Variation (strength ${operation.strength}) of \`${fileLabel(operation.sourceName)}\``;
  const mode =
    operation.strength === SUBTLE_STRENGTH
      ? 'Vary (Subtle)'
      : operation.strength === STRONG_STRENGTH
        ? 'Vary (Strong)'
        : 'Variation';
  return `${mode} of image ${operation.sourceIndex + 1}`;
}
