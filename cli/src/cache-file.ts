// What `sdxl` keeps between runs (learnt job times, the account's prices): small JSON files in the
// user's cache folder, each a map of entries stamped with when they were last written.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

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

/**
 * `{"version":1,"<section>":{"<key>":{"at":<epoch ms>, ...entry}}}`, keeping the `max` most recently
 * written keys. A missing or unreadable file, or an entry that does not read, is nothing kept: it is
 * only ever a cache. Writes go through a temporary file renamed over it, so a crash leaves the old
 * one, and one after another within the process, so entries written together lose none.
 */
export class JsonCache<T extends object> {
  private readonly file: string;
  private readonly section: string;
  private readonly max: number;
  private readonly readEntry: (stored: Record<string, unknown>) => T | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(options: {
    file: string;
    section: string;
    max: number;
    readEntry: (stored: Record<string, unknown>) => T | undefined;
  }) {
    this.file = options.file;
    this.section = options.section;
    this.max = options.max;
    this.readEntry = options.readEntry;
  }

  /** The entry kept under `key`, if any. */
  async get(key: string): Promise<T | undefined> {
    return (await this.read())[key]?.entry;
  }

  /** Replaces the entry under `key` with what `next` makes of the one kept now. */
  update(key: string, next: (kept: T | undefined) => T): Promise<void> {
    const write = this.writing.then(async () => {
      const entries = await this.read();
      entries[key] = { at: Date.now(), entry: next(entries[key]?.entry) };
      const newest = Object.entries(entries)
        .sort(([, a], [, b]) => b.at - a.at)
        .slice(0, this.max)
        .map(([name, { at, entry }]) => [name, { at, ...entry }]);
      await mkdir(path.dirname(this.file), { recursive: true });
      const temporary = `${this.file}.${process.pid}.tmp`;
      await writeFile(temporary, JSON.stringify({ version: 1, [this.section]: Object.fromEntries(newest) }));
      await rename(temporary, this.file);
    });
    this.writing = write.catch(() => {});
    return write;
  }

  private async read(): Promise<Record<string, { at: number; entry: T }>> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(this.file, 'utf8'));
    } catch {
      return {};
    }
    const entries: Record<string, { at: number; entry: T }> = {};
    const stored = (parsed as Record<string, unknown> | null)?.[this.section];
    if (!stored || typeof stored !== 'object') return entries;
    for (const [key, value] of Object.entries(stored as Record<string, unknown>)) {
      if (!value || typeof value !== 'object') continue;
      const { at, ...rest } = value as Record<string, unknown>;
      const entry = typeof at === 'number' ? this.readEntry(rest) : undefined;
      if (entry) entries[key] = { at: at as number, entry };
    }
    return entries;
  }
}
