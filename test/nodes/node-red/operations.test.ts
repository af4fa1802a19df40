// Vary, inpaint and upscale in a real Node-RED runtime against the sandbox over HTTP: Buffers in and
// out, a generate → upscale chain with nothing between, every refusal before anything is sent, the
// async API's status, a stop while polling, and resuming by msg.sdxl.requestId.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { maskImage, pngImage } from '../../support/images.ts';
import {
  NODES,
  helper,
  record as recordMessages,
  until,
  nodeRedVersion,
  watchRuntimeLog,
  type FlowNode,
  type RuntimeNode,
} from './harness.ts';

const API_KEY = 'nr-ops-key-7c1e5a93b2d4f0';

type Msg = Record<string, unknown> & { payload?: unknown; sdxl?: Record<string, unknown> };

let sandbox: Sandbox;
let photo: Buffer;
let mask: Buffer;
/** Everything the runtime handed out, searched for the key at the end. */
const captured: unknown[] = [];

before(async () => {
  sandbox = await startSandbox({ port: 0, apiKey: API_KEY, recordLimit: 10_000 });
  photo = await pngImage(64, 48);
  mask = await maskImage(64, 48, [8, 8, 16, 16]);
});
after(async () => {
  await sandbox.close();
  const text = JSON.stringify(captured, (_key, value: unknown) =>
    Buffer.isBuffer(value)
      ? '<buffer>'
      : value instanceof Error
        ? { message: value.message, stack: value.stack }
        : value,
  );
  assert.ok(text.length > 1000, 'something was captured');
  assert.equal(text.includes(API_KEY), false, 'the key appears in no message, status, warning or log');
});
afterEach(async () => {
  captured.push(helper.log().args);
  for (const id of ['gen', 'next']) {
    const running = helper.getNode(id);
    if (running) captured.push(running.status.args, running.warn.args, running.error.args, running.log.args);
  }
  await helper.unload();
  sandbox.configure({ statuses: [], latencyMs: 0, queueMs: 0, failJobs: 0 });
  sandbox.credits = 100;
  sandbox.requests.length = 0;
});

/** An account, the node under test (`gen`), an optional second one (`next`) it feeds, collectors, a Catch. */
function flow(node: Record<string, unknown>, next?: Record<string, unknown>): FlowNode[] {
  const nodes: FlowNode[] = [
    { id: 'tab', type: 'tab', label: 'operations' },
    {
      id: 'account',
      type: 'sdxl-config',
      name: 'test account',
      baseUrl: sandbox.url,
      requestsPerMinute: '',
      maxInFlight: '4',
      lowCreditsThreshold: '1',
      timeout: '',
    },
    {
      id: 'gen',
      type: 'sdxl',
      z: 'tab',
      account: 'account',
      output: 'messages',
      ...node,
      wires: [[next ? 'next' : 'images'], ['alerts']],
    },
    { id: 'images', type: 'helper', z: 'tab' },
    { id: 'alerts', type: 'helper', z: 'tab' },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
  if (next) {
    nodes.push({
      id: 'next',
      type: 'sdxl',
      z: 'tab',
      account: 'account',
      output: 'messages',
      ...next,
      wires: [['images'], ['alerts']],
    });
  }
  return nodes;
}

async function load(node: Record<string, unknown>, next?: Record<string, unknown>): Promise<void> {
  await helper.load(NODES, flow(node, next), { account: { apiKey: API_KEY } });
}

function node(id: string): RuntimeNode {
  const found = helper.getNode(id);
  assert.ok(found, `node ${id} is running`);
  return found;
}

function collect(id: string, count: number, timeoutMs = 10_000): Promise<Msg[]> {
  const messages: Msg[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${id} got ${messages.length} of ${count} messages`)),
      timeoutMs,
    );
    node(id).on('input', (msg: never) => {
      messages.push(msg);
      captured.push(msg);
      if (messages.length === count) {
        clearTimeout(timer);
        resolve(messages);
      }
    });
  });
}

function record(id: string): Msg[] {
  return recordMessages<Msg>(id, captured);
}

/** The generation POSTs (v1 calls and v2 submits) the sandbox saw for a model. */
function posts(slug: string): { path: string; body: Record<string, unknown> }[] {
  return sandbox.requests
    .filter((request) => request.method === 'POST' && /^\/v[12]\//.test(request.path))
    .filter((request) => request.path.endsWith(`/${slug}`))
    .map((request) => ({ path: request.path, body: request.body as Record<string, unknown> }));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function statusTexts(id: string): string[] {
  return node(id).status.args.map(([status]) => String((status as { text?: string }).text ?? ''));
}

async function size(image: unknown): Promise<string> {
  assert.ok(Buffer.isBuffer(image), `payload is ${typeof image}`);
  const { format, width, height } = await sharp(image).metadata();
  return `${format} ${width}x${height}`;
}

describe(`vary, inpaint and upscale in Node-RED ${nodeRedVersion}`, () => {
  it('varies the image in msg.payload with the Prompt set in the node', async () => {
    await load({ operation: 'vary', varyPrompt: 'the same street in winter', varyStrength: '0.4' });
    const images = collect('images', 1);
    node('gen').receive({ payload: photo, topic: 'street' });
    const [msg] = (await images) as [Msg];
    assert.equal(await size(msg.payload), 'jpeg 64x48');
    assert.equal(msg.topic, 'street');
    const [sent] = posts('sdxl-img2img');
    assert.equal(sent?.path, '/v1/sdxl-img2img');
    assert.equal(sent?.body.prompt, 'the same street in winter');
    assert.equal(sent?.body.strength, 0.4);
    assert.equal(msg.sdxl?.operation, 'vary');
    assert.equal(msg.sdxl?.model, 'sdxl-img2img');
    assert.equal(typeof msg.sdxl?.seed, 'number');
    assert.equal(typeof msg.sdxl?.cost, 'number');
    assert.equal(msg.sdxl?.remainingCredits, sandbox.credits);
    assert.match(statusTexts('gen').at(-1) ?? '', /^1 image · \d/);
    assert.ok(statusTexts('gen').includes('varying'), statusTexts('gen').join(' | '));
  });

  it('inpaints with the mask from msg.mask, and from a property the node names', async () => {
    await load({ operation: 'inpaint', inpaintPrompt: 'a red door' });
    let images = collect('images', 1);
    node('gen').receive({ payload: photo, mask });
    let [msg] = (await images) as [Msg];
    assert.equal(await size(msg.payload), 'jpeg 64x48');
    assert.equal(msg.sdxl?.operation, 'inpaint');
    assert.equal(posts('sdxl-inpaint').length, 1);
    await helper.unload();

    await load({ operation: 'inpaint', inpaintPrompt: 'a red door', inpaintMaskProperty: 'files.mask' });
    images = collect('images', 1);
    node('gen').receive({ payload: photo, files: { mask } });
    [msg] = (await images) as [Msg];
    assert.equal(await size(msg.payload), 'jpeg 64x48');
    assert.equal(posts('sdxl-inpaint').length, 2);
  });

  it('upscales four times into PNG, with msg.sdxl.scale filling what the node leaves empty', async () => {
    await load({ operation: 'upscale', upscaleOutputFormat: 'png' });
    const images = collect('images', 1);
    node('gen').receive({ payload: photo, sdxl: { scale: 4 } });
    const [msg] = (await images) as [Msg];
    assert.equal(await size(msg.payload), 'png 256x192');
    assert.equal(msg.sdxl?.mimeType, 'image/png');
    assert.equal(msg.sdxl?.operation, 'upscale');
    assert.equal('seed' in (msg.sdxl ?? {}), false, 'an upscale has no seed to report');
    const [sent] = posts('esrgan');
    assert.equal(sent?.body.scale, 4);
    assert.equal(sent?.body.output_format, 'png');
  });

  it('takes an http(s) URL in msg.payload as the image', async () => {
    await load({ operation: 'upscale' });
    // The sandbox serves what is uploaded to it, without the key: a public image URL.
    const uploaded = await fetch(sandbox.url.replace(/\/v1$/, '/upload-asset'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ data_urls: [`data:image/png;base64,${photo.toString('base64')}`] }),
    });
    const { file_urls: [url] = [] } = (await uploaded.json()) as { file_urls?: string[] };
    assert.match(String(url), /^http:/);
    const images = collect('images', 1);
    node('gen').receive({ payload: url });
    const [msg] = (await images) as [Msg];
    assert.equal(await size(msg.payload), 'jpeg 128x96');
    assert.equal(posts('esrgan')[0]?.body.image, url);
  });

  it('chains generate → upscale with no function node between, and nothing of the first call leaks into the second', async () => {
    await load(
      { prompt: 'a lighthouse', seed: '42', api: 'async' },
      { operation: 'upscale', upscaleScale: '2' },
    );
    const images = collect('images', 1);
    node('gen').receive({ payload: 'ignored: the node has a prompt', sdxl: { guidance_scale: 9 } });
    const [msg] = (await images) as [Msg];
    assert.equal(await size(msg.payload), 'jpeg 2048x2048');
    assert.equal(posts('sdxl1.0-txt2img').length, 1);
    const upscales = posts('esrgan');
    assert.equal(upscales.length, 1, 'the generate result was upscaled, not resumed by its request id');
    assert.deepEqual(Object.keys(upscales[0]?.body ?? {}).sort(), [
      'image',
      'output_format',
      'quality',
      'scale',
    ]);
    assert.equal(msg.sdxl?.operation, 'upscale');
    const request = msg.sdxl?.request as Record<string, unknown>;
    assert.equal(request.prompt, undefined);
    assert.equal(request.seed, undefined);
    assert.equal(msg.sdxl?.seed, undefined, "the generate call's seed is not carried on as the upscale's");
  });

  describe('refuses bad input with invalid_request naming the field, sending and billing nothing', () => {
    const cases: {
      name: string;
      node: Record<string, unknown>;
      msg: () => Msg;
      field: string;
      says: string;
      /** How the message ends: what to fix. */
      ends?: string;
    }[] = [
      {
        name: 'no image in msg.payload',
        node: { operation: 'upscale' },
        msg: () => ({}),
        field: 'image',
        says: 'image: msg.payload is not set; allowed: a JPEG, PNG or WebP image',
      },
      {
        name: 'an object in msg.payload',
        node: { operation: 'vary', varyPrompt: 'x' },
        msg: () => ({ payload: { data: [1, 2] } }),
        field: 'image',
        says: 'image: msg.payload is an object',
      },
      {
        name: 'an array of images (one message with all images)',
        node: { operation: 'upscale' },
        msg: () => ({ payload: [photo, photo] }),
        field: 'image',
        says: 'image: msg.payload is an array (2 items); allowed: one image per message',
      },
      {
        name: 'a Buffer that is no image',
        node: { operation: 'upscale' },
        msg: () => ({ payload: Buffer.from('hello, not a picture') }),
        field: 'image',
        says: 'image: 20 bytes is not a JPEG, PNG or WebP image',
        ends: 'Fix the message property msg.payload; nothing was sent and nothing was billed.',
      },
      {
        name: 'a mask of another size',
        node: { operation: 'inpaint', inpaintPrompt: 'x' },
        msg: () => ({ payload: photo, mask: maskSmall }),
        field: 'mask',
        says: "mask: a 32x32 PNG is not allowed; allowed: a mask of the image's size, 64x48 (mask came from msg.mask)",
        // The mask is a message property, not an option of the node.
        ends: 'Fix the message property msg.mask; nothing was sent and nothing was billed.',
      },
      {
        name: 'no mask',
        node: { operation: 'inpaint', inpaintPrompt: 'x', inpaintMaskProperty: 'theMask' },
        msg: () => ({ payload: photo, mask }),
        field: 'mask',
        says: 'mask: msg.theMask is not set',
      },
      {
        name: 'scale 3 set in the node',
        node: { operation: 'upscale', upscaleScale: '3' },
        msg: () => ({ payload: photo }),
        field: 'scale',
        says: 'scale: 3 is not allowed; allowed: 2, 4 or 8',
        ends: 'Fix the option named in the message; nothing was sent and nothing was billed.',
      },
      {
        name: 'scale 3 in msg.sdxl',
        node: { operation: 'upscale' },
        msg: () => ({ payload: photo, sdxl: { scale: 3 } }),
        field: 'scale',
        says: 'scale: 3 is not allowed; allowed: 2, 4 or 8',
      },
      {
        name: 'a vary without a prompt',
        node: { operation: 'vary' },
        msg: () => ({ payload: photo }),
        field: 'prompt',
        says: "prompt: none given; the node's Prompt is empty and msg.sdxl.prompt is not set",
      },
      {
        name: 'a request id that is no request id',
        node: { operation: 'upscale' },
        msg: () => ({ payload: photo, sdxl: { requestId: '../../v1/esrgan' } }),
        field: 'requestId',
        says: 'requestId: "../../v1/esrgan" is not allowed',
      },
    ];
    let maskSmall: Buffer;
    before(async () => {
      maskSmall = await maskImage(32, 32, [0, 0, 8, 8]);
    });
    for (const refusal of cases) {
      it(refusal.name, async () => {
        await load(refusal.node);
        const images = record('images');
        const caught = collect('caught', 1);
        const requests = sandbox.requests.length;
        const billed = sandbox.billed.length;
        node('gen').receive({ topic: 'keep me', ...refusal.msg() });
        const [error] = (await caught) as [Msg];
        const details = error.error as { code: string; message: string; source: { id: string } };
        assert.equal(details.code, 'invalid_request');
        assert.ok(details.message.includes(refusal.says), details.message);
        if (refusal.ends) assert.ok(details.message.endsWith(refusal.ends), details.message);
        assert.ok(
          details.message.startsWith(`${refusal.field}:`) || details.message.includes(` ${refusal.field}:`),
        );
        assert.equal(error.topic, 'keep me');
        assert.equal(sandbox.requests.length, requests, 'nothing reached the sandbox');
        assert.equal(sandbox.billed.length, billed, 'nothing was billed');
        assert.equal(images.length, 0);
        assert.equal(statusTexts('gen').at(-1), 'invalid_request');
      });
    }
  });

  describe('the async API', () => {
    it('shows the job queued, then processing, then the result, with the request id in msg.sdxl', async () => {
      sandbox.configure({ queueMs: 200, latencyMs: 200 });
      await load({ operation: 'upscale', api: 'async' });
      const images = collect('images', 1);
      node('gen').receive({ payload: photo });
      const [msg] = (await images) as [Msg];
      assert.equal(await size(msg.payload), 'jpeg 128x96');
      assert.equal(msg.sdxl?.api, 'async');
      const submits = posts('esrgan');
      assert.deepEqual(
        submits.map((post) => post.path),
        ['/v2/esrgan'],
      );
      assert.ok(sandbox.billed.some((bill) => bill.requestId === msg.sdxl?.requestId));
      const texts = statusTexts('gen');
      for (const expected of ['job queued', 'processing']) {
        assert.ok(texts.includes(expected), texts.join(' | '));
      }
      assert.ok(texts.indexOf('job queued') < texts.indexOf('processing'), texts.join(' | '));
      assert.match(texts.at(-1) ?? '', /^1 image · \d/);
    });

    it('stops polling when the flow stops, warns with the request id that the job will be billed, and resumes it by msg.sdxl.requestId without a second submit', async () => {
      sandbox.configure({ latencyMs: 1_500 });
      await load({ operation: 'vary', varyPrompt: 'at night', api: 'async' });
      const images = record('images');
      const caught = record('caught');
      node('gen').receive({ payload: photo });
      await until(() => statusTexts('gen').includes('processing'), 'the job to be processing');
      const polledBefore = sandbox.requests.filter((request) => request.method === 'GET').length;
      const log = watchRuntimeLog();
      try {
        await helper.unload();
      } finally {
        log.stop();
      }
      const warning = log.records
        .map((entry) => String(entry.msg))
        .find((text) => text.startsWith('Stopped waiting for SDXL vary job '));
      assert.ok(warning, 'the node says it stopped waiting');
      const requestId = /job ([\w-]+):/.exec(warning)?.[1];
      assert.ok(requestId);
      assert.match(warning, /bills it unless it fails/);
      assert.ok(warning.includes(`msg.sdxl.requestId = "${requestId}"`), warning);
      await sleep(150);
      const polledAfter = sandbox.requests.filter((request) => request.method === 'GET').length;
      assert.ok(polledAfter <= polledBefore + 1, 'no polling after the stop');
      assert.equal(images.length + caught.length, 0);
      assert.equal(posts('sdxl-img2img').length, 1, 'one submit');
      await until(() => sandbox.billed.some((bill) => bill.requestId === requestId), 'the job to finish');

      await load({ operation: 'vary', varyPrompt: 'at night', api: 'async' });
      const resumed = collect('images', 1);
      node('gen').receive({ topic: 'resumed', sdxl: { requestId } });
      const [msg] = (await resumed) as [Msg];
      assert.equal(await size(msg.payload), 'jpeg 64x48');
      assert.equal(msg.topic, 'resumed');
      assert.equal(msg.sdxl?.requestId, requestId);
      assert.equal(msg.sdxl?.operation, 'vary');
      assert.equal(
        posts('sdxl-img2img').length,
        1,
        'still one submit: the request was picked up, not sent again',
      );
      assert.equal(sandbox.billed.filter((bill) => bill.requestId === requestId).length, 1, 'billed once');
    });

    it('a request id the API no longer knows is request_expired; a failed job is job_failed; neither is billed', async () => {
      await load({ operation: 'upscale', api: 'async' });
      let caught = collect('caught', 1);
      node('gen').receive({ sdxl: { requestId: '00000000-0000-4000-8000-000000000000' } });
      let [error] = (await caught) as [Msg];
      assert.equal((error.error as { code: string }).code, 'request_expired');
      assert.equal(posts('esrgan').length, 0, 'nothing was submitted');

      sandbox.configure({ failJobs: 1 });
      const billed = sandbox.billed.length;
      caught = collect('caught', 1);
      node('gen').receive({ payload: photo });
      [error] = (await caught) as [Msg];
      assert.equal((error.error as { code: string }).code, 'job_failed');
      assert.equal(sandbox.billed.length, billed);
      assert.equal(sandbox.credits, 100);
    });
  });
});
