// The generation parameters inside the files sdxl writes, read back with an independent reader
// (exifreader), from the real bin against a sandbox over HTTP.
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createClient } from '@sdxl-kit/client';
import { pngImage } from '../support/images.ts';
import { assertSameImageData, parametersIn } from '../support/parameters.ts';
import { CliWorld, KEY, jsonLines } from './harness.ts';

describe('sdxl writes the generation parameters into its images', () => {
  const world = new CliWorld();
  let photo: string;

  before(async () => {
    await world.start();
    photo = path.join(world.dir, 'holiday-photo.png');
    await writeFile(photo, await pngImage(80, 60));
  });
  beforeEach(() => {
    world.sandbox.billed.length = 0;
  });
  after(() => world.close());

  const out = (name: string) => path.join(world.dir, name);
  const onlyFile = async (dir: string) => {
    const files = (await readdir(dir)).filter((name) => !name.startsWith('.'));
    assert.equal(files.length, 1, files.join(', '));
    return readFile(path.join(dir, files[0]!));
  };
  /** The sandbox's image for a request, as the API sends it (the sandbox draws the same image again). */
  const apiImage = async (input: { prompt: string; seed: number; steps?: number }) => {
    const client = createClient({ apiKey: KEY, baseUrl: world.sandbox.url });
    return (await client.generate(input)).images[0]!.bytes;
  };

  it('imagine: prompt, negative prompt, settings, seed, size, model and request id, in the API image', async () => {
    const run = await world.run([
      'imagine',
      'a lighthouse, at dusk',
      '--negative-prompt',
      'people',
      '--steps',
      '30',
      '--seed',
      '7',
      '--out',
      out('imagine'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const [call] = world.sandbox.billed;
    const file = await onlyFile(out('imagine'));
    assert.equal(
      parametersIn(file),
      [
        'a lighthouse, at dusk',
        'Negative prompt: people',
        'Steps: 30, Sampler: UniPC, CFG scale: 7.5, Seed: 7, Size: 1024x1024, Model: sdxl1.0-txt2img, ' +
          `Style: base, Denoising strength: 0.2, High noise fraction: 0.8, Refiner: yes, Request id: ${call!.requestId}`,
      ].join('\n'),
    );
    await assertSameImageData(
      await apiImage({
        prompt: 'a lighthouse, at dusk',
        seed: 7,
        steps: 30,
        negativePrompt: 'people',
      } as never),
      file,
    );
  });

  it('imagine --no-metadata writes the API image byte for byte, with nothing in it', async () => {
    const run = await world.run([
      'imagine',
      'a quiet pond',
      '--seed',
      '8',
      '--no-metadata',
      '--out',
      out('off'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const file = await onlyFile(out('off'));
    assert.equal(parametersIn(file), undefined);
    assert.ok(file.equals(await apiImage({ prompt: 'a quiet pond', seed: 8 })));
  });

  it('a --prompts batch: each file carries its own prompt, options and seed', async () => {
    const prompts = path.join(world.dir, 'prompts.jsonl');
    await writeFile(
      prompts,
      '{"prompt": "a red fox", "seed": 1, "steps": 20}\n{"prompt": "a blue whale", "seed": 2, "guidanceScale": 5}\n',
    );
    const run = await world.run(['imagine', '--prompts', prompts, '--json', '--out', out('batch')]);
    assert.equal(run.code, 0, run.stderr);
    const lines = jsonLines(run.stdout) as unknown as { prompt: string; images: { path: string }[] }[];
    const texts = new Map(
      await Promise.all(
        lines.map(async (line) => [line.prompt, parametersIn(await readFile(line.images[0]!.path))] as const),
      ),
    );
    assert.match(
      texts.get('a red fox')!,
      /^a red fox\nSteps: 20, Sampler: UniPC, CFG scale: 7\.5, Seed: 1, /,
    );
    assert.match(
      texts.get('a blue whale')!,
      /^a blue whale\nSteps: 25, Sampler: UniPC, CFG scale: 5, Seed: 2, /,
    );
  });

  it('vary: only the settings sent (no default is guessed), and the source image by file name only', async () => {
    const run = await world.run([
      'vary',
      photo,
      'as a watercolour',
      '--seed',
      '3',
      '--steps',
      '30',
      '--strength',
      '0.6',
      '--out',
      out('vary'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const text = parametersIn(await onlyFile(out('vary')));
    assert.match(
      text!,
      /^as a watercolour\nSteps: 30, Seed: 3, Size: 80x60, Model: sdxl-img2img, Denoising strength: 0\.6, /,
    );
    assert.match(text!, /, Source image: holiday-photo\.png$/);
    assert.ok(!text!.includes(world.dir), 'no folder of the user in the file');
  });

  it('upscale --format webp: the WebP says what it was made from and its new size', async () => {
    const run = await world.run(['upscale', photo, '--scale', '2', '--format', 'webp', '--out', out('up')]);
    assert.equal(run.code, 0, run.stderr);
    const text = parametersIn(await onlyFile(out('up')));
    assert.match(
      text!,
      /^Size: 160x120, Model: esrgan, Scale: 2, Output format: webp, .*Source image: holiday-photo\.png$/,
    );
  });

  it('upscale --no-metadata leaves the WebP as the API sent it', async () => {
    const run = await world.run([
      'upscale',
      photo,
      '--format',
      'webp',
      '--no-metadata',
      '--out',
      out('up-off'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(parametersIn(await onlyFile(out('up-off'))), undefined);
  });
});
