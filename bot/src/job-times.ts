import { readSample, type JobTimeSample, type JobTimeStore } from '@sdxl-kit/client';
import type { JobStore } from './store/job-store.ts';

/**
 * The embedded bot's learnt job times: a setting of its job store (SQLite), so a restart polls its
 * first job just after it should end. With REDIS_URL the bot uses `RedisJobTimeStore`, shared by
 * every process on that Redis, instead.
 */
export class SettingJobTimeStore implements JobTimeStore {
  private readonly store: JobStore;

  constructor(store: JobStore) {
    this.store = store;
  }

  async recent(key: string): Promise<JobTimeSample[]> {
    const stored = await this.store.getSetting(settingOf(key));
    if (stored === undefined) return [];
    try {
      const samples: unknown = JSON.parse(stored);
      return Array.isArray(samples) ? samples.flatMap((sample) => readSample(sample) ?? []) : [];
    } catch {
      return [];
    }
  }

  async add(key: string, sample: JobTimeSample, keep: number): Promise<void> {
    const samples = [...(await this.recent(key)), sample].slice(-keep);
    await this.store.setSetting(settingOf(key), JSON.stringify(samples));
  }
}

function settingOf(key: string): string {
  return `job-times:${key}`;
}
