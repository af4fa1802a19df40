import { withParameters, type GeneratedImage, type ParametersSource } from '@sdxl-kit/client';
import type { JobRecord } from '../store/job-store.ts';

/**
 * A job's images with their generation parameters written into each file (BOT_EMBED_PARAMETERS), so
 * what the bot posts and stores says how it was made, as AUTOMATIC1111's files do. A variation or an
 * upscale names its source: the member's file, or the bot's attachment it came from.
 */
export function withJobParameters(
  job: JobRecord,
  result: ParametersSource & { images: GeneratedImage[] },
): GeneratedImage[] {
  const operation = job.operation;
  const source =
    operation === undefined
      ? undefined
      : 'sourceName' in operation && operation.sourceName !== undefined
        ? operation.sourceName
        : `sdxl-${operation.sourceJobId.slice(0, 8)}-${operation.sourceIndex + 1}.jpg`;
  return withParameters(result, result.images, { extra: { 'Source image': source } });
}
