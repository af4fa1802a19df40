// The CLI's learnt job times: a small JSON file in the user's cache folder, so the next `sdxl` run
// (cron's next batch) polls its first job just after it should end instead of learning again.
import path from 'node:path';
import { readSample, type JobTimeSample, type JobTimeStore } from '@sdxl-kit/client/core';
import { JsonCache, cacheDir } from './cache-file.ts';

/** Addresses and models kept; the least recently learnt goes first. */
const MAX_KEYS = 32;

/** Where learnt job times are kept: `job-times.json` in the cache folder (see `cacheDir`). */
export function jobTimesPath(env: NodeJS.ProcessEnv): string | undefined {
  const dir = cacheDir(env);
  return dir ? path.join(dir, 'job-times.json') : undefined;
}

/** Learnt job times in a JSON file, per API address and model: the newest samples. */
export class FileJobTimeStore implements JobTimeStore {
  private readonly cache: JsonCache<{ samples: JobTimeSample[] }>;

  constructor(file: string) {
    this.cache = new JsonCache({
      file,
      section: 'keys',
      max: MAX_KEYS,
      readEntry: ({ samples }) =>
        Array.isArray(samples)
          ? { samples: samples.flatMap((sample) => readSample(sample) ?? []) }
          : undefined,
    });
  }

  async recent(key: string): Promise<JobTimeSample[]> {
    return (await this.cache.get(key))?.samples ?? [];
  }

  add(key: string, sample: JobTimeSample, keep: number): Promise<void> {
    return this.cache.update(key, (kept) => ({ samples: [...(kept?.samples ?? []), sample].slice(-keep) }));
  }
}
