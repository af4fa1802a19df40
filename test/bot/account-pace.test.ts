import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as wait } from 'node:timers/promises';
import { skipWithoutRedis } from '../support/redis.ts';
import { eventually, rateLimited, REDIS_PASSWORD, startCluster, user, type Cluster } from './cluster.ts';
import { API_KEY } from './world.ts';

const SDXL_BIN = new URL('../../cli/bin/sdxl.js', import.meta.url).pathname;

/**
 * One account, two hosts: the bot and a nightly `sdxl` pipeline with SDXL_REDIS_URL on the same Redis
 * count the account's requests per minute in one place, so neither draws the other a 429.
 */
describe('the bot and an sdxl pipeline on one account and one Redis', { skip: skipWithoutRedis }, () => {
  let cluster: Cluster;
  let dir: string;
  before(async () => {
    // The plan allows 4 generations a minute, and the sandbox enforces it.
    // A stop does not wait for the job left waiting for the next minute.
    cluster = await startCluster(
      { BOT_REQUESTS_PER_MINUTE: '4', BOT_SHUTDOWN_GRACE_MS: '1000' },
      { rpm: 4, latencyMs: 100 },
    );
    dir = await mkdtemp(join(tmpdir(), 'sdxl-account-pace-'));
  });
  after(async () => {
    await cluster?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps one pace: once the pipeline has used the minute, the bot waits instead of drawing a 429', async () => {
    const prompts = join(dir, 'prompts.txt');
    await writeFile(prompts, 'a red fox\na blue heron\na green frog\na grey seal\n');
    const pipeline = spawn(
      process.execPath,
      [SDXL_BIN, 'imagine', '--prompts', prompts, '--out', join(dir, 'out'), '--rpm', '4'],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          SDXL_API_KEY: API_KEY,
          SDXL_BASE_URL: cluster.sandbox.url,
          SDXL_REDIS_URL: cluster.redis.url,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    pipeline.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => pipeline.on('exit', resolve));
    assert.equal(code, 0, stderr);
    assert.equal(cluster.sandbox.billed.length, 4, "the pipeline used the minute's four");

    const record = cluster.imagine(user(500), { prompt: 'a kestrel' });
    await eventually(
      () => cluster.bots.some((bot) => /"msg":"job running"/.test(bot.output())),
      'the job to start',
    );
    // Unshared, the bot would send it now and the sandbox would answer 429 at once.
    await wait(2_000);
    assert.equal(rateLimited(cluster.sandbox), 0, 'no request was refused for the rate');
    assert.equal(cluster.sandbox.billed.length, 4, 'the job waits for the minute to turn');
    assert.ok(!stderr.includes(REDIS_PASSWORD));
    assert.ok(record.originalMessageId, 'the command was acknowledged');
  });
});
