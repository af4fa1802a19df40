// The generation parameters inside the bot's attachments, read back with an independent reader
// (exifreader): a real discord.js client against the Discord stand-in and the sandbox over HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from '@sdxl-kit/client';
import { assertSameImageData, parametersIn } from '../support/parameters.ts';
import { API_KEY, alice, buttonIds, buttonLabels, startWorld, type World } from './world.ts';
import type { StandinMessage } from '../../bot/test-support/discord-standin/messages.ts';

const images = (message: StandinMessage) =>
  message.attachments.filter((attachment) => !attachment.filename.includes('grid'));
const click = (world: World, message: StandinMessage, label: string) =>
  world.result(
    world.standin.clickButton(alice, message, buttonIds(message)[buttonLabels(message).indexOf(label)]!),
  );
/** The image the API sends for this request (the sandbox draws the same one again). */
const apiImage = async (world: World, input: { prompt: string; seed: number }) =>
  (await createClient({ apiKey: API_KEY, baseUrl: world.sandbox.url }).generate(input)).images[0]!.bytes;

describe('the bot writes the generation parameters into its attachments', () => {
  let world: World;
  before(async () => {
    world = await startWorld();
  });
  after(() => world.close());

  it('/imagine: each image its prompt, negative prompt, seed, batch place and request id; the pixels are the API image', async () => {
    const result = await world.result(
      world.imagine(alice, { prompt: 'a harbour at noon --no boats', samples: 2, steps: 30, seed: 555 }),
    );
    const [first, second] = images(result);
    const requestId = world.sandbox.billed.at(-1)!.requestId;
    assert.equal(
      parametersIn(first!.bytes),
      'a harbour at noon\nNegative prompt: boats\n' +
        'Steps: 30, Sampler: UniPC, CFG scale: 7.5, Seed: 555, Size: 1024x1024, Model: sdxl1.0-txt2img, ' +
        `Style: base, Denoising strength: 0.2, High noise fraction: 0.8, Refiner: yes, Batch size: 2, Batch pos: 0, Request id: ${requestId}`,
    );
    assert.match(parametersIn(second!.bytes)!, /Batch pos: 1, Request id: /);
    const client = createClient({ apiKey: API_KEY, baseUrl: world.sandbox.url });
    const sent = await client.generate({
      prompt: 'a harbour at noon',
      negativePrompt: 'boats',
      samples: 2,
      steps: 30,
      seed: 555,
    });
    await assertSameImageData(sent.images[0]!.bytes, first!.bytes);
  });

  it('V1 and Upscale 2x name the attachment they were made from', async () => {
    const result = await world.result(
      world.imagine(alice, { prompt: 'a mountain hut', samples: 2, seed: 8 }),
    );
    const [first] = images(result);
    const variation = await click(world, result, 'V1');
    assert.match(
      parametersIn(images(variation)[0]!.bytes)!,
      new RegExp(
        `^a mountain hut\\n.*Model: sdxl-img2img, Denoising strength: 0\\.75, .*Source image: ${first!.filename}$`,
      ),
    );
    const full = await click(world, result, 'U1');
    assert.match(parametersIn(full.attachments[0]!.bytes)!, /^a mountain hut\n.*Seed: 8, /);
    const upscaled = await click(world, full, 'Upscale 2x');
    assert.match(
      parametersIn(upscaled.attachments[0]!.bytes)!,
      new RegExp(`^Seed: 8, Size: 2048x2048, Model: esrgan, Scale: 2, .*Source image: ${first!.filename}$`),
    );
  });
});

describe('BOT_EMBED_PARAMETERS=false', () => {
  let world: World;
  before(async () => {
    world = await startWorld({ BOT_EMBED_PARAMETERS: 'false' });
  });
  after(() => world.close());

  it('posts the API image byte for byte, with no parameters in it', async () => {
    const result = await world.result(world.imagine(alice, { prompt: 'a private diary page', seed: 21 }));
    const [image] = images(result);
    assert.equal(parametersIn(image!.bytes), undefined);
    assert.ok(image!.bytes.equals(await apiImage(world, { prompt: 'a private diary page', seed: 21 })));
  });
});
