import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CliWorld, jsonLines, until } from './harness.ts';

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

  it('--timeout bounds one attempt, and the hint names --timeout', async () => {
    world.sandbox.configure({ latencyMs: 3000 });
    const run = await world.run(['imagine', 'a slow fox', '--timeout', '1', '-o', world.dir]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /--timeout/);
    const bad = await world.run(['imagine', 'a fox', '--timeout', '0', '-o', world.dir]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--timeout: 0 is not allowed; allowed: .*1 to 600/);
  });

  it('hints at the base URL that was used: --base-url when given', async () => {
    const run = await world.run([
      'imagine',
      'a fox',
      '--base-url',
      `${world.sandbox.url}/nowhere`,
      '-o',
      world.dir,
    ]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /404/);
    assert.match(run.stderr, /--base-url/);
    assert.doesNotMatch(run.stderr, /SDXL_BASE_URL/);
    const fromEnv = await world.run(['imagine', 'a fox', '-o', world.dir], {
      ...world.env,
      SDXL_BASE_URL: `${world.sandbox.url}/nowhere`,
    });
    assert.match(fromEnv.stderr, /SDXL_BASE_URL/);
  });

  it('refuses --base-url with --sandbox', async () => {
    const run = await world.run(
      ['imagine', 'a fox', '--sandbox', '--base-url', world.sandbox.url, '-o', world.dir],
      {},
    );
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--base-url/);
    assert.match(run.stderr, /--sandbox/);
  });

  it('--rpm paces a --sandbox run too', async () => {
    const file = path.join(world.dir, 'two.txt');
    await writeFile(file, 'first\nsecond\n');
    let stdout = '';
    const started = world.spawn(
      [
        'imagine',
        '--sandbox',
        '--rpm',
        '1',
        '--prompts',
        file,
        '--json',
        '-o',
        path.join(world.dir, 'paced'),
      ],
      {},
    );
    started.child.stdout!.on('data', (chunk) => (stdout += chunk));
    await until(() => stdout.includes('\n'), 'the first image');
    // With one request a minute the second prompt is still waiting for its turn.
    started.child.kill('SIGTERM');
    const run = await started.done;
    assert.equal(run.code, 143, run.stderr);
    const lines = jsonLines(run.stdout);
    assert.equal(lines.filter((line) => !line.error).length, 1, run.stdout);
    assert.equal(lines.filter((line) => line.error?.code === 'skipped').length, 1, run.stdout);
  });
});
