import { randomInt } from 'node:crypto';
import type {
  AsyncTicket,
  GenerateInput,
  GeneratedImage,
  ModelResult,
  SdxlClient,
  SdxlError,
} from '@sdxl-kit/client';
import { BotRefusal } from '../errors.ts';
import type { JobRecord, JobStore } from '../store/job-store.ts';

/** What any of the bot's calls gives back, images with their seeds. */
export interface Produced {
  /** The model's slug and the request as sent, for the parameters written into the images. */
  model: string;
  request: Record<string, unknown>;
  requestId?: string;
  images: GeneratedImage[];
  seed: number;
  remainingCredits?: number;
  cost?: number;
  lowCredits: boolean;
}

/** The model each kind of job runs on: what a resumed request is read as. */
export const MODEL_OF = { imagine: 'sdxl1.0-txt2img', vary: 'sdxl-img2img', upscale: 'esrgan' } as const;

/** The seed a job is made with: drawn here, not by the client, so that a resumed job still knows it. */
export function seedFor(input: GenerateInput): number {
  return input.seed === undefined || input.seed === -1 ? randomInt(0, 2 ** 31) : Number(input.seed);
}

/** A job's stored source image (V1–V4, Vary, Upscale), or undefined for /imagine. */
export async function sourceOf(store: JobStore, job: JobRecord) {
  const operation = job.operation;
  if (!operation) return undefined;
  const source = await store.image(operation.sourceJobId, operation.sourceIndex);
  if (!source) throw new BotRefusal('expired', '\u231b This image is no longer stored. Run /imagine again.');
  // An upscale keeps its source's seed; a variation draws a new one unless one is set.
  return operation.kind === 'upscale' ? source : { ...source, seed: seedFor(job.input) };
}

/**
 * One billed call on the async API: txt2img for /imagine, img2img (V1–V4, Vary) or esrgan (Upscale)
 * of a stored image, which goes to the client as a Buffer. `seed` is in `job.seed`.
 */
export async function produce(
  sdxl: SdxlClient,
  job: JobRecord,
  source: { bytes: Buffer } | undefined,
  options: {
    signal: AbortSignal;
    onSubmitted: (ticket: AsyncTicket) => Promise<void>;
    /** Runs just before each attempt leaves for the API: a call it never ran for was never sent. */
    onAttempt?: () => void;
    onAttemptFailed?: (error: SdxlError) => void;
  },
): Promise<Produced> {
  const operation = job.operation;
  const run = { ...options, api: 'async' as const };
  const seed = job.seed!;
  if (!operation || !source) return sdxl.generate({ ...job.input, seed }, run);
  if (operation.kind === 'upscale')
    return produced(job, await sdxl.upscale({ image: source.bytes, scale: operation.scale }, run));
  const input = job.input;
  // The settings of the source job that apply to img2img, as the user chose them.
  const result = await sdxl.vary(
    {
      image: source.bytes,
      prompt: input.prompt,
      strength: operation.strength,
      seed,
      ...(input.negativePrompt !== undefined && { negativePrompt: input.negativePrompt }),
      ...(input.samples !== undefined && { samples: input.samples }),
      ...(input.scheduler !== undefined && { scheduler: input.scheduler }),
      ...(input.steps !== undefined && { steps: input.steps }),
      ...(input.guidanceScale !== undefined && { guidanceScale: input.guidanceScale }),
    },
    run,
  );
  return produced(job, result);
}

/** A model's result as the bot keeps it: every image with the job's seed unless the API gave one. */
export function produced(job: JobRecord, result: ModelResult): Produced {
  // An upscale keeps its source's seed whatever the API says; the others the seed they were made with.
  const seed = (job.operation?.kind !== 'upscale' ? result.seed : undefined) ?? job.seed ?? 0;
  return {
    ...result,
    seed,
    images: result.images.map((image) => ({ ...image, seed: image.seed ?? seed })),
  };
}
