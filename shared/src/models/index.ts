// The declared models. A new model is one file beside these, added to MODELS, plus its tests.
import type { ModelDeclaration, Operation } from './declaration.ts';
import { esrgan } from './esrgan.ts';
import { sdxlControlnet } from './sdxl-controlnet.ts';
import { sdxlImg2Img } from './sdxl-img2img.ts';
import { sdxlInpaint } from './sdxl-inpaint.ts';
import { sdxlTxt2Img } from './sdxl-txt2img.ts';
import { ssd1b } from './ssd-1b.ts';

export * from './declaration.ts';
export { KNOWN_SCHEDULERS, MAX_SEED } from './common.ts';
export * from './sdxl-txt2img.ts';
export { sdxlImg2Img } from './sdxl-img2img.ts';
export { sdxlInpaint } from './sdxl-inpaint.ts';
export { esrgan } from './esrgan.ts';
export { ssd1b } from './ssd-1b.ts';
export { sdxlControlnet } from './sdxl-controlnet.ts';

/** Every declared model, the default one of each operation first. */
export const MODELS: readonly ModelDeclaration[] = [
  sdxlTxt2Img,
  sdxlImg2Img,
  sdxlInpaint,
  esrgan,
  sdxlControlnet,
  ssd1b,
];

const BY_SLUG = new Map(MODELS.map((model) => [model.slug, model]));

/** The declaration of a slug, or undefined for a model the kit does not declare. */
export function findModel(slug: string): ModelDeclaration | undefined {
  return BY_SLUG.get(slug);
}

/** The default model of an operation: sdxl1.0-txt2img, sdxl-img2img, sdxl-inpaint, esrgan, sdxl-controlnet. */
export function modelFor(operation: Operation): ModelDeclaration {
  return MODELS.find((model) => model.operation === operation)!;
}
