// The generation parameters inside the Node-RED node's image Buffers, read back with an independent
// reader (exifreader), in a real Node-RED runtime against the sandbox over HTTP.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { createClient } from '@sdxl-kit/client';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { pngImage } from '../../support/images.ts';
import { assertSameImageData, parametersIn } from '../../support/parameters.ts';
import { NODES, helper, nodeRedVersion, type FlowNode } from './harness.ts';

const API_KEY = 'nr-metadata-key-9e2b7c41a0';
type Msg = { payload: Buffer | Buffer[]; sdxl: Record<string, unknown> };

let sandbox: Sandbox;
before(async () => {
  sandbox = await startSandbox({ port: 0, apiKey: API_KEY });
});
after(() => sandbox.close());
afterEach(async () => {
  await helper.unload();
  sandbox.billed.length = 0;
});

async function load(node: Record<string, unknown>): Promise<void> {
  const flow: FlowNode[] = [
    { id: 'tab', type: 'tab', label: 'sdxl' },
    { id: 'account', type: 'sdxl-config', name: 'test', baseUrl: sandbox.url, maxInFlight: '2' },
    { id: 'gen', type: 'sdxl', z: 'tab', account: 'account', prompt: '', ...node, wires: [['images'], []] },
    { id: 'images', type: 'helper', z: 'tab' },
  ];
  await helper.load(NODES, flow, { account: { apiKey: API_KEY } });
}

function next(count = 1): Promise<Msg[]> {
  const messages: Msg[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`got ${messages.length} of ${count} messages`)), 10_000);
    helper.getNode('images')!.on('input', (msg: never) => {
      messages.push(msg);
      if (messages.length === count) {
        clearTimeout(timer);
        resolve(messages);
      }
    });
  });
}

const apiImage = async (input: Record<string, unknown>) =>
  (await createClient({ apiKey: API_KEY, baseUrl: sandbox.url }).generate(input as never)).images[0]!.bytes;

describe(`Node-RED ${nodeRedVersion}: generation parameters in the image Buffers`, () => {
  it('a node from a flow saved before the switch writes them; the pixels are the API image', async () => {
    await load({ output: 'messages' });
    const images = next();
    helper.getNode('gen')!.receive({ payload: 'a tram in the rain', sdxl: { seed: 31, steps: 40 } });
    const [msg] = await images;
    const bytes = msg!.payload as Buffer;
    assert.equal(
      parametersIn(bytes),
      'a tram in the rain\nSteps: 40, Sampler: UniPC, CFG scale: 7.5, Seed: 31, Size: 1024x1024, Model: sdxl1.0-txt2img, ' +
        `Style: base, Denoising strength: 0.2, High noise fraction: 0.8, Refiner: yes, Request id: ${msg!.sdxl.requestId}`,
    );
    assert.equal(msg!.sdxl.requestId, sandbox.billed[0]!.requestId);
    await assertSameImageData(await apiImage({ prompt: 'a tram in the rain', seed: 31, steps: 40 }), bytes);
  });

  it('one message with all images: each Buffer its own seed and place', async () => {
    await load({ output: 'array', embedParameters: true });
    const images = next();
    helper.getNode('gen')!.receive({ payload: 'two kites', sdxl: { samples: 2, seed: 4 } });
    const [msg] = await images;
    const texts = (msg!.payload as Buffer[]).map(parametersIn);
    assert.match(texts[0]!, /^two kites\n.*Seed: 4, .*Batch size: 2, Batch pos: 0, /);
    assert.match(texts[1]!, /Batch pos: 1, /);
  });

  it('Metadata unticked: the Buffer is exactly the API image', async () => {
    await load({ output: 'messages', embedParameters: false });
    const images = next();
    helper.getNode('gen')!.receive({ payload: 'a private prompt', sdxl: { seed: 12 } });
    const [msg] = await images;
    assert.equal(parametersIn(msg!.payload as Buffer), undefined);
    assert.ok((msg!.payload as Buffer).equals(await apiImage({ prompt: 'a private prompt', seed: 12 })));
  });

  it("vary names msg.filename (a File In node's) as the source image, without its folder", async () => {
    await load({ operation: 'vary', varyPrompt: 'in winter', varyStrength: '0.4' });
    const images = next();
    helper
      .getNode('gen')!
      .receive({ payload: await pngImage(64, 48), filename: '/home/ana/pictures/street.png' });
    const [msg] = await images;
    assert.match(
      parametersIn(msg!.payload as Buffer)!,
      /^in winter\nSeed: \d+, Size: 64x48, Model: sdxl-img2img, Denoising strength: 0\.4, Request id: [^,]+, Source image: street\.png$/,
    );
  });
});
