import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CliWorld } from './harness.ts';

describe('sdxl imagine: file names', () => {
  const world = new CliWorld();
  before(() => world.start());
  after(() => world.close());

  it('keeps accented words whole in the slug', async () => {
    const out = path.join(world.dir, 'accents');
    const run = await world.run(['imagine', 'Café ünïcode 熊猫', '--seed', '3', '-o', out]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readdir(out), ['cafe-unicode-3-0.jpg']);
  });

  it('never overwrites: a second copy gets a suffix that cannot be read as seed or index', async () => {
    const out = path.join(world.dir, 'same');
    for (let i = 0; i < 3; i++) {
      const run = await world.run(['imagine', 'same', '--seed', '7', '-o', out]);
      assert.equal(run.code, 0, run.stderr);
    }
    assert.deepEqual((await readdir(out)).sort(), ['same-7-0.jpg', 'same-7-0_2.jpg', 'same-7-0_3.jpg']);
  });
});
