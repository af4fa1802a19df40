// The generation parameters inside the n8n node's binary outputs, read back with an independent reader
// (exifreader), through the built node against the sandbox over real HTTP.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createClient } from '@sdxl-kit/client';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { pngImage } from '../../support/images.ts';
import { assertSameImageData, parametersIn } from '../../support/parameters.ts';
import { Sdxl, runNode, type INodeExecutionData, type RunOptions } from './harness.ts';

const KEY = 'sk-n8n-metadata-test-0c4d2e9b71';
Sdxl.rateWindowMs = 1_000;

let sandbox: Sandbox;
before(async () => {
  sandbox = await startSandbox({ apiKey: KEY, credits: 100 });
});
after(() => sandbox.close());
beforeEach(() => {
  sandbox.billed.length = 0;
});

const run = (overrides: Partial<RunOptions> & Pick<RunOptions, 'parameters'>) =>
  runNode({ credentials: { apiKey: KEY, baseUrl: sandbox.url }, ...overrides });
const binaryOf = (item: INodeExecutionData) => Buffer.from(item.binary!.data!.data, 'base64');
/** The image the API sends for this request (the sandbox draws the same one again). */
const apiImage = async (input: Record<string, unknown>) =>
  (await createClient({ apiKey: KEY, baseUrl: sandbox.url }).generate(input as never)).images[0]!.bytes;

describe('n8n node: generation parameters in the images', () => {
  it("Generate Image: the binary file holds AUTOMATIC1111's parameters; the image is the API's", async () => {
    const { items } = await run({
      parameters: {
        prompt: 'a lighthouse at dusk',
        negativePrompt: 'fog',
        options: { seed: 1234, steps: 30 },
      },
    });
    const bytes = binaryOf(items[0]!);
    assert.equal(
      parametersIn(bytes),
      'a lighthouse at dusk\nNegative prompt: fog\n' +
        'Steps: 30, Sampler: UniPC, CFG scale: 7.5, Seed: 1234, Size: 1024x1024, Model: sdxl1.0-txt2img, ' +
        `Style: base, Denoising strength: 0.2, High noise fraction: 0.8, Refiner: yes, Request id: ${sandbox.billed[0]!.requestId}`,
    );
    await assertSameImageData(
      await apiImage({ prompt: 'a lighthouse at dusk', negativePrompt: 'fog', seed: 1234, steps: 30 }),
      bytes,
    );
  });

  it('base64 in the JSON carries them too, one text per image of a batch', async () => {
    const { items } = await run({
      parameters: { prompt: 'two owls', options: { samples: 2, seed: 5, returnBase64: true } },
    });
    const texts = items.map((item) => parametersIn(Buffer.from(item.json.base64 as string, 'base64')));
    assert.match(texts[0]!, /^two owls\n.*Seed: 5, .*Batch size: 2, Batch pos: 0, Request id: /);
    assert.match(texts[1]!, /Batch pos: 1, /);
  });

  it('Embed Generation Parameters off (also as the text "false"): the bytes are exactly the API image', async () => {
    for (const embedParameters of [false, 'false']) {
      const { items } = await run({
        parameters: { prompt: 'a private prompt', options: { seed: 9, embedParameters } },
      });
      const bytes = binaryOf(items[0]!);
      assert.equal(parametersIn(bytes), undefined);
      assert.ok(bytes.equals(await apiImage({ prompt: 'a private prompt', seed: 9 })));
    }
  });

  it("Vary Image names the input binary's file name as the source image", async () => {
    const { items } = await run({
      items: [
        {
          json: {},
          binary: {
            data: {
              data: (await pngImage(64, 48)).toString('base64'),
              mimeType: 'image/png',
              fileName: 'photo.png',
            },
          },
        },
      ],
      parameters: {
        operation: 'varyImage',
        prompt: 'as a watercolour',
        options: { strength: 0.6, seed: 42 },
      },
    });
    assert.match(
      parametersIn(binaryOf(items[0]!))!,
      /^as a watercolour\nSeed: 42, Size: 64x48, Model: sdxl-img2img, Denoising strength: 0\.6, Request id: [^,]+, Source image: photo\.png$/,
    );
  });
});
