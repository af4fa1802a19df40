// The CLI's learnt job times: a small JSON file in the user's cache folder, so the next `sdxl` run
// (cron's next batch) polls its first job just after it should end instead of learning again.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readSample, type JobTimeSample, type JobTimeStore } from '@sdxl-kit/client/core';

/** Addresses and models kept; the least recently learnt goes first. */
const MAX_KEYS = 32;

interface CacheFile {
  version: 1;
  /** Per API address and model: when last learnt (epoch ms), and its newest samples. */
  keys: Record<string, { at: number; samples: JobTimeSample[] }>;
}

/**
 * The folder of what `sdxl` learns between runs: `SDXL_CACHE_DIR`, else `$XDG_CACHE_HOME/sdxl`, else
 * `~/.cache/sdxl`; none without a home (a run then learns in memory only).
 */
export function cacheDir(env: NodeJS.ProcessEnv): string | undefined {
  return (
    env.SDXL_CACHE_DIR?.trim() ||
    (env.XDG_CACHE_HOME?.trim() && path.join(env.XDG_CACHE_HOME.trim(), 'sdxl')) ||
    (env.HOME?.trim() && path.join(env.HOME.trim(), '.cache', 'sdxl')) ||
    undefined
  );
}

/** Where learnt job times are kept: `job-times.json` in the cache folder. */
export function jobTimesPath(env: NodeJS.ProcessEnv): string | undefined {
  const dir = cacheDir(env);
  return dir ? path.join(dir, 'job-times.json') : undefined;
}

/** Learnt job times in a JSON file; writes go through a temporary file, so a crash leaves the old one. */
export class FileJobTimeStore implements JobTimeStore {
  private readonly file: string;
  /** The writes of this process, one after another, so a batch's jobs ending together lose none. */
  private writing: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.file = file;
  }

  async recent(key: string): Promise<JobTimeSample[]> {
    return (await this.read()).keys[key]?.samples ?? [];
  }

  add(key: string, sample: JobTimeSample, keep: number): Promise<void> {
    const write = this.writing.then(async () => {
      const cache = await this.read();
      const samples = [...(cache.keys[key]?.samples ?? []), sample].slice(-keep);
      cache.keys[key] = { at: Date.now(), samples };
      const newest = Object.entries(cache.keys)
        .sort(([, a], [, b]) => b.at - a.at)
        .slice(0, MAX_KEYS);
      await mkdir(path.dirname(this.file), { recursive: true });
      const temporary = `${this.file}.${process.pid}.tmp`;
      await writeFile(temporary, JSON.stringify({ version: 1, keys: Object.fromEntries(newest) }));
      await rename(temporary, this.file);
    });
    this.writing = write.catch(() => {});
    return write;
  }

  /** The cache as stored; a missing or unreadable file is an empty cache (it is only ever a cache). */
  private async read(): Promise<CacheFile> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(this.file, 'utf8'));
    } catch {
      return { version: 1, keys: {} };
    }
    const keys: CacheFile['keys'] = {};
    const stored = (parsed as { keys?: unknown } | null)?.keys;
    if (stored && typeof stored === 'object') {
      for (const [key, entry] of Object.entries(stored as Record<string, unknown>)) {
        const { at, samples } = (entry ?? {}) as { at?: unknown; samples?: unknown };
        if (typeof at !== 'number' || !Array.isArray(samples)) continue;
        keys[key] = { at, samples: samples.flatMap((sample) => readSample(sample) ?? []) };
      }
    }
    return { version: 1, keys };
  }
}
