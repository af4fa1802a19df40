import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CliWorld } from './harness.ts';

describe('sdxl imagine --prompts: the file', () => {
  const world = new CliWorld();
  before(() => world.start());
  after(() => world.close());

  it('refuses a UTF-16 file (PowerShell ">", Notepad "Unicode") before sending anything', async () => {
    const file = path.join(world.dir, 'utf16.txt');
    await writeFile(
      file,
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a red fox\r\nblue whale\r\n', 'utf16le')]),
    );
    const run = await world.run(['imagine', '--prompts', file, '-o', world.dir]);
    assert.equal(run.code, 2);
    assert.ok(run.stderr.includes(file), run.stderr);
    assert.match(run.stderr, /line 1/);
    assert.match(run.stderr, /UTF-16/);
    assert.match(run.stderr, /UTF-8/);
    assert.equal(world.sandbox.requests.length, 0);
  });

  it('refuses NUL bytes (UTF-16 without a mark), naming the line', async () => {
    const file = path.join(world.dir, 'nul.txt');
    await writeFile(file, Buffer.concat([Buffer.from('fine\n# note\n'), Buffer.from('a fox\n', 'utf16le')]));
    const run = await world.run(['imagine', '--prompts', file, '-o', world.dir]);
    assert.equal(run.code, 2);
    assert.ok(run.stderr.includes(file), run.stderr);
    assert.match(run.stderr, /line 3/);
    assert.match(run.stderr, /UTF-8/);
    assert.equal(world.sandbox.requests.length, 0);
  });
});
