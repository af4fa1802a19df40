import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as wait } from 'node:timers/promises';
import { closedPort } from '../support/http.ts';
import { skipWithoutRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { CliWorld, until } from './harness.ts';

const PASSWORD = 'cron-redis-pw-5521';

describe('sdxl on several machines with one key: SDXL_REDIS_URL', { skip: skipWithoutRedis }, () => {
  const world = new CliWorld();
  let redis: TestRedis;
  let file: string;

  before(async () => {
    // The plan allows 4 generations a minute: two cron jobs of 3 prompts each must share them.
    await world.start({ rpm: 4 });
    redis = await startRedis({ password: PASSWORD });
    file = path.join(world.dir, 'prompts.txt');
    await writeFile(file, 'a red fox\na blue heron\na green frog\n');
  });
  after(async () => {
    await world.close();
    await redis?.close();
  });

  const tooMany = () => world.sandbox.requests.filter((request) => request.status === 429).length;
  const args = (out: string) => [
    'imagine',
    '--prompts',
    file,
    '--out',
    path.join(world.dir, out),
    '--rpm',
    '4',
  ];

  it('keeps two runs on one pace: the plan\u2019s 4 a minute go out, the rest wait, no 429', async () => {
    const env = { ...world.env, SDXL_REDIS_URL: redis.url };
    const runs = [world.spawn(args('one'), env), world.spawn(args('two'), env)];
    try {
      await until(() => world.sandbox.billed.length >= 4, 'four images billed');
      // Unshared, each run would send its third prompt at once and draw a 429 within moments.
      await wait(1_500);
      assert.equal(tooMany(), 0, 'no request was refused for the rate');
      assert.equal(world.sandbox.billed.length, 4);
    } finally {
      for (const run of runs) run.child.kill('SIGTERM');
      await Promise.all(runs.map((run) => run.done));
    }
    for (const run of runs) assert.ok(!run.stderr().includes(PASSWORD), run.stderr());
  });

  it('stops before sending anything when Redis cannot be reached, naming the setting without its password', async () => {
    const billed = world.sandbox.billed.length;
    const dead = `redis://:${PASSWORD}@127.0.0.1:${await closedPort()}`;
    const run = await world.run(args('dead'), { ...world.env, SDXL_REDIS_URL: dead });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /SDXL_REDIS_URL: could not reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/);
    assert.ok(!`${run.stdout}${run.stderr}`.includes(PASSWORD), run.stderr);
    assert.equal(world.sandbox.billed.length, billed);
  });

  it('refuses an address that is not Redis', async () => {
    const run = await world.run(args('bad'), { ...world.env, SDXL_REDIS_URL: 'http://127.0.0.1:6379' });
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /SDXL_REDIS_URL: "http:\/\/127\.0\.0\.1:6379\/?" is not allowed; allowed: a redis:\/\/ or rediss:\/\/ address/,
    );
  });
});
