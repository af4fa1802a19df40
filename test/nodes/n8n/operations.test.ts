// Vary, Inpaint and Upscale Image through the built node, against the sandbox over real HTTP: images
// from the item's binary fields or a URL, one output item per image, and every refusal made before
// anything is uploaded or billed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { inspect } from 'node:util';
import sharp from 'sharp';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { maskImage, pngImage } from '../../support/images.ts';
import {
  Sdxl,
  runNode,
  splitErrorOutput,
  workflow,
  type INodeExecutionData,
  type RunOptions,
} from './harness.ts';

const KEY = 'sk-n8n-operations-test-5b1e77c0a2';

Sdxl.rateWindowMs = 1_000;

let sandbox: Sandbox;
let image: Buffer;
let mask: Buffer;
let smallMask: Buffer;
let files: Server;
let filesUrl: string;

before(async () => {
  sandbox = await startSandbox({ apiKey: KEY, credits: 100, recordLimit: 10_000 });
  image = await pngImage(64, 48);
  mask = await maskImage(64, 48, [16, 8, 24, 24]);
  smallMask = await maskImage(32, 32, [0, 0, 8, 8]);
  // A web server of its own for images given by URL: the sandbox fetches them as the API would.
  files = createServer((request, response) => {
    if (request.url === '/photo.png') {
      response.writeHead(200, { 'content-type': 'image/png' }).end(image);
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
  filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
});
after(async () => {
  await sandbox.close();
  await new Promise((resolve) => files.close(resolve));
});
beforeEach(() => {
  sandbox.configure({ statuses: [], latencyMs: 0, queueMs: 0, failJobs: 0, pollStatuses: [] });
  sandbox.credits = 100;
  sandbox.requests.length = 0;
  sandbox.billed.length = 0;
});

/** An input item holding files the way n8n keeps them in memory: base64, with a MIME type and name. */
function fileItem(fields: Record<string, { bytes: Buffer; fileName: string; mimeType?: string }>) {
  const binary: INodeExecutionData['binary'] = {};
  for (const [name, file] of Object.entries(fields)) {
    binary[name] = {
      data: file.bytes.toString('base64'),
      mimeType: file.mimeType ?? 'image/png',
      fileName: file.fileName,
    };
  }
  return { json: {}, binary };
}

function run(overrides: Partial<RunOptions> & Pick<RunOptions, 'parameters'>) {
  return runNode({ credentials: { apiKey: KEY, baseUrl: sandbox.url }, ...overrides });
}

const posts = (path?: string) =>
  sandbox.requests.filter((request) => request.method === 'POST' && (!path || request.path === path));
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function failure(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    assert.ok(!inspect(error, { depth: 12, showHidden: true }).includes(KEY), 'the key is not in the error');
    return error as Error & Record<string, unknown>;
  }
  assert.fail('expected the run to fail');
}

function bytesOf(item: INodeExecutionData | undefined, field = 'data'): Buffer {
  const binary = item?.binary?.[field];
  assert.ok(binary, `item has binary field "${field}"`);
  return Buffer.from(binary.data, 'base64');
}

describe('n8n node: Vary Image', () => {
  it('varies the image in the item`s binary field: raw base64 on the wire, a JPEG out, paired, with seed and credits', async () => {
    const { items } = await run({
      items: [fileItem({ data: { bytes: image, fileName: 'photo.png' } })],
      parameters: {
        operation: 'varyImage',
        prompt: 'as a watercolour',
        options: { strength: 0.6, seed: 42 },
      },
    });
    assert.equal(items.length, 1);
    const [item] = items as [INodeExecutionData];
    assert.deepEqual(bytesOf(item).subarray(0, 3), Buffer.from([0xff, 0xd8, 0xff]));
    assert.equal(item.binary?.data?.fileName, 'sdxl-vary-42.jpg');
    assert.deepEqual(item.pairedItem, { item: 0 });
    assert.equal(item.json.operation, 'varyImage');
    assert.equal(item.json.model, 'sdxl-img2img');
    assert.equal(item.json.prompt, 'as a watercolour');
    assert.equal(item.json.strength, 0.6);
    assert.equal(item.json.seed, 42);
    assert.equal(typeof item.json.remainingCredits, 'number');
    assert.equal(typeof item.json.cost, 'number');
    const body = posts('/v1/sdxl-img2img')[0]?.body as Record<string, unknown>;
    assert.ok(String(body.image).includes(sha256(image.toString('base64'))), 'the item`s bytes, as base64');
    // Only what was set or has a documented default: the server decides the rest.
    assert.deepEqual(Object.keys(body).sort(), ['image', 'prompt', 'samples', 'seed', 'strength']);
  });

  it('reads numbers an expression gives as text, and sends nothing for an option left on the server`s default', async () => {
    await run({
      items: [fileItem({ data: { bytes: image, fileName: 'photo.png' } })],
      parameters: {
        operation: 'varyImage',
        prompt: 'x',
        options: { strength: '0.3', steps: '', scheduler: '', samples: '2' },
      },
    });
    const body = posts('/v1/sdxl-img2img')[0]?.body as Record<string, unknown>;
    assert.equal(body.strength, 0.3);
    assert.equal(body.samples, 2);
    assert.equal(body.num_inference_steps, undefined);
    assert.equal(body.scheduler, undefined);
  });

  it('takes the image from a URL instead, passing it on for the API to fetch', async () => {
    const { items } = await run({
      parameters: {
        operation: 'varyImage',
        imageSource: 'url',
        imageUrl: `${filesUrl}/photo.png`,
        prompt: 'x',
        options: {},
      },
    });
    assert.equal(items.length, 1);
    assert.equal(
      (posts('/v1/sdxl-img2img')[0]?.body as Record<string, unknown>).image,
      `${filesUrl}/photo.png`,
    );
  });
});

describe('n8n node: Inpaint Image', () => {
  it('takes the image and the mask from two binary fields, uploads both in one storage call, and repaints', async () => {
    const { items, sent } = await run({
      items: [
        fileItem({
          data: { bytes: image, fileName: 'photo.png' },
          mask: { bytes: mask, fileName: 'mask.png' },
        }),
      ],
      parameters: { operation: 'inpaintImage', prompt: 'a red hat', options: { seed: 7 } },
    });
    assert.equal(items.length, 1);
    assert.equal(items[0]?.binary?.data?.fileName, 'sdxl-inpaint-7.jpg');
    assert.equal(items[0]?.json.model, 'sdxl-inpaint');
    assert.equal(posts('/upload-asset').length, 1, 'one upload for image and mask');
    const body = posts('/v1/sdxl-inpaint')[0]?.body as Record<string, unknown>;
    assert.match(String(body.image), /^http:\/\/127\.0\.0\.1:\d+\//);
    assert.match(String(body.mask), /^http:\/\/127\.0\.0\.1:\d+\//);
    // The upload went through n8n's helper with the credential, like every API call.
    assert.ok(
      sent.some((request) => request.url.endsWith('/upload-asset') && request.headers['x-api-key'] === KEY),
    );
  });

  it('reads the mask from the binary field the user names', async () => {
    const { items } = await run({
      items: [
        fileItem({
          data: { bytes: image, fileName: 'photo.png' },
          stencil: { bytes: mask, fileName: 'stencil.png' },
        }),
      ],
      parameters: { operation: 'inpaintImage', maskBinaryField: 'stencil', prompt: 'a hat', options: {} },
    });
    assert.equal(items.length, 1);
  });
});

describe('n8n node: Upscale Image', () => {
  it('enlarges 4 times into PNG, keeping the input file`s name', async () => {
    const { items } = await run({
      items: [fileItem({ data: { bytes: image, fileName: 'photo.png' } })],
      parameters: { operation: 'upscaleImage', options: { scale: 4, outputFormat: 'png' } },
    });
    const [item] = items as [INodeExecutionData];
    assert.equal(item.binary?.data?.fileName, 'photo-x4.png');
    assert.equal(item.binary?.data?.mimeType, 'image/png');
    const size = await sharp(bytesOf(item)).metadata();
    assert.deepEqual([size.width, size.height], [256, 192]);
    assert.equal(item.json.scale, 4);
    assert.equal(item.json.outputFormat, 'png');
    const body = posts('/v1/esrgan')[0]?.body as Record<string, unknown>;
    assert.deepEqual([body.scale, body.output_format, body.quality], [4, 'png', 95]);
  });

  it('chains: Generate Image`s output item is Upscale Image`s input, its binary flowing through', async () => {
    const generated = await run({ parameters: { prompt: 'a lighthouse', options: { seed: 9 } } });
    const { items } = await run({
      items: generated.items,
      parameters: { operation: 'upscaleImage', options: {} },
    });
    assert.equal(items.length, 1);
    assert.equal(items[0]?.binary?.data?.fileName, 'sdxl-9-x2.jpg');
    const before = await sharp(bytesOf(generated.items[0])).metadata();
    const after = await sharp(bytesOf(items[0])).metadata();
    assert.deepEqual([after.width, after.height], [(before.width ?? 0) * 2, (before.height ?? 0) * 2]);
  });

  it('answers an AI agent with JSON it can use: what was done, the file, credits and cost, no binary', async () => {
    const { items } = await run({
      nodeType: 'n8n-nodes-sdxl.sdxlTool',
      parameters: {
        operation: 'upscaleImage',
        imageSource: 'url',
        imageUrl: `${filesUrl}/photo.png`,
        options: {},
      },
    });
    const json = items[0]?.json ?? {};
    assert.equal(items[0]?.binary, undefined);
    assert.match(String(json.message), /^Upscaled image 1 of 1 \(sdxl-x2\.jpg\)\.$/);
    assert.equal(typeof json.remainingCredits, 'number');
    assert.equal(typeof json.cost, 'number');
    assert.ok(JSON.stringify(json).length < 600);
  });
});

describe('n8n node: refusals before anything is billed', () => {
  const good = () => fileItem({ data: { bytes: image, fileName: 'photo.png' } });

  it('no binary in the named field: the field, the name and the item, with the fields the item has', async () => {
    const error = await failure(
      run({
        items: [good(), fileItem({ picture: { bytes: image, fileName: 'photo.png' } })],
        parameters: { operation: 'varyImage', prompt: 'x', options: {} },
      }),
    );
    assert.ok(error instanceof workflow.NodeOperationError);
    assert.equal(error.message, 'Input Binary Field: the input item has no binary field "data" [item 1]');
    assert.match(String(error.description), /"picture"/);
    assert.equal((error.context as { itemIndex?: number }).itemIndex, 1);
    assert.equal(posts().length, 0, 'nothing sent');
  });

  it('a file that is not an image, a mask of another size, scale 3: each names its field and item', async () => {
    const text = Buffer.from('name,price\nlamp,12\n');
    const notImage = await failure(
      run({
        items: [fileItem({ data: { bytes: text, fileName: 'prices.csv', mimeType: 'text/csv' } })],
        parameters: { operation: 'varyImage', prompt: 'x', options: {} },
      }),
    );
    assert.match(
      notImage.message,
      /^Input Binary Field "data": 19 bytes is not a JPEG, PNG or WebP image .* \[item 0\]$/,
    );
    // The image and the mask are chosen at the top of the form, not under Options.
    assert.match(
      String(notImage.description),
      /^Fix the file in Input Binary Field "data": nothing was sent/,
    );
    assert.doesNotMatch(String(notImage.description), /Options/);

    const wrongMask = await failure(
      run({
        items: [
          fileItem({
            data: { bytes: image, fileName: 'a.png' },
            mask: { bytes: smallMask, fileName: 'm.png' },
          }),
        ],
        parameters: { operation: 'inpaintImage', prompt: 'x', options: {} },
      }),
    );
    assert.equal(
      wrongMask.message,
      'Mask Binary Field "mask": a 32x32 PNG is not allowed; allowed: a mask of the image\'s size, 64x48 [item 0]',
    );
    assert.match(
      String(wrongMask.description),
      /^Fix the file in Mask Binary Field "mask": nothing was sent/,
    );
    assert.doesNotMatch(String(wrongMask.description), /Options/);

    const scale = await failure(
      run({
        items: [good(), good()],
        parameters: (itemIndex) => ({
          operation: 'upscaleImage',
          options: { scale: itemIndex === 1 ? '3' : 2 },
        }),
      }),
    );
    assert.ok(scale instanceof workflow.NodeOperationError);
    assert.match(scale.message, /^Scale: "3" is not allowed; allowed: 2, 4 or 8 \[item 1\]$/);
    assert.equal((scale.context as { itemIndex?: number }).itemIndex, 1);
    assert.match(String(scale.description), /^Fix Options > Scale: nothing was sent/);

    const missingUrl = await failure(
      run({ parameters: { operation: 'upscaleImage', imageSource: 'url', imageUrl: ' ', options: {} } }),
    );
    assert.match(missingUrl.message, /^Image URL is required/);

    assert.equal(posts().length, 0, 'nothing uploaded, nothing sent');
    assert.equal(sandbox.billed.length, 0);
  });

  it('with Continue On Fail, the refused item becomes an error item (or goes to the error output) and the others run', async () => {
    const items = [good(), fileItem({}), good()];
    const parameters = { operation: 'upscaleImage', options: {} };
    const regular = await run({ continueOnFail: true, items, parameters });
    assert.deepEqual(
      regular.items.map((item) => item.json.code ?? item.binary?.data?.fileName),
      ['photo-x2.jpg', 'invalid_request', 'photo-x2.jpg'],
    );
    assert.match(String(regular.items[1]?.json.error), /no binary field "data" \[item 1\]/);
    assert.deepEqual(regular.items[1]?.pairedItem, { item: 1 });

    const split = splitErrorOutput(
      (await run({ continueOnFail: true, onError: 'continueErrorOutput', items, parameters })).items,
    );
    assert.equal(split.success.length, 2);
    assert.deepEqual(
      split.failed.map((item) => item.pairedItem),
      [{ item: 1 }],
    );
  });
});

describe('n8n node: the async API', () => {
  // Quick polls for the test; the node's defaults follow the model's usual time.
  Sdxl.pollOptions = { firstDelayMs: 20, intervalMs: 20, maxIntervalMs: 50 };
  const good = () => fileItem({ data: { bytes: image, fileName: 'photo.png' } });
  const submits = (slug: string) => posts(`/v2/${slug}`);
  const polls = () =>
    sandbox.requests.filter((request) => request.method === 'GET' && /\/status$/.test(request.path));

  it('downloads the output files from the Base URL`s own origin without the key; every API call carries it', async () => {
    const { items, sent } = await run({ parameters: { prompt: 'a harbour', options: { api: 'async' } } });
    assert.equal(items.length, 1);
    const downloads = sent.filter((request) => new URL(request.url).pathname.startsWith('/files/'));
    assert.equal(downloads.length, 1);
    // The sandbox serves output files where the API is, as a gateway in front of Segmind may.
    assert.equal(new URL(downloads[0]?.url ?? '').origin, new URL(sandbox.url).origin);
    assert.equal(downloads[0]?.headers['x-api-key'], undefined, 'no key on a public file');
    const served = sandbox.requests.filter((request) => request.path.startsWith('/files/'));
    assert.equal(served.length, 1);
    assert.equal(served[0]?.headers['x-api-key'], undefined);
    const apiCalls = sent.filter((request) => !new URL(request.url).pathname.startsWith('/files/'));
    assert.ok(apiCalls.length >= 3, 'submit, status, result');
    assert.ok(apiCalls.every((request) => request.headers['x-api-key'] === KEY));
  });

  it('submits once, polls, and gives items with the request ID', async () => {
    sandbox.configure({ latencyMs: 150 });
    const { items } = await run({
      items: [good()],
      parameters: { operation: 'varyImage', prompt: 'x', options: { api: 'async', seed: 3 } },
    });
    assert.equal(items.length, 1);
    assert.equal(submits('sdxl-img2img').length, 1);
    assert.equal(posts('/v1/sdxl-img2img').length, 0);
    assert.ok(polls().length >= 1, 'polled the status');
    assert.equal(items[0]?.json.api, 'async');
    assert.match(String(items[0]?.json.requestId), /^[\w-]+$/);
    assert.equal(sandbox.billed[0]?.requestId, items[0]?.json.requestId);
    assert.equal(typeof items[0]?.json.remainingCredits, 'number');
  });

  it('cancelling during a poll stops at once, names the request ID, never submits again; Resume Request fetches the images', async () => {
    sandbox.configure({ latencyMs: 1_500 });
    const controller = new AbortController();
    const pending = run({
      signal: controller.signal,
      items: [good()],
      parameters: { operation: 'upscaleImage', options: { api: 'async' } },
    });
    while (polls().length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const cancelledAt = Date.now();
    controller.abort();
    const error = await failure(pending);
    assert.ok(Date.now() - cancelledAt < 1_000, 'the wait stopped without waiting for the job');
    assert.equal(error.message, 'The execution was cancelled');
    const [submit] = submits('esrgan');
    assert.equal(submits('esrgan').length, 1);
    const id = /Request ID \(item 0: ([\w-]+)\)/.exec(String(error.description))?.[1];
    assert.ok(id, `the description names the request: ${String(error.description)}`);
    const pollsAtCancel = polls().length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(polls().length, pollsAtCancel, 'no poll after the cancel');

    const resumed = await run({ parameters: { operation: 'resumeRequest', requestId: id, options: {} } });
    assert.equal(resumed.items.length, 1);
    assert.equal(resumed.items[0]?.json.requestId, id);
    assert.equal(resumed.items[0]?.binary?.data?.mimeType, 'image/jpeg');
    assert.deepEqual(submits('esrgan'), [submit], 'resuming submitted nothing');
    assert.equal(sandbox.billed.length, 1, 'billed once');
  });

  it('a failed job is job_failed, unbilled, and the error item keeps the request ID and says to check the image', async () => {
    sandbox.configure({ failJobs: [true] });
    const { items } = await run({
      continueOnFail: true,
      items: [good()],
      parameters: { operation: 'varyImage', prompt: 'x', options: { api: 'async' } },
    });
    assert.equal(items[0]?.json.code, 'job_failed');
    assert.match(String(items[0]?.json.error), /^The SDXL job failed on the API \[item 0\]$/);
    assert.match(String(items[0]?.json.requestId), /^[\w-]+$/);
    assert.match(
      String(items[0]?.json.description),
      /^The API accepted the request, then could not make the image\. Jobs that fail are not billed\. The API said: .+\. Check the input image \(or its URL\) and the options against what it said, then run it again\.$/,
    );
    assert.equal(sandbox.billed.length, 0);
    assert.equal(submits('sdxl-img2img').length, 1);
  });

  it('a failed text-to-image job speaks of the prompt, not of an input image it does not have', async () => {
    sandbox.configure({ failJobs: [true] });
    const { items } = await run({
      continueOnFail: true,
      parameters: { prompt: 'a lighthouse', options: { api: 'async' } },
    });
    assert.equal(items[0]?.json.code, 'job_failed');
    const description = String(items[0]?.json.description);
    assert.match(description, /Check the prompt and the options against what it said/);
    assert.doesNotMatch(description, /image or URL|input image/);
    assert.equal(sandbox.billed.length, 0);
  });

  /** An async upscale whose job outlasts Timeout (Seconds): the run fails after the submit. */
  async function upscaleTimedOut() {
    sandbox.configure({ latencyMs: 2_500 });
    return await failure(
      run({
        items: [good()],
        parameters: { operation: 'upscaleImage', options: { api: 'async', timeoutSeconds: 1 } },
      }),
    );
  }

  it('a wait longer than Timeout (Seconds) leads with Resume Request and its ID, warns that trying again bills again, and never submits twice', async () => {
    const error = await upscaleTimedOut();
    assert.ok(error instanceof workflow.NodeApiError);
    assert.equal(error.message, 'The SDXL job did not finish in time [item 0]');
    const description = String(error.description);
    const requestId =
      /^Resume Request with Request ID ([\w-]+) fetches the images within the hour without billing again/.exec(
        description,
      )?.[1];
    assert.ok(requestId, `the description leads with Resume Request and the ID: ${description}`);
    assert.match(
      description,
      /Running this operation again \(or Retry On Fail\) submits a new request and bills again\./,
    );
    assert.match(description, /raise Options > Timeout \(Seconds\)\.$/);
    assert.doesNotMatch(description, /^Try again/);
    assert.equal(submits('esrgan').length, 1);

    // The ID it gives is the job's: Resume Request collects it, billed once.
    sandbox.configure({ latencyMs: 0 });
    const resumed = await run({ parameters: { operation: 'resumeRequest', requestId, options: {} } });
    assert.equal(resumed.items[0]?.json.requestId, requestId);
    assert.equal(submits('esrgan').length, 1);
    assert.equal(sandbox.billed.length, 1);
  });

  it('a Resume Request that times out says to run it again, which bills nothing', async () => {
    const submitted = await upscaleTimedOut();
    const requestId = /Request ID ([\w-]+)/.exec(String(submitted.description))?.[1];
    const again = await failure(
      run({ parameters: { operation: 'resumeRequest', requestId, options: { timeoutSeconds: 0.2 } } }),
    );
    assert.equal(again.message, 'The SDXL job did not finish in time [item 0]');
    assert.match(
      String(again.description),
      new RegExp(
        `^Run Resume Request again with Request ID ${requestId} within the hour: fetching the images bills nothing\\.`,
      ),
    );
    assert.doesNotMatch(String(again.description), /bills again/);
    // Run again with time enough, it collects the job: billed once, submitted once.
    const collected = await run({ parameters: { operation: 'resumeRequest', requestId, options: {} } });
    assert.equal(collected.items.length, 1);
    assert.equal(submits('esrgan').length, 1);
    assert.equal(sandbox.billed.length, 1);
  });

  it('Resume Request`s item carries the prompt the result gives, and names no model it cannot know', async () => {
    sandbox.configure({ latencyMs: 1_500 });
    const controller = new AbortController();
    const pending = run({
      signal: controller.signal,
      parameters: { prompt: 'a red fox in the snow', options: { api: 'async', seed: 77 } },
    });
    while (polls().length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    const error = await failure(pending);
    const id = /Request ID \(item 0: ([\w-]+)\)/.exec(String(error.description))?.[1];
    assert.ok(id, String(error.description));
    const { items } = await run({ parameters: { operation: 'resumeRequest', requestId: id, options: {} } });
    const json = items[0]?.json ?? {};
    assert.equal(json.prompt, 'a red fox in the snow');
    assert.equal(json.seed, 77);
    assert.equal(json.operation, 'resumeRequest');
    assert.ok(!('model' in json), `no made-up model: ${JSON.stringify(json)}`);
    assert.ok(!Object.values(json).includes('unknown'));
  });

  it('Resume Request with an unknown ID is request_expired; a malformed one is refused before any request', async () => {
    const expired = await failure(
      run({ parameters: { operation: 'resumeRequest', requestId: 'no-such-request-0000', options: {} } }),
    );
    assert.match(expired.message, /no longer known to the API \[item 0\]/);
    const malformed = await failure(
      run({ parameters: { operation: 'resumeRequest', requestId: 'a b/c', options: {} } }),
    );
    assert.ok(malformed instanceof workflow.NodeOperationError);
    assert.match(malformed.message, /^Request ID: "a b\/c" is not a request ID \[item 0\]$/);
  });
});
