import assert from 'node:assert/strict';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CliWorld, jsonLines, until } from './harness.ts';

describe('sdxl imagine: where the images go', () => {
  const world = new CliWorld();
  before(() => world.start());
  beforeEach(() => world.sandbox.configure({ latencyMs: 0, statuses: [], credits: 100 }));
  after(() => world.close());

  it('refuses an --out that cannot hold files before spending anything (exit 2, naming --out and the folder)', async () => {
    const file = path.join(world.dir, 'notadir');
    await writeFile(file, '');
    const sent = world.sandbox.requests.length;
    const run = await world.run(['imagine', 'a fox', '--json', '-o', file]);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.equal(world.sandbox.requests.length, sent, 'nothing was sent, so nothing was billed');
    const [line] = jsonLines(run.stdout);
    assert.equal(line!.error!.code, 'invalid_request');
    assert.match(line!.error!.message, /--out/);
    assert.ok(line!.error!.message.includes(file), line!.error!.message);
    const human = await world.run(['imagine', 'a fox', '-o', path.join(file, 'below')]);
    assert.equal(human.code, 2);
    assert.match(human.stderr, /--out/);
    assert.equal(world.sandbox.requests.length, sent);
  });

  it('reports an image it could not save as an error, keeps it elsewhere and says it was billed', async () => {
    const out = path.join(world.dir, 'vanishing');
    world.sandbox.configure({ latencyMs: 1500 });
    const sent = world.sandbox.requests.length;
    const started = world.spawn(['imagine', 'lost fox', '--seed', '12', '--json', '-o', out]);
    await until(() => world.sandbox.requests.length > sent, 'the call to reach the sandbox');
    // The folder is replaced by a file while the billed call runs: the save must fail.
    await rm(out, { recursive: true, force: true });
    await writeFile(out, 'in the way');
    const run = await started.done;
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const [line] = jsonLines(run.stdout);
    assert.equal(line!.error!.code, 'write_failed');
    assert.ok(line!.error!.message.includes(out), line!.error!.message);
    assert.match(line!.error!.message, /billed/);
    assert.equal(line!.images.length, 1, 'the image is listed where it was kept');
    const kept = line!.images[0]!.path;
    assert.ok(!kept.startsWith(out), kept);
    assert.equal((await stat(kept)).size, line!.images[0]!.bytes);
    assert.ok(line!.error!.message.includes(kept), line!.error!.message);
    await rm(kept);
    assert.equal(await readFile(out, 'utf8'), 'in the way', 'nothing was written over');
  });

  it('says so on stderr, not "Saved", when an image could not be saved', async () => {
    const out = path.join(world.dir, 'vanishing-human');
    world.sandbox.configure({ latencyMs: 1500 });
    const sent = world.sandbox.requests.length;
    const started = world.spawn(['imagine', 'lost owl', '--seed', '13', '-o', out]);
    await until(() => world.sandbox.requests.length > sent, 'the call to reach the sandbox');
    await rm(out, { recursive: true, force: true });
    await writeFile(out, 'in the way');
    const run = await started.done;
    assert.equal(run.code, 1);
    assert.doesNotMatch(run.stdout, /Saved 0/);
    assert.match(run.stderr, /could not save/i);
    assert.ok(run.stderr.includes(out), run.stderr);
    const kept = /saved it to (.+?) instead/.exec(run.stderr)?.[1];
    assert.ok(kept, run.stderr);
    await rm(kept);
  });
});
