import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CliWorld, jsonLines } from './harness.ts';

describe('sdxl imagine: flags and settings', () => {
  const world = new CliWorld();
  before(() => world.start());
  beforeEach(() => world.sandbox.configure({ latencyMs: 0, statuses: [], credits: 100 }));
  after(() => world.close());

  it('takes a negative number as a value: --seed -1 is a random seed, --seed -5 is refused naming --seed', async () => {
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
      /--seed: -5 is not allowed; allowed: a whole number from -1 to 999999999999999/,
    );
    const short = await world.run(['imagine', 'a fox', '-n', '-2', '-o', world.dir]);
    assert.equal(short.code, 2);
    assert.match(short.stderr, /--samples: -2 is not allowed/);
    assert.equal(world.sandbox.requests.length, sent);
  });

  it('names the flag typed, not the client field, in human and JSON errors', async () => {
    const human = await world.run(['imagine', 'a fox', '--guidance-scale', '0.5', '-o', world.dir]);
    assert.equal(human.code, 2);
    assert.match(human.stderr, /--guidance-scale: 0\.5 is not allowed; allowed: a number from 1 to 25/);
    assert.doesNotMatch(human.stderr, /guidanceScale/);
    const json = await world.run([
      'imagine',
      'a fox',
      '--high-noise-fraction',
      '1',
      '--steps',
      '10',
      '--json',
      '-o',
      world.dir,
    ]);
    assert.equal(json.code, 2);
    const { error } = jsonLines(json.stdout)[0]!;
    assert.equal(error!.code, 'invalid_request');
    assert.match(error!.message, /--steps: 10/);
    assert.match(error!.message, /--high-noise-fraction: 1/);
    assert.doesNotMatch(error!.message, /highNoiseFraction/);
    assert.deepEqual(error!.fields!.map((field) => field.flag).sort(), ['--high-noise-fraction', '--steps']);
  });

  it('names SDXL_RPM when a bad pace came from the environment', async () => {
    const run = await world.run(['imagine', 'a fox', '-o', world.dir], { ...world.env, SDXL_RPM: 'abc' });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /SDXL_RPM: "abc" is not a number/);
    assert.doesNotMatch(run.stderr, /--rpm/);
  });
});
