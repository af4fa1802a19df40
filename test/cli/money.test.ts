// --dry-run, --max-cost and SDXL_MAX_COST as a user meets them: the real `sdxl` bin in its own
// process against a sandbox over HTTP, counting what the sandbox was sent and billed.
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pngImage } from '../support/images.ts';
import { CliWorld, KEY, jsonLines, summaryOf } from './harness.ts';

/** Credits summed to the micro-credit. */
const sum = (values: number[]) => values.reduce((total, value) => total + Math.round(value * 1e6), 0) / 1e6;

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

describe('what an sdxl imagine batch will cost, and the cap it keeps to', () => {
  const world = new CliWorld();
  let file: string;
  const prompts = ['a fox', 'a hare', 'an owl', 'a lynx', 'a stag', 'a wren'];

  before(async () => {
    await world.start({ credits: 5, recordLimit: 10_000 });
    file = path.join(world.dir, 'prompts.txt');
    await writeFile(file, `${prompts.join('\n')}\n`);
  });
  beforeEach(() => {
    world.sandbox.configure({ latencyMs: 0, costs: {} });
    world.sandbox.requests.length = 0;
    world.sandbox.billed.length = 0;
  });
  after(() => world.close());

  const out = (name: string) => path.join(world.dir, name);
  const batch = (name: string, ...more: string[]) => [
    'imagine',
    '--prompts',
    file,
    '--out',
    out(name),
    '--rpm',
    '1000',
    '--json',
    ...more,
  ];
  const billedSum = () => sum(world.sandbox.billed.map((call) => call.cost));

  it('--dry-run plans the batch at the pace and reads the balance; nothing is sent and --out is not made', async () => {
    const run = await world.run([...batch('dry', '--dry-run', '-n', '2'), '--rpm', '2']);
    assert.equal(run.code, 0, run.stderr);
    // Six calls of two images at 0.00798 an image; two a minute, two in flight: the last pair starts
    // two windows (61.2 s each) after the first.
    assert.deepEqual(jsonLines(run.stdout), [
      { dryRun: true, calls: 6, images: 12, estimatedCredits: 0.09576, estimatedSeconds: 128.7, balance: 5 },
    ]);
    assert.equal(world.sandbox.requests.filter((request) => request.method === 'POST').length, 0);
    await assert.rejects(readdir(out('dry')), /ENOENT/);
  });

  it('--max-cost below the estimate exits 2 naming the cap and the estimate, before anything is sent', async () => {
    const run = await world.run(batch('under', '--max-cost', '0.04'));
    assert.equal(run.code, 2);
    const [line] = jsonLines(run.stdout) as unknown as [{ error: { code: string; message: string } }];
    assert.equal(line.error.code, 'invalid_request');
    assert.match(
      line.error.message,
      /^--max-cost: this run is estimated at 0\.04788 credits \(6 calls, 6 images\), over the cap of 0\.04\. Nothing was sent\./,
    );
    assert.equal(world.sandbox.requests.length, 0);
  });

  it('a cap reached mid-batch sends no call past it: the prompts left are budget_exceeded, exit 6, and the summary spent is what the sandbox billed', async () => {
    // The account is billed 0.01 an image, above the published 0.00798: the plan (0.04788) fits the
    // cap of 0.05, and once the first call reports the real price each hold is 0.01, so the sixth
    // call would pass the cap and is not sent.
    world.sandbox.configure({ costs: { 'sdxl1.0-txt2img': 0.01 } });
    const run = await world.run(batch('capped', '--max-cost', '0.05', '--concurrency', '1'));
    assert.equal(run.code, 6, run.stdout);
    const lines = jsonLines(run.stdout) as unknown as Array<{
      error?: { code: string; message: string };
      cost: number | null;
    }>;
    assert.equal(world.sandbox.billed.length, 5);
    assert.equal(lines.filter((line) => !line.error).length, 5);
    const refused = lines.filter((line) => line.error?.code === 'budget_exceeded');
    assert.equal(refused.length, 1);
    assert.match(
      refused[0]!.error!.message,
      /^--max-cost is 0\.05 credits: 0\.05 spent, so this call \(about 0\.01\) does not fit/,
    );
    assert.equal(sum(lines.map((line) => line.cost ?? 0)), billedSum());
    assert.deepEqual(summaryOf(run.stdout), { prompts: 6, images: 5, spent: 0.05, skipped: 1, failed: 0 });
    assert.equal(billedSum(), 0.05);

    // A dry run of the same batch counts only what is left, at the price the run before was billed
    // (0.01, above the published 0.00798); the rerun's summary counts both runs.
    const plan = await world.run(batch('capped', '--dry-run'));
    assert.deepEqual(jsonLines(plan.stdout)[0], {
      dryRun: true,
      calls: 1,
      images: 1,
      estimatedCredits: 0.01,
      estimatedSeconds: 6.3,
      balance: world.sandbox.credits,
      alreadyDone: 5,
    });
    const rest = await world.run(batch('capped'));
    assert.equal(rest.code, 0, rest.stdout);
    assert.deepEqual(summaryOf(rest.stdout), {
      prompts: 6,
      images: 6,
      spent: billedSum(),
      skipped: 0,
      failed: 0,
    });
    assert.equal(world.sandbox.billed.length, 6);
  });

  it('a price far above the published one passes the cap by no more than the calls in flight when it was reached, and the next run plans at it', async () => {
    // A first run on this account (a cache of its own): nothing billed yet, so the published price.
    const env = { ...world.env, SDXL_CACHE_DIR: path.join(world.dir, 'dear-cache') };
    // Billed 0.03 an image: the first two calls go out together at the published estimate (0.00798
    // each held), are billed 0.06 together, and every call after them is held back.
    world.sandbox.configure({ costs: { 'sdxl1.0-txt2img': 0.03 }, latencyMs: 300 });
    const run = await world.run(batch('dear', '--max-cost', '0.05', '--concurrency', '2'), env);
    assert.equal(run.code, 6, run.stdout);
    assert.equal(world.sandbox.billed.length, 2, 'the two calls in flight when the cap was reached');
    assert.deepEqual(summaryOf(run.stdout), { prompts: 6, images: 2, spent: 0.06, skipped: 4, failed: 0 });

    // The next night's run knows the account's price: its plan is at 0.03 an image, and a cap the
    // published price would have let through stops it before anything is sent.
    const plan = await world.run(batch('dear-next', '--dry-run'), env);
    assert.equal(JSON.parse(plan.stdout).estimatedCredits, 0.18);
    const capped = await world.run(batch('dear-next', '--max-cost', '0.1'), env);
    assert.equal(capped.code, 2, capped.stdout);
    assert.match(capped.stdout, /0\.18/);
    assert.equal(world.sandbox.billed.length, 2, 'nothing more was sent');
    // Kept under a hash of the address and the key: the key is not in the cache.
    const kept = await readFile(path.join(world.dir, 'dear-cache', 'prices.json'), 'utf8');
    assert.ok(!kept.includes(KEY) && !kept.includes(world.sandbox.url), kept);
    // It is only a cache: unreadable, the published price again.
    await writeFile(path.join(world.dir, 'dear-cache', 'prices.json'), '{"accounts": {"x": ');
    const fresh = await world.run(batch('dear-next', '--dry-run'), env);
    assert.equal(JSON.parse(fresh.stdout).estimatedCredits, 0.04788);
  });
});
