// The SDXL family on v1 (sdxl-img2img, sdxl-inpaint, esrgan, sdxl-controlnet, ssd-1b), the storage
// upload and the bounded record, over real HTTP. Pixels are checked with sharp.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import sharp from 'sharp';
import {
  MODELS,
  esrgan,
  findModel,
  sdxlControlnet,
  sdxlImg2Img,
  sdxlInpaint,
  ssd1b,
} from '@sdxl-kit/client/core';
import {
  SANDBOX_DEFAULT_API_KEY,
  elisionMarker,
  startSandbox,
  type Sandbox,
  type SandboxOptions,
} from '../../shared/sandbox/src/index.ts';
import { closedPort } from '../support/http.ts';

const KEY = SANDBOX_DEFAULT_API_KEY;
const JSON_HEADERS = { 'x-api-key': KEY, 'content-type': 'application/json' };

async function sandboxFor(t: TestContext, options: SandboxOptions = {}): Promise<Sandbox> {
  const sandbox = await startSandbox({ port: 0, ...options });
  t.after(() => sandbox.close());
  return sandbox;
}

function post(sandbox: Sandbox, slug: string, body: unknown, headers = JSON_HEADERS): Promise<Response> {
  return fetch(`${sandbox.url}/${slug}`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function errorOf(response: Response): Promise<string> {
  assert.equal(response.headers.get('content-type'), 'application/json');
  const body = (await response.json()) as { error: unknown };
  assert.equal(typeof body.error, 'string');
  return body.error as string;
}

async function bytesOf(response: Response): Promise<Buffer> {
  return Buffer.from(await response.arrayBuffer());
}

/** A PNG: left half one colour, right half another (so a transform's effect has structure to show). */
function png(width: number, height: number, left = '#204080', right = '#e0c040'): Promise<Buffer> {
  const half = Math.floor(width / 2);
  return sharp({ create: { width, height, channels: 3, background: left } })
    .composite([
      {
        input: { create: { width: width - half, height, channels: 3, background: right } },
        left: half,
        top: 0,
      },
    ])
    .png()
    .toBuffer();
}

/** A mask: white on the left half, black on the right. */
function leftMask(width: number, height: number): Promise<Buffer> {
  return png(width, height, '#ffffff', '#000000');
}

/** Mean absolute difference per channel (0..255) over a region given in fractions of the image. */
async function regionDistance(
  first: Buffer,
  second: Buffer,
  region = { left: 0, right: 1 },
): Promise<number> {
  const size = 64;
  const [a, b] = await Promise.all(
    [first, second].map((image) =>
      sharp(image).resize(size, size, { fit: 'fill' }).removeAlpha().raw().toBuffer(),
    ),
  );
  let total = 0;
  let counted = 0;
  for (let row = 0; row < size; row++) {
    for (let column = Math.ceil(region.left * size); column < Math.floor(region.right * size); column++) {
      for (let channel = 0; channel < 3; channel++) {
        const i = (row * size + column) * 3 + channel;
        total += Math.abs(a![i]! - b![i]!);
        counted++;
      }
    }
  }
  return total / counted;
}

const b64 = (bytes: Buffer): string => bytes.toString('base64');
const dataUrl = (bytes: Buffer, type = 'image/png'): string => `data:${type};base64,${b64(bytes)}`;

/** A minimal valid body per model. */
async function validBody(slug: string): Promise<Record<string, unknown>> {
  const image = b64(await png(64, 48));
  switch (slug) {
    case 'sdxl1.0-txt2img':
    case 'ssd-1b':
      return { prompt: 'a lighthouse', seed: 5 };
    case 'sdxl-img2img':
      return { image, prompt: 'a lighthouse', seed: 5 };
    case 'sdxl-inpaint':
      return { image, mask: b64(await leftMask(64, 48)), prompt: 'a lighthouse', seed: 5 };
    case 'esrgan':
      return { image };
    case 'sdxl-controlnet':
      return { image, prompt: 'a lighthouse', seed: 5 };
    default:
      throw new Error(`no body for ${slug}`);
  }
}

/** A static HTTP server with a few paths, for image URLs the sandbox must fetch. */
async function imageHost(
  t: TestContext,
  files: Record<string, { type: string; body: Buffer; delayMs?: number }>,
) {
  let hits = 0;
  const server = createServer((request, response) => {
    hits++;
    const file = files[request.url ?? ''];
    if (!file) {
      response.writeHead(404).end('missing');
      return;
    }
    setTimeout(
      () => response.writeHead(200, { 'content-type': file.type }).end(file.body),
      file.delayMs ?? 0,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    url: (path: string) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    get hits() {
      return hits;
    },
  };
}

test('every declared model answers a valid v1 body with an image, billed at its typical price', async (t) => {
  const sandbox = await sandboxFor(t);
  for (const model of MODELS) {
    const before = sandbox.credits;
    const response = await post(sandbox, model.slug, await validBody(model.slug));
    assert.equal(response.status, 200, `${model.slug}: ${response.status}`);
    assert.equal(response.headers.get('content-type'), 'image/jpeg', model.slug);
    const image = await bytesOf(response);
    assert.deepEqual([...image.subarray(0, 3)], [0xff, 0xd8, 0xff], model.slug);
    const expected = model.slug === 'sdxl1.0-txt2img' ? 0.008 : model.price!.credits;
    assert.equal(Number(response.headers.get('x-cost')), expected, model.slug);
    assert.equal(
      Number(response.headers.get('x-remaining-credits')),
      Number((before - expected).toFixed(10)),
    );
    assert.equal(
      response.headers.get('x-seed-value'),
      model.slug === 'esrgan' ? null : '5',
      `${model.slug} reports the seed it used`,
    );
    assert.match(response.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  }
  assert.deepEqual(
    sandbox.billed.map((call) => [call.slug, call.api, call.images]),
    MODELS.map((model) => [model.slug, 'v1', 1]),
  );
  assert.equal(sandbox.billed[1]?.prompt, 'a lighthouse');
  assert.equal(sandbox.billed[1]?.seed, 5);
  assert.equal(sandbox.billed.find((call) => call.slug === 'esrgan')?.seed, undefined);
});

test('each model validates its documented required fields and bounds, naming the field', async (t) => {
  const sandbox = await sandboxFor(t);
  const image = b64(await png(32, 32));
  const cases: [string, unknown, RegExp[]][] = [
    ['sdxl-img2img', {}, [/image: is required/, /prompt: is required/]],
    [
      'sdxl-img2img',
      { image, prompt: 'x', samples: 5 },
      [/samples: must be a whole number from 1 to 4, got 5/],
    ],
    ['sdxl-img2img', { image, prompt: 'x', strength: 1.5 }, [/strength: must be a number from 0 to 1/]],
    ['sdxl-img2img', { image, prompt: 'x', base64: 'yes' }, [/base64: must be true or false/]],
    [
      'sdxl-img2img',
      { image: 42, prompt: '' },
      [/image: must be an image/, /prompt: must be a non-empty string/],
    ],
    ['sdxl-inpaint', { image }, [/mask: is required/, /prompt: is required/]],
    [
      'sdxl-inpaint',
      { image, mask: image, prompt: 'x', samples: 0 },
      [/samples: must be a whole number >= 1/],
    ],
    ['esrgan', {}, [/image: is required/]],
    ['esrgan', { image, scale: 3 }, [/scale: must be one of 2, 4, 8, got 3/]],
    ['esrgan', { image, scale: '3' }, [/scale: must be one of 2, 4, 8, got "3"/]],
    ['esrgan', { image, output_format: 'gif' }, [/output_format: must be one of jpeg, png, webp, got "gif"/]],
    ['esrgan', { image, quality: 9 }, [/quality: must be a whole number from 10 to 100, got 9/]],
    ['esrgan', { image, quality: 101 }, [/quality: must be a whole number from 10 to 100/]],
    ['sdxl-controlnet', { prompt: 'x' }, [/image: is required/]],
    [
      'sdxl-controlnet',
      { image, prompt: 'x', cn_model: 'sdxl_magic' },
      [/cn_model: must be one of sdxl_canny/],
    ],
    [
      'sdxl-controlnet',
      { image, prompt: 'x', controlnet_scale: 1.1 },
      [/controlnet_scale: must be a number from 0 to 1/],
    ],
    [
      'sdxl-controlnet',
      { image, prompt: 'x', guidance_scale: 0.5 },
      [/guidance_scale: must be a number from 1 to 25/],
    ],
    ['ssd-1b', {}, [/prompt: is required/]],
    [
      'ssd-1b',
      { prompt: 'x', num_inference_steps: 10 },
      [/num_inference_steps: must be a whole number from 20 to 100/],
    ],
    ['ssd-1b', { prompt: 'x', img_width: 512 }, [/img_width: must be one of 1024, got 512/]],
    ['ssd-1b', { prompt: 'x', seed: -2 }, [/seed: must be a whole number from -1 to 999999999999999/]],
    [
      'ssd-1b',
      { prompt: 'x', guidance_scale: 26, scheduler: '' },
      [/guidance_scale/, /scheduler: must be a non-empty string/],
    ],
    ['ssd-1b', [], [/body: must be a JSON object/]],
  ];
  for (const [slug, body, patterns] of cases) {
    const response = await post(sandbox, slug, body);
    assert.equal(response.status, 422, `${slug} ${JSON.stringify(body).slice(0, 60)}`);
    const message = await errorOf(response);
    for (const pattern of patterns) assert.match(message, pattern, `${slug}: ${message}`);
  }
  assert.equal(sandbox.credits, 100, 'nothing refused was billed');
  assert.equal(sandbox.billed.length, 0);
});

test('documented values, numeric strings for esrgan scale and unknown fields are accepted', async (t) => {
  const sandbox = await sandboxFor(t);
  const image = b64(await png(16, 16));
  const accepted: [string, Record<string, unknown>][] = [
    ['esrgan', { image, scale: '4', output_format: 'webp', quality: 10, whatever: true }],
    ['esrgan', { image, scale: 8, quality: 100 }],
    [
      'sdxl-controlnet',
      { image, prompt: 'x', cn_model: 'sdxl_openpose', controlnet_scale: 0, scheduler: 'Anything Goes' },
    ],
    [
      'ssd-1b',
      {
        prompt: 'x',
        seed: -1,
        img_width: 1024,
        img_height: 1024,
        num_inference_steps: 100,
        style: 'ignored',
      },
    ],
    ['sdxl-img2img', { image, prompt: 'x', strength: 0, base_model: 'juggernaut', samples: 4, extra: [1] }],
    ['sdxl-inpaint', { image, mask: image, prompt: 'x', samples: 7, strength: 1 }],
  ];
  for (const [slug, body] of accepted) {
    const response = await post(sandbox, slug, body);
    assert.equal(response.status, 200, `${slug}: ${response.status === 422 ? await errorOf(response) : ''}`);
    await bytesOf(response);
  }
});

test('images come as raw base64, data: URLs, own upload URLs or fetched http URLs', async (t) => {
  const sandbox = await sandboxFor(t);
  const source = await png(40, 30);
  const host = await imageHost(t, { '/in.png': { type: 'image/png', body: source } });
  const upload = await fetch(`${sandbox.origin}/upload-asset`, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify({ data_urls: [dataUrl(source)] }),
  });
  const { urls } = (await upload.json()) as { urls: string[] };
  const forms = [b64(source), dataUrl(source), urls[0]!, host.url('/in.png')];
  for (const form of forms) {
    const response = await post(sandbox, 'esrgan', { image: form, output_format: 'png' });
    assert.equal(response.status, 200, `${form.slice(0, 40)}: ${response.status}`);
    const metadata = await sharp(await bytesOf(response)).metadata();
    assert.deepEqual([metadata.width, metadata.height], [80, 60]);
  }
  assert.equal(host.hits, 1, 'the external URL was fetched once');
  assert.equal(
    sandbox.requests.filter((request) => request.path.startsWith('/assets/')).length,
    0,
    'the own upload URL was read locally, not over HTTP',
  );
});

test('an image that cannot be fetched or is not an image is 422 naming the field, unbilled', async (t) => {
  const sandbox = await sandboxFor(t, { fetchTimeoutMs: 1500 });
  const image = b64(await png(16, 16));
  const host = await imageHost(t, {
    '/text': { type: 'text/plain', body: Buffer.from('hello, not an image') },
    '/slow.png': { type: 'image/png', body: await png(16, 16), delayMs: 4000 },
    '/tiny.gif': {
      type: 'image/gif',
      body: await sharp(await png(4, 4))
        .gif()
        .toBuffer(),
    },
  });
  const port = await closedPort();
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['esrgan', { image: `http://127.0.0.1:${port}/x.png` }, /^image: could not fetch .*unreachable/],
    ['esrgan', { image: host.url('/missing.png') }, /^image: could not fetch .*HTTP 404/],
    ['esrgan', { image: host.url('/slow.png') }, /^image: could not fetch .*timed out/],
    ['sdxl-inpaint', { image, mask: host.url('/text'), prompt: 'x' }, /^mask: is not an image/],
    [
      'sdxl-inpaint',
      { image, mask: b64(Buffer.from('not an image at all')), prompt: 'x' },
      /^mask: is not an image/,
    ],
    [
      'sdxl-img2img',
      { image: host.url('/tiny.gif'), prompt: 'x' },
      /^image: must be a JPEG, PNG or WebP image, got gif/,
    ],
    ['sdxl-img2img', { image: 'data:image/png,rawbytes', prompt: 'x' }, /^image: a data: URL must be base64/],
    [
      'sdxl-controlnet',
      { image: '%%% not base64 %%%', prompt: 'x' },
      /^image: must be an image as raw base64/,
    ],
    ['esrgan', { image: `${sandbox.origin}/assets/nothing-here.png` }, /^image: could not fetch .*404/],
  ];
  for (const [slug, body, pattern] of cases) {
    const response = await post(sandbox, slug, body);
    assert.equal(response.status, 422, `${slug} ${String(body.image).slice(0, 50)}`);
    assert.match(await errorOf(response), pattern);
  }
  assert.equal(sandbox.credits, 100);
});

test('img2img keeps the input size and changes it more at higher strength', async (t) => {
  const sandbox = await sandboxFor(t);
  const source = await png(96, 64);
  const distances: number[] = [];
  for (const strength of [0, 0.2, 0.9]) {
    const response = await post(sandbox, 'sdxl-img2img', {
      image: b64(source),
      prompt: 'p',
      seed: 3,
      strength,
    });
    assert.equal(response.status, 200);
    const output = await bytesOf(response);
    const metadata = await sharp(output).metadata();
    assert.deepEqual([metadata.width, metadata.height, metadata.format], [96, 64, 'jpeg']);
    distances.push(await regionDistance(source, output));
  }
  assert.ok(distances[0]! < 3, `strength 0 keeps the input: ${distances[0]}`);
  assert.ok(distances[1]! + 5 < distances[2]!, `more change at higher strength: ${distances.join(', ')}`);
  const other = await post(sandbox, 'sdxl-img2img', {
    image: b64(source),
    prompt: 'p',
    seed: 4,
    strength: 0.9,
  });
  const same = await post(sandbox, 'sdxl-img2img', {
    image: b64(source),
    prompt: 'p',
    seed: 3,
    strength: 0.9,
  });
  assert.ok((await regionDistance(await bytesOf(other), await bytesOf(same))) > 5, 'another seed differs');
});

test('inpaint repaints only the masked region, and maskPolarity inverts which colour repaints', async (t) => {
  const sandbox = await sandboxFor(t);
  const source = await png(128, 64, '#808080', '#808080');
  const mask = await leftMask(128, 64);
  const body = { image: b64(source), mask: dataUrl(mask), prompt: 'flowers', seed: 11 };
  const white = await bytesOf(await post(sandbox, 'sdxl-inpaint', body));
  const left = { left: 0, right: 0.4 };
  const right = { left: 0.6, right: 1 };
  assert.ok((await regionDistance(source, white, right)) < 2, 'black (unmasked) pixels are kept');
  assert.ok((await regionDistance(source, white, left)) > 10, 'white (masked) pixels are repainted');
  assert.deepEqual(
    [(await sharp(white).metadata()).width, (await sharp(white).metadata()).height],
    [128, 64],
  );

  sandbox.configure({ maskPolarity: 'black-repaints' });
  const black = await bytesOf(await post(sandbox, 'sdxl-inpaint', body));
  assert.ok((await regionDistance(source, black, left)) < 2, 'now white is kept');
  assert.ok((await regionDistance(source, black, right)) > 10, 'and black is repainted');

  // A mask of another size is stretched to the image.
  const small = await post(sandbox, 'sdxl-inpaint', { ...body, mask: b64(await leftMask(32, 32)) });
  assert.equal(small.status, 200);
  await bytesOf(small);
});

test('esrgan scales by scale in the requested format and quality', async (t) => {
  const sandbox = await sandboxFor(t, { maxOutputPixels: 300 * 300 });
  const source = await png(30, 20);
  for (const [scale, format, type] of [
    [2, undefined, 'image/jpeg'],
    ['4', 'png', 'image/png'],
    [8, 'webp', 'image/webp'],
  ] as const) {
    const response = await post(sandbox, 'esrgan', {
      image: b64(source),
      scale,
      ...(format && { output_format: format }),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), type);
    const metadata = await sharp(await bytesOf(response)).metadata();
    assert.deepEqual([metadata.width, metadata.height], [30 * Number(scale), 20 * Number(scale)]);
    assert.equal(`image/${metadata.format}`, type);
  }
  const noisy = await sharp(randomBytes(40 * 40 * 3), { raw: { width: 40, height: 40, channels: 3 } })
    .png()
    .toBuffer();
  const sizes: number[] = [];
  for (const quality of [10, 100]) {
    sizes.push((await bytesOf(await post(sandbox, 'esrgan', { image: b64(noisy), quality }))).length);
  }
  assert.ok(sizes[0]! < sizes[1]!, `quality 10 is smaller than 100: ${sizes.join(' < ')}`);

  const tooBig = await post(sandbox, 'esrgan', { image: b64(noisy), scale: 8 });
  assert.equal(tooBig.status, 422);
  assert.match(await errorOf(tooBig), /^scale: the result would be 320x320 pixels/);
});

test('controlnet follows the control image size and edges; ssd-1b makes 1024x1024', async (t) => {
  const sandbox = await sandboxFor(t);
  const control = await png(80, 60, '#ffffff', '#000000');
  const strong = await bytesOf(
    await post(sandbox, 'sdxl-controlnet', {
      image: b64(control),
      prompt: 'a city',
      seed: 2,
      controlnet_scale: 1,
    }),
  );
  const none = await bytesOf(
    await post(sandbox, 'sdxl-controlnet', {
      image: b64(control),
      prompt: 'a city',
      seed: 2,
      controlnet_scale: 0,
    }),
  );
  const metadata = await sharp(strong).metadata();
  assert.deepEqual([metadata.width, metadata.height], [80, 60]);
  const edge = { left: 0.45, right: 0.55 };
  assert.ok((await regionDistance(strong, none, edge)) > 10, 'the edge shows at controlnet_scale 1');
  assert.ok((await regionDistance(strong, none, { left: 0, right: 0.3 })) < 3, 'flat areas are untouched');

  const ssd = await post(sandbox, 'ssd-1b', { prompt: 'a fox' });
  const drawn = await sharp(await bytesOf(ssd)).metadata();
  assert.deepEqual([drawn.width, drawn.height], [1024, 1024]);
  assert.match(ssd.headers.get('x-seed-value') ?? '', /^\d+$/, 'a missing seed is drawn and reported');
});

test('samples bill per image; base64 answers carry every image; binary carries the first', async (t) => {
  const sandbox = await sandboxFor(t, { costs: { 'sdxl-img2img': 0.5 } });
  const image = b64(await png(24, 24));
  const binary = await post(sandbox, 'sdxl-img2img', { image, prompt: 'x', samples: 3, seed: 1 });
  assert.equal(binary.headers.get('content-type'), 'image/jpeg');
  await bytesOf(binary);
  assert.equal(sandbox.credits, 98.5);
  const json = await post(sandbox, 'sdxl-img2img', { image, prompt: 'x', samples: 2, seed: 1, base64: true });
  assert.equal(json.headers.get('content-type'), 'application/json');
  const body = (await json.json()) as { image: string[]; status: string };
  assert.equal(body.image.length, 2);
  assert.notEqual(body.image[0], body.image[1], 'samples differ');
  assert.equal(sandbox.credits, 97.5);
  assert.deepEqual(
    sandbox.billed.map((call) => [call.images, call.cost]),
    [
      [3, 1.5],
      [2, 1],
    ],
  );
  // esrgan has no base64 parameter: the field is ignored like any unknown one.
  const upscale = await post(sandbox, 'esrgan', { image, base64: true });
  assert.equal(upscale.headers.get('content-type'), 'image/jpeg');
  await bytesOf(upscale);
  assert.throws(() => sandbox.configure({ costs: { 'no-such-model': 1 } }), RangeError);
});

test('statuses, failureRate, rpm and dropRate apply to every model, sharing one script and window', async (t) => {
  const sandbox = await sandboxFor(t, { statuses: [503, 200, 429], rpm: 4, rateWindowMs: 60_000 });
  const body = await validBody('sdxl-inpaint');
  const first = await post(sandbox, 'sdxl-inpaint', body);
  assert.equal(first.status, 503);
  await bytesOf(first);
  const second = await post(sandbox, 'esrgan', await validBody('esrgan'));
  assert.equal(second.status, 200);
  await bytesOf(second);
  const third = await post(sandbox, 'sdxl1.0-txt2img', { prompt: 'x' });
  assert.equal(third.status, 429);
  assert.ok(third.headers.get('x-rate-limit-reset-at-utc'));
  await bytesOf(third);
  const fourth = await post(sandbox, 'ssd-1b', { prompt: 'x' });
  assert.equal(fourth.status, 200);
  await bytesOf(fourth);
  const limited = await post(sandbox, 'sdxl-controlnet', await validBody('sdxl-controlnet'));
  assert.equal(limited.status, 429, 'the fifth admitted POST of any model exceeds rpm 4');
  assert.match(await errorOf(limited), /Rate limit exceeded: 4 requests per 60 s/);

  sandbox.configure({ rpm: undefined, failureRate: 1 });
  const failed = await post(sandbox, 'sdxl-img2img', await validBody('sdxl-img2img'));
  assert.equal(failed.status, 500);
  await bytesOf(failed);
  const billedBefore = sandbox.billed.length;
  sandbox.configure({ failureRate: 0, dropRate: 1 });
  await assert.rejects(post(sandbox, 'sdxl-img2img', await validBody('sdxl-img2img')));
  assert.equal(sandbox.billed.length, billedBefore + 1, 'a dropped answer was still billed');
  assert.equal(sandbox.billed.at(-1)?.slug, 'sdxl-img2img');
});

test('POST /upload-asset stores images served at /assets without a key; refuses what it should', async (t) => {
  const sandbox = await sandboxFor(t);
  const first = await png(20, 10);
  const second = await sharp(first).webp().toBuffer();
  const response = await fetch(`${sandbox.origin}/upload-asset`, {
    method: 'POST',
    headers: { ...JSON_HEADERS, accept: 'application/json, text/plain, */*' },
    body: JSON.stringify({ data_urls: [dataUrl(first), dataUrl(second, 'image/webp')] }),
  });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { urls: string[]; file_urls: string[]; message: string };
  assert.equal(body.message, 'Files uploaded successfully');
  assert.deepEqual(body.file_urls, body.urls);
  assert.equal(body.urls.length, 2);
  for (const [index, url] of body.urls.entries()) {
    assert.ok(url.startsWith(`${sandbox.origin}/assets/`), url);
    const served = await fetch(url);
    assert.equal(served.status, 200);
    assert.equal(served.headers.get('content-type'), index === 0 ? 'image/png' : 'image/webp');
    assert.deepEqual(await bytesOf(served), index === 0 ? first : second);
  }
  assert.equal(sandbox.credits, 100, 'uploads are not billed');

  const refusals: [RequestInit, number, RegExp | undefined][] = [
    [{ headers: { 'content-type': 'application/json' }, body: '{}' }, 401, undefined],
    [{ headers: { 'x-api-key': KEY }, body: '{}' }, 406, undefined],
    [{ headers: JSON_HEADERS, body: '{"data_urls":[]}' }, 422, /^data_urls: must be a non-empty array/],
    [
      { headers: JSON_HEADERS, body: '{"data_urls":["data:text/plain;base64,aGk="]}' },
      422,
      /^data_urls\[0\]/,
    ],
    [
      { headers: JSON_HEADERS, body: JSON.stringify({ data_urls: [dataUrl(first, 'image/jpeg')] }) },
      422,
      /holds png/,
    ],
  ];
  for (const [init, status, pattern] of refusals) {
    const refused = await fetch(`${sandbox.origin}/upload-asset`, { method: 'POST', ...init });
    assert.equal(refused.status, status);
    if (pattern) assert.match(await errorOf(refused), pattern);
    else await bytesOf(refused);
  }
  const missing = await fetch(`${sandbox.origin}/assets/nothing.png`);
  assert.equal(missing.status, 404);
  await bytesOf(missing);
  const underV1 = await fetch(`${sandbox.url}/upload-asset`, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: '{}',
  });
  assert.equal(underV1.status, 404, 'upload-asset lives at the root, not under /v1');
  await bytesOf(underV1);
});

test('uploaded assets expire after resultTtlMs', async (t) => {
  const sandbox = await sandboxFor(t, { resultTtlMs: 1000 });
  const response = await fetch(`${sandbox.origin}/upload-asset`, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify({ data_urls: [dataUrl(await png(8, 8))] }),
  });
  const { urls } = (await response.json()) as { urls: string[] };
  assert.equal((await fetch(urls[0]!)).status, 200);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const expired = await fetch(urls[0]!);
  assert.equal(expired.status, 404);
  await bytesOf(expired);
  const used = await post(sandbox, 'esrgan', { image: urls[0] });
  assert.equal(used.status, 422);
  assert.match(await errorOf(used), /^image: could not fetch .*404/);
});

test('image bodies may be large (64 MiB); txt2img keeps its 1 MiB limit', async (t) => {
  const sandbox = await sandboxFor(t);
  const width = 720;
  const noisy = await sharp(randomBytes(width * width * 3), { raw: { width, height: width, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
  // Every body is built before the first request: building 64 MiB on a busy machine can outlast the
  // server's 5 s keep-alive, and a POST sent on a socket the server is closing fails with ECONNRESET.
  const body = JSON.stringify({ image: b64(noisy), scale: 2 });
  const hugeBody = JSON.stringify({ image: 'A'.repeat(64 * 1024 * 1024 + 10) });
  const longPrompt = JSON.stringify({ prompt: 'x'.repeat(1024 * 1024 + 10) });
  assert.ok(body.length > 2 * 1024 * 1024 * 0.9, 'well over the 1 MiB of txt2img');

  const huge = await post(sandbox, 'esrgan', hugeBody);
  assert.equal(huge.status, 413);
  assert.match(await errorOf(huge), /larger than 64 MiB/);
  const txt = await post(sandbox, 'sdxl1.0-txt2img', longPrompt);
  assert.equal(txt.status, 413);
  await bytesOf(txt);
  const response = await post(sandbox, 'esrgan', body);
  assert.equal(response.status, 200);
  const metadata = await sharp(await bytesOf(response)).metadata();
  assert.equal(metadata.width, 1440);
});

test('the record keeps the last recordLimit requests, with long strings elided to a checkable marker', async (t) => {
  const sandbox = await sandboxFor(t, { recordLimit: 3 });
  const big = b64(
    await sharp(randomBytes(64 * 64 * 3), { raw: { width: 64, height: 64, channels: 3 } })
      .png()
      .toBuffer(),
  );
  assert.ok(big.length > 8 * 1024);
  const held = sandbox.requests;
  for (let i = 0; i < 5; i++) {
    await bytesOf(await post(sandbox, 'esrgan', { image: big, tag: i }));
  }
  assert.equal(sandbox.requests.length, 3);
  assert.equal(held, sandbox.requests, 'the same array, trimmed in place');
  assert.deepEqual(
    sandbox.requests.map((request) => (request.body as { tag: number }).tag),
    [2, 3, 4],
  );
  const recorded = (sandbox.requests[0]!.body as { image: string }).image;
  assert.equal(recorded, elisionMarker(big));
  const digest = createHash('sha256').update(big).digest('hex');
  assert.equal(recorded, `<elided ${big.length} chars sha256:${digest}>`);
  assert.equal(sandbox.requests[0]!.status, 200);
  sandbox.configure({ recordLimit: 1 });
  await bytesOf(await fetch(`${sandbox.url}/get-user-credits`, { headers: { 'x-api-key': KEY } }));
  assert.equal(sandbox.requests.length, 1);
  assert.throws(() => sandbox.configure({ recordLimit: 0 }), RangeError);
});

test('every model route sits behind the key and the JSON content type', async (t) => {
  const sandbox = await sandboxFor(t);
  for (const slug of [sdxlImg2Img.slug, sdxlInpaint.slug, esrgan.slug, sdxlControlnet.slug, ssd1b.slug]) {
    assert.ok(findModel(slug));
    const noKey = await post(sandbox, slug, {}, {
      'content-type': 'application/json',
    } as typeof JSON_HEADERS);
    assert.equal(noKey.status, 401);
    await bytesOf(noKey);
    const text = await post(sandbox, slug, {}, { 'x-api-key': KEY } as typeof JSON_HEADERS);
    assert.equal(text.status, 406);
    await bytesOf(text);
    const get = await fetch(`${sandbox.url}/${slug}`, { headers: { 'x-api-key': KEY } });
    assert.equal(get.status, 405);
    await bytesOf(get);
  }
  const unknown = await post(sandbox, 'sdxl-nothing', {});
  assert.equal(unknown.status, 404);
  await bytesOf(unknown);
});
