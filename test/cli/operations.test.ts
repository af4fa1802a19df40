// sdxl vary, inpaint, upscale and resume, run as a user would (the real bin in its own process)
// against a sandbox over HTTP.
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import sharp from 'sharp';
import { createClient } from '@sdxl-kit/client';
import { maskImage, pngImage } from '../support/images.ts';
import { CliWorld, KEY, jsonLines } from './harness.ts';

describe('sdxl vary, inpaint, upscale and resume', () => {
  const world = new CliWorld();
  let photo: string;
  let mask: string;
  let smallMask: string;
  let textFile: string;

  before(async () => {
    await world.start();
    photo = path.join(world.dir, 'photo.png');
    mask = path.join(world.dir, 'mask.png');
    smallMask = path.join(world.dir, 'small-mask.png');
    textFile = path.join(world.dir, 'notes.txt');
    await writeFile(photo, await pngImage(80, 60));
    await writeFile(mask, await maskImage(80, 60, [0, 0, 40, 60]));
    await writeFile(smallMask, await maskImage(40, 30, [0, 0, 10, 10]));
    await writeFile(textFile, 'not an image\n');
  });
  beforeEach(() => {
    world.sandbox.configure({ latencyMs: 0 });
    world.sandbox.requests.length = 0;
  });
  after(() => world.close());

  const out = (name: string) => path.join(world.dir, name);
  const billed = () =>
    world.sandbox.requests.filter((request) => request.method === 'POST' && /^\/v[12]\//.test(request.path));

  it('vary writes a variation and prints where, with the seed and credits', async () => {
    const run = await world.run([
      'vary',
      photo,
      'as an oil painting',
      '--strength',
      '0.6',
      '--seed',
      '9',
      '--out',
      out('vary'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Saved 1 image \(seed 9\):\n {2}.*as-an-oil-painting-9-0\.jpg/);
    assert.match(run.stdout, /credits left/);
    const [file] = await readdir(out('vary'));
    const metadata = await sharp(path.join(out('vary'), file!)).metadata();
    assert.equal(metadata.format, 'jpeg');
  });

  it('upscale --scale 4 --format png writes a PNG four times the size, named after the source', async () => {
    const run = await world.run([
      'upscale',
      photo,
      '--scale',
      '4',
      '--format',
      'png',
      '--json',
      '--out',
      out('up'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const [line] = jsonLines(run.stdout);
    assert.equal(line!.images.length, 1);
    assert.match(line!.images[0]!.path, /photo-x4-0\.png$/);
    const metadata = await sharp(line!.images[0]!.path).metadata();
    assert.deepEqual([metadata.format, metadata.width, metadata.height], ['png', 320, 240]);
  });

  it('inpaint with --mask repaints and saves; --async reports the request id in --json', async () => {
    const run = await world.run([
      'inpaint',
      photo,
      '--mask',
      mask,
      'a red door',
      '--async',
      '--json',
      '--out',
      out('inpaint'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const [line] = jsonLines(run.stdout) as unknown as [{ requestId: string; images: unknown[] }];
    assert.match(line.requestId, /^[0-9a-f-]{36}$/);
    assert.equal(line.images.length, 1);
    assert.equal(world.sandbox.requests.filter((request) => request.path === '/v2/sdxl-inpaint').length, 1);
  });

  for (const [what, args, pattern] of [
    ['scale 3', ['upscale', 'PHOTO', '--scale', '3'], /--scale: 3 is not allowed; allowed: 2, 4 or 8/],
    [
      'a text file as IMAGE',
      ['vary', 'TEXT', 'x'],
      /IMAGE "[^"]*notes\.txt": \d+ bytes is not a JPEG, PNG or WebP image/,
    ],
    [
      'a text file to upscale',
      ['upscale', 'TEXT'],
      /IMAGE "[^"]*notes\.txt": \d+ bytes is not a JPEG, PNG or WebP image/,
    ],
    ['a missing file', ['vary', 'nope.png', 'x'], /IMAGE: cannot read "nope.png" \(no such file\)/],
    [
      'a mask of another size',
      ['inpaint', 'PHOTO', '--mask', 'SMALL', 'x'],
      /--mask "[^"]*small-mask\.png": a 40x30 PNG is not allowed; allowed: a mask of the image's size, 80x60/,
    ],
    ['no mask', ['inpaint', 'PHOTO', 'x'], /--mask is required/],
    ['no prompt', ['vary', 'PHOTO'], /No prompt/],
    [
      'a strength above 1',
      ['vary', 'PHOTO', 'x', '--strength', '1.5'],
      /--strength: 1.5 is not allowed; allowed: a number from 0 to 1/,
    ],
  ] as const) {
    it(`refuses ${what} with exit 2 before anything is sent`, async () => {
      const resolved = args.map((arg) =>
        arg === 'PHOTO' ? photo : arg === 'TEXT' ? textFile : arg === 'SMALL' ? smallMask : arg,
      );
      const run = await world.run([...resolved, '--out', out('refused')]);
      assert.equal(run.code, 2, `${run.stdout}${run.stderr}`);
      assert.match(run.stderr, pattern);
      assert.equal(billed().length, 0);
      assert.equal(world.sandbox.requests.filter((request) => request.path === '/upload-asset').length, 0);
    });
  }

  it('resume collects a submitted request without submitting again', async () => {
    world.sandbox.configure({ latencyMs: 200 });
    const client = createClient({ apiKey: KEY, baseUrl: world.sandbox.url });
    const ticket = await client.submit('sdxl1.0-txt2img', { prompt: 'collected later', seed: 11 });
    const run = await world.run(['resume', ticket.requestId, '--out', out('resume')]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Saved 1 image \(seed 11\)/);
    assert.equal(
      world.sandbox.requests.filter((request) => request.path === '/v2/sdxl1.0-txt2img').length,
      1,
    );
    const unknown = await world.run([
      'resume',
      '00000000-0000-4000-8000-000000000000',
      '--out',
      out('resume'),
    ]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Submit again|no longer knows/);
  });
});
