// The command's learnt job times: one `sdxl` process keeps what its async job taught in the cache
// folder, and the next process polls its first job after that time instead of learning again.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CliWorld } from './harness.ts';

describe('sdxl imagine --async: learnt job times', () => {
  const world = new CliWorld();
  before(() => world.start({ latencyMs: 1500 }));
  after(() => world.close());

  it('are kept in the cache folder by one run and used by the next: its first check waits for the learnt time', async () => {
    const cache = path.join(world.dir, 'cache');
    const env = { ...world.env, SDXL_CACHE_DIR: cache };
    const first = await world.run(
      ['imagine', 'a first run', '--async', '--out', path.join(world.dir, 'a')],
      env,
    );
    assert.equal(first.code, 0, first.stderr);
    const stored = JSON.parse(await readFile(path.join(cache, 'job-times.json'), 'utf8')) as {
      keys: Record<string, { samples: { totalMs: number; inferenceMs?: number }[] }>;
    };
    const samples = stored.keys[`${world.sandbox.url} sdxl1.0-txt2img`]?.samples ?? [];
    assert.equal(samples.length, 1);
    assert.ok(samples[0]!.totalMs > 0 && samples[0]!.inferenceMs! >= 1500, JSON.stringify(samples[0]));

    world.sandbox.requests.length = 0;
    const second = await world.run(
      ['imagine', 'a second run', '--async', '--out', path.join(world.dir, 'b')],
      env,
    );
    assert.equal(second.code, 0, second.stderr);
    const submit = world.sandbox.requests.find((request) => request.method === 'POST')!;
    const checks = world.sandbox.requests.filter((request) => request.path.endsWith('/status'));
    // A lower bound the client's own wait guarantees: the cold schedule would look at 250 ms.
    assert.ok(
      checks[0]!.receivedAt - submit.receivedAt >= samples[0]!.totalMs - 100,
      `first check ${checks[0]!.receivedAt - submit.receivedAt} ms after the submit`,
    );
    const again = JSON.parse(await readFile(path.join(cache, 'job-times.json'), 'utf8')) as typeof stored;
    assert.equal(again.keys[`${world.sandbox.url} sdxl1.0-txt2img`]?.samples.length, 2);
  });
});
