// --dry-run, --max-cost and SDXL_MAX_COST as a user meets them: the real `sdxl` bin in its own
// process against a sandbox over HTTP, counting what the sandbox was sent and billed.
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pngImage } from '../support/images.ts';
import { CliWorld, jsonLines } from './harness.ts';

describe('what an sdxl vary or upscale will cost, and the cap it keeps to', () => {
  const world = new CliWorld();
  let photo: string;

  before(async () => {
    await world.start({ credits: 1 });
    photo = path.join(world.dir, 'photo.png');
    await writeFile(photo, await pngImage(80, 60));
  });
  beforeEach(() => {
    world.sandbox.requests.length = 0;
    world.sandbox.billed.length = 0;
  });
  after(() => world.close());

  const out = (name: string) => path.join(world.dir, name);
  const sent = () => world.sandbox.requests.filter((request) => request.method === 'POST');

  it('--dry-run prints the plan and the balance, sends nothing billed and writes nothing', async () => {
    const run = await world.run([
      'vary',
      photo,
      'a fox',
      '-n',
      '3',
      '--dry-run',
      '--json',
      '--out',
      out('dry'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(jsonLines(run.stdout), [
      { dryRun: true, calls: 1, images: 3, estimatedCredits: 0.0585, estimatedSeconds: 8.4, balance: 1 },
    ]);
    assert.equal(sent().length, 0);
    await assert.rejects(readdir(out('dry')), /ENOENT/);
    const words = await world.run(['upscale', photo, '--scale', '4', '--dry-run']);
    assert.equal(words.code, 0, words.stderr);
    assert.match(
      words.stdout,
      /^Dry run: nothing was sent\.\nPlan: 1 call, 1 image, about 0\.0047 credits \(Segmind's published price\), about 5 s at 5 a minute, 1 at a time\.\nBalance: 1 credits: enough\.\n$/,
    );
  });

  it('--max-cost under the estimate exits 2 naming the cap and the estimate; nothing is uploaded or sent', async () => {
    const run = await world.run([
      'vary',
      photo,
      'a fox',
      '-n',
      '2',
      '--max-cost',
      '0.03',
      '--out',
      out('capped'),
    ]);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /--max-cost: this run is estimated at 0\.039 credits \(1 call, 2 images\), over the cap of 0\.03\. Nothing was sent\./,
    );
    assert.equal(world.sandbox.requests.length, 0);
    const fromEnv = await world.run(['upscale', photo, '--json'], { ...world.env, SDXL_MAX_COST: '0.001' });
    assert.equal(fromEnv.code, 2);
    assert.match(fromEnv.stderr + fromEnv.stdout, /SDXL_MAX_COST: this run is estimated at 0\.0047 credits/);
    const bad = await world.run(['upscale', photo, '--max-cost', 'lots']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--max-cost: "lots" is not allowed; allowed: a number of credits above 0/);
    assert.equal(world.sandbox.requests.length, 0);
  });

  it('a run within its cap is sent, and its --json line carries the cost the sandbox billed', async () => {
    const run = await world.run(['upscale', photo, '--max-cost', '0.01', '--json', '--out', out('ok')]);
    assert.equal(run.code, 0, run.stderr);
    const [line] = jsonLines(run.stdout) as unknown as [{ cost: number }];
    assert.equal(world.sandbox.billed.length, 1);
    assert.equal(line.cost, world.sandbox.billed[0]!.cost);
  });
});
