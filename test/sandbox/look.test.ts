// The sandbox's text-to-image pictures follow every setting that changes a real one, so a grid of
// settings tried offline shows its differences. Over HTTP, through the client, as a user would.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { createClient, type SdxlClient } from '@sdxl-kit/client';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';

let sandbox: Sandbox;
let client: SdxlClient;
before(async () => {
  sandbox = await startSandbox({ port: 0, apiKey: 'look-key' });
  client = createClient({ apiKey: 'look-key', baseUrl: sandbox.url });
});
after(() => sandbox.close());

/** The share of pixel values (full size) that differ by more than a JPEG's noise, 0 to 1. */
async function difference(a: Buffer, b: Buffer): Promise<number> {
  const pixels = (bytes: Buffer) => sharp(bytes).removeAlpha().raw().toBuffer();
  const [left, right] = await Promise.all([pixels(a), pixels(b)]);
  let differing = 0;
  for (let i = 0; i < left.length; i++) if (Math.abs(left[i]! - right[i]!) > 6) differing++;
  return differing / left.length;
}

const base = { prompt: 'a lighthouse at dusk', seed: 7 };

describe('sandbox pictures follow the settings', () => {
  const changes: [string, Record<string, unknown>][] = [
    ['fewer steps', { steps: 20 }],
    ['more steps', { steps: 60 }],
    ['low guidance', { guidanceScale: 2 }],
    ['high guidance', { guidanceScale: 15 }],
    ['another scheduler', { scheduler: 'DDIM' }],
    ['a style', { style: 'anime' }],
    ['a negative prompt', { negativePrompt: 'people' }],
    ['another strength', { strength: 0.8 }],
    ['another high-noise fraction', { highNoiseFraction: 0.5 }],
    ['no refiner', { refiner: false }],
  ];
  for (const [what, change] of changes) {
    it(`sdxl1.0-txt2img: ${what} makes a visibly different picture`, async () => {
      const [plain, changed] = await Promise.all([
        client.generate(base),
        client.generate({ ...base, ...change }),
      ]);
      const delta = await difference(plain.images[0]!.bytes, changed.images[0]!.bytes);
      assert.ok(delta > 0.01, `${(delta * 100).toFixed(2)}% of the pixel values differ`);
    });
  }

  it('the same request draws the same bytes; the default settings spelled out draw the same as left out', async () => {
    const [once, again, spelled] = await Promise.all([
      client.generate({ ...base, steps: 40, guidanceScale: 10 }),
      client.generate({ ...base, steps: 40, guidanceScale: 10 }),
      client.generate({ ...base, steps: 25, guidanceScale: 7.5, scheduler: 'UniPC', style: 'base' }),
    ]);
    assert.ok(once.images[0]!.bytes.equals(again.images[0]!.bytes));
    assert.ok(spelled.images[0]!.bytes.equals((await client.generate(base)).images[0]!.bytes));
  });

  for (const [what, change] of [
    ['steps', { steps: 50 }],
    ['guidance', { guidanceScale: 15 }],
    ['negative prompt', { negativePrompt: 'people' }],
  ] as const) {
    it(`ssd-1b: ${what} makes a visibly different picture`, async () => {
      const [plain, changed] = await Promise.all([
        client.run('ssd-1b', base),
        client.run('ssd-1b', { ...base, ...change }),
      ]);
      const delta = await difference(plain.images[0]!.bytes, changed.images[0]!.bytes);
      assert.ok(delta > 0.01, `${(delta * 100).toFixed(2)}% of the pixel values differ`);
    });
  }
});
