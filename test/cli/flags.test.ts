import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CliWorld, jsonLines } from './harness.ts';

describe('sdxl imagine: flags and settings', () => {
  const world = new CliWorld();
  before(() => world.start());
  beforeEach(() => world.sandbox.configure({ latencyMs: 0, statuses: [], credits: 100 }));
  after(() => world.close());

  it('takes a negative number as a value: --seed -1 is a random seed, --seed -5 is refused naming the seed and its range', async () => {
    const random = await world.run(['imagine', 'a fox', '--seed', '-1', '--json', '-o', world.dir]);
    assert.equal(random.code, 0, random.stderr);
    const seed = (world.sandbox.requests.at(-1)!.body as { seed: number }).seed;
    assert.ok(seed >= 0, `a concrete seed was sent: ${seed}`);
    assert.equal(jsonLines(random.stdout)[0]!.images[0]!.seed, seed);
    const sent = world.sandbox.requests.length;
    const refused = await world.run(['imagine', 'a fox', '--seed', '-5', '-o', world.dir]);
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /seed: -5 is not allowed; allowed: a whole number from -1 to 999999999999999/,
    );
    const short = await world.run(['imagine', 'a fox', '-n', '-2', '-o', world.dir]);
    assert.equal(short.code, 2);
    assert.match(short.stderr, /samples: -2 is not allowed/);
    assert.equal(world.sandbox.requests.length, sent);
  });
});
