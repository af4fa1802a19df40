import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CliWorld, jsonLines, until } from './harness.ts';

describe('sdxl imagine --prompts: a batch that stops', () => {
  const world = new CliWorld();
  before(() => world.start());
  after(() => world.close());

  it('lets calls already sent finish and save when the account runs dry; only unsent prompts are skipped', async () => {
    const file = path.join(world.dir, 'five.txt');
    await writeFile(file, 'one\ntwo\nthree\nfour\nfive\n');
    // The first call to arrive is refused at once while the other two are still being made.
    world.sandbox.configure({ latencyMs: 1000, statuses: [406] });
    const run = await world.run([
      'imagine',
      '--prompts',
      file,
      '--json',
      '--concurrency',
      '3',
      '--rpm',
      '60',
      '-o',
      path.join(world.dir, 'out'),
    ]);
    assert.equal(run.code, 4, run.stderr);
    const lines = jsonLines(run.stdout);
    assert.equal(lines.length, 5);
    const generations = world.sandbox.requests.filter(
      (request) => request.method === 'POST' && /^\/v[12]\//.test(request.path),
    );
    assert.equal(generations.length, 3, 'three were sent');
    const refused = lines.filter((line) => line.error?.code === 'insufficient_credits');
    const saved = lines.filter((line) => !line.error && line.images.length === 1);
    const skipped = lines.filter((line) => line.error?.code === 'skipped');
    assert.equal(refused.length, 1);
    assert.equal(saved.length, 2, 'the two billed calls were saved');
    for (const line of saved) assert.ok((await stat(line.images[0]!.path)).size > 1000);
    assert.equal(skipped.length, 2);
    assert.deepEqual(skipped.map((line) => line.prompt).sort(), ['five', 'four']);
    for (const line of skipped) assert.match(line.error!.message, /^Not sent/);
  });

  it('says a skipped prompt was not sent, without calling it an error of its own', async () => {
    const file = path.join(world.dir, 'two.txt');
    await writeFile(file, 'one\ntwo\n');
    world.sandbox.configure({ latencyMs: 0, statuses: [406] });
    const run = await world.run(['imagine', '--prompts', file, '--concurrency', '1', '-o', world.dir]);
    assert.equal(run.code, 4);
    assert.match(run.stderr, /^one: Error: 406/m);
    assert.match(run.stderr, /^two: Not sent: the batch stopped after "406/m);
    assert.match(run.stdout, /0 of 2 prompts done/);
  });
});

describe('sdxl imagine --prompts: memory', () => {
  const world = new CliWorld();
  before(() => world.start());
  after(() => world.close());

  it('runs a batch with V8\u2019s young generation capped, in the same process, output unchanged', async () => {
    const file = path.join(world.dir, 'two.txt');
    await writeFile(file, 'one\ntwo\n');
    world.sandbox.configure({ latencyMs: 600 });
    const started = world.spawn(['imagine', '--prompts', file, '--json', '--rpm', '60', '-o', world.dir]);
    // Read while it works: the pid the caller holds is the batch itself, now with the flag.
    await until(() => world.sandbox.requests.some((request) => request.method === 'POST'), 'a call');
    const command =
      process.platform === 'win32' ? '' : await readFile(`/proc/${started.child.pid}/cmdline`, 'utf8');
    const run = await started.done;
    assert.equal(run.code, 0, run.stderr);
    assert.equal(jsonLines(run.stdout).filter((line) => line.images.length === 1).length, 2);
    if (process.platform === 'linux')
      assert.ok(command.split('\0').includes('--max-semi-space-size=4'), command);
  });
});
