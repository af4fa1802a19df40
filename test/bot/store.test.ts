import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import type { JobRecord } from '../../bot/src/store/job-store.ts';
import { SqliteJobStore } from '../../bot/src/store/sqlite-job-store.ts';
import { STORES } from './implementations.ts';

const job = (id: string, changes: Partial<JobRecord> = {}): JobRecord => ({
  id,
  userId: 'u1',
  guildId: 'g',
  channelId: 'c',
  input: { prompt: `prompt ${id}`, steps: 30 },
  samples: 2,
  status: 'queued',
  createdAt: 1_000,
  ...changes,
});

describe('the SQLite job store, opening an older file', () => {
  it('keeps what a V or Upscale job does and how to resume it, also in a store made before those columns existed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sdxl-store-'));
    try {
      const path = join(dir, 'old.sqlite');
      const old = new DatabaseSync(path);
      old.exec(`CREATE TABLE jobs (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, guild_id TEXT, channel_id TEXT,
        input TEXT NOT NULL, samples INTEGER NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL,
        finished_at INTEGER, seed INTEGER, remaining_credits REAL, error TEXT)`);
      old
        .prepare(
          `INSERT INTO jobs VALUES ('old', 'u1', 'g', 'c', '{"prompt":"x"}', 1, 'done', 1, NULL, NULL, NULL, NULL)`,
        )
        .run();
      old.close();
      const store = new SqliteJobStore(path);
      try {
        assert.equal((await store.get('old'))?.operation, undefined, 'an old job is a txt2img job');
        const operation = { kind: 'upscale', sourceJobId: 'old', sourceIndex: 0, scale: 4 } as const;
        await store.createWithinQuota(job('up', { operation, samples: 1 }), { since: 0, limit: 10 });
        assert.deepEqual((await store.get('up'))?.operation, operation);
        const vary = { kind: 'vary', sourceJobId: 'up', sourceIndex: 0, strength: 0.35 } as const;
        await store.update('up', { operation: vary });
        assert.deepEqual((await store.get('up'))?.operation, vary);
        // What a restarted bot resumes a job by: its request id and where it answers.
        const reply = { applicationId: 'app', token: 'interaction-token', expiresAt: 5_000 };
        await store.createWithinQuota(job('sent', { reply }), { since: 0, limit: 10 });
        await store.update('sent', { status: 'running', requestId: 'req-1' });
        assert.deepEqual(
          (await store.unfinished()).filter((record) => record.id === 'sent'),
          [{ ...job('sent', { reply }), status: 'running', requestId: 'req-1' }],
        );
        await store.update('sent', { status: 'done', reply: undefined });
        assert.equal((await store.get('sent'))?.reply, undefined, 'the token is dropped when the job ends');
        assert.equal((await store.get('sent'))?.requestId, 'req-1');
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

for (const kind of STORES) {
  describe(kind.name, { skip: kind.skip }, () => {
    it('keeps jobs, their images and settings', async () => {
      const store = await kind.make();
      try {
        assert.deepEqual(await store.createWithinQuota(job('a'), { since: 0, limit: 10 }), { created: true });
        await store.update('a', {
          status: 'done',
          seed: 999_999_999_999_999,
          remainingCredits: 0.25,
          finishedAt: 2_000,
        });
        await store.saveImages([
          { jobId: 'a', index: 1, seed: 7, mimeType: 'image/jpeg', bytes: Buffer.from([1, 2, 3]) },
        ]);
        assert.deepEqual(await store.get('a'), {
          ...job('a'),
          status: 'done',
          seed: 999_999_999_999_999,
          remainingCredits: 0.25,
          finishedAt: 2_000,
        });
        assert.deepEqual((await store.image('a', 1))?.bytes, Buffer.from([1, 2, 3]));
        assert.equal(await store.image('a', 0), undefined);
        await store.setSetting('k', 'v');
        assert.equal(await store.getSetting('k'), 'v');
        await store.setSetting('k', undefined);
        assert.equal(await store.getSetting('k'), undefined);
      } finally {
        await store.close();
      }
    });

    it('counts the quota over jobs that were not refused or failed, and purges old jobs with their images', async () => {
      const store = await kind.make();
      try {
        await store.createWithinQuota(job('a'), { since: 0, limit: 5 });
        await store.createWithinQuota(job('b'), { since: 0, limit: 5 });
        assert.deepEqual(await store.createWithinQuota(job('c'), { since: 0, limit: 5 }), {
          created: false,
          used: 4,
        });
        await store.update('b', { status: 'failed' });
        assert.deepEqual(await store.createWithinQuota(job('c'), { since: 0, limit: 5 }), { created: true });
        assert.deepEqual((await store.unfinished()).map((record) => record.id).sort(), ['a', 'c']);
        await store.createWithinQuota(job('new', { createdAt: 10_000 }), { since: 0, limit: 100 });
        await store.saveImages([
          { jobId: 'a', index: 0, seed: 1, mimeType: 'image/jpeg', bytes: Buffer.from([9]) },
        ]);
        assert.equal(await store.purgeCreatedBefore(5_000), 3);
        assert.equal(await store.get('a'), undefined);
        assert.equal(await store.image('a', 0), undefined);
        assert.ok(await store.get('new'));
      } finally {
        await store.close();
      }
    });

    it('claims a setting once: of several callers at the same moment, one alone gets it', async () => {
      const store = await kind.make();
      try {
        const claims = await Promise.all(
          Array.from({ length: 8 }, (_, index) => store.claimSetting('notice', String(index))),
        );
        assert.equal(claims.filter(Boolean).length, 1);
        assert.equal(await store.claimSetting('notice', 'again'), false);
        await store.setSetting('notice', undefined);
        assert.equal(await store.claimSetting('notice', 'again'), true);
      } finally {
        await store.close();
      }
    });
  });
}
