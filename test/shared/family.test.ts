// vary, inpaint and upscale over the synchronous API against the sandbox over HTTP: what goes on the
// wire for each input form, what comes back, and what is refused before anything is billed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import sharp from 'sharp';
import { createClient } from '@sdxl-kit/client';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { rawServer } from '../support/http.ts';
import { maskImage, pngImage } from '../support/images.ts';
import { failure as failureOf } from '../support/failure.ts';

const KEY = 'SG_familysecret00099';

/** What the sandbox's record keeps of a long string: its sha256 is in the marker. */
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
function sameString(recorded: unknown, sent: string): boolean {
  if (recorded === sent) return true;
  return typeof recorded === 'string' && recorded.includes(sha256(sent).slice(0, 16));
}

describe('vary, inpaint and upscale against the sandbox over HTTP', () => {
  let sandbox: Sandbox;
  const client = (options: Parameters<typeof createClient>[0] = {}) =>
    createClient({ apiKey: KEY, baseUrl: sandbox.url, retryBaseDelayMs: 5, retryMaxDelayMs: 20, ...options });
  const posts = (path: string) =>
    sandbox.requests.filter((request) => request.method === 'POST' && request.path === path);

  before(async () => {
    sandbox = await startSandbox({ apiKey: KEY });
  });
  beforeEach(() => {
    sandbox.credits = 100;
    sandbox.requests.length = 0;
  });
  after(() => sandbox.close());

  /** The error, checked for the key in every view of it. */
  const failure = (promise: Promise<unknown>) => failureOf(promise, KEY);

  it('vary sends bytes as raw base64 (as Segmind’s samples do) with only the documented defaults, and returns a derived JPEG', async () => {
    const image = await pngImage(96, 64);
    const result = await client().vary({ image, prompt: 'as a watercolour', strength: 0.5, seed: 42 });
    const [sent] = posts('/v1/sdxl-img2img');
    const body = sent!.body as Record<string, unknown>;
    assert.ok(sameString(body.image, image.toString('base64')), 'raw base64, no data: prefix');
    assert.deepEqual(Object.keys(body).sort(), ['image', 'prompt', 'samples', 'seed', 'strength']);
    assert.equal(result.model, 'sdxl-img2img');
    assert.equal(result.images[0]!.mimeType, 'image/jpeg');
    assert.equal(result.seed, 42);
    assert.ok(result.cost !== undefined && result.remainingCredits !== undefined);
    assert.deepEqual(result.request, { prompt: 'as a watercolour', samples: 1, strength: 0.5, seed: 42 });
  });

  it('vary takes a data: URL and base64 the same way, and passes an http(s) URL through for the API to fetch', async () => {
    const image = await pngImage(32, 32);
    const base64 = image.toString('base64');
    await client().vary({ image: `data:image/png;base64,${base64}`, prompt: 'a' });
    await client().vary({ image: base64, prompt: 'b' });
    const source = await rawServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'image/png' }).end(image),
    );
    try {
      const url = source.url.replace('/v1', '/cat.png');
      await client().vary({ image: url, prompt: 'c' });
      const bodies = posts('/v1/sdxl-img2img').map((request) => request.body as Record<string, unknown>);
      assert.ok(sameString(bodies[0]!.image, base64));
      assert.ok(sameString(bodies[1]!.image, base64));
      assert.equal(bodies[2]!.image, url);
      assert.equal(source.count, 1, 'the sandbox fetched the URL; the client did not');
    } finally {
      await source.close();
    }
  });

  it('several variations come back from one billed call', async () => {
    const image = await pngImage(32, 32);
    const result = await client().vary({ image, prompt: 'x', samples: 3 });
    assert.equal(result.images.length, 3);
    assert.equal(posts('/v1/sdxl-img2img').length, 1);
    assert.equal((posts('/v1/sdxl-img2img')[0]!.body as { base64?: unknown }).base64, true);
  });

  it('inpaint uploads image and mask through the storage upload (the model takes URLs) and repaints only the white region', async () => {
    const image = await pngImage(64, 64);
    const mask = await maskImage(64, 64, [0, 0, 32, 64]);
    const result = await client().inpaint({ image, mask, prompt: 'a red hat', seed: 3 });
    const uploads = posts('/upload-asset');
    assert.equal(uploads.length, 1, 'both images in one upload');
    assert.equal(uploads[0]!.headers['x-api-key'], KEY);
    const body = posts('/v1/sdxl-inpaint')[0]!.body as Record<string, string>;
    assert.match(body.image!, /^http:\/\/127\.0\.0\.1:\d+\/assets\//);
    assert.match(body.mask!, /^http:\/\/127\.0\.0\.1:\d+\/assets\//);
    const out = await sharp(result.images[0]!.bytes)
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const source = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([out.info.width, out.info.height], [64, 64]);
    const pixel = (data: Buffer, x: number, y: number) => [
      ...data.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3),
    ];
    const distance = (a: number[], b: number[]) => Math.max(...a.map((value, i) => Math.abs(value - b[i]!)));
    // JPEG blurs edges a little: compare away from the mask's border.
    assert.ok(distance(pixel(out.data, 56, 32), pixel(source.data, 56, 32)) < 24, 'the black half is kept');
    assert.ok(
      distance(pixel(out.data, 8, 32), pixel(source.data, 8, 32)) > 24,
      'the white half is repainted',
    );
  });

  it('refuses a mask of another size and a text file as an image before anything is sent or uploaded', async () => {
    const image = await pngImage(64, 64);
    const small = await maskImage(32, 32, [0, 0, 8, 8]);
    const error = await failure(client().inpaint({ image, mask: small, prompt: 'x' }));
    assert.equal(error.code, 'invalid_request');
    assert.match(
      error.message,
      /mask: a 32x32 PNG is not allowed; allowed: a mask of the image's size, 64x64/,
    );
    const text = await failure(client().upscale({ image: Buffer.from('not an image at all, just words') }));
    assert.match(text.message, /image: \d+ bytes is not a JPEG, PNG or WebP image/);
    assert.equal(sandbox.requests.length, 0);
  });

  it('upscale enlarges in the format and quality asked for; scale as text works; scale 3 is refused unsent', async () => {
    const image = await pngImage(50, 30);
    const png = await client().upscale({ image, scale: '4', outputFormat: 'png' });
    assert.equal(png.images[0]!.mimeType, 'image/png');
    const metadata = await sharp(png.images[0]!.bytes).metadata();
    assert.deepEqual([metadata.width, metadata.height], [200, 120]);
    const webp = await client().upscale({ image, outputFormat: 'webp', quality: 40 });
    assert.equal(webp.images[0]!.mimeType, 'image/webp');
    const sent = posts('/v1/esrgan').length;
    const error = await failure(client().upscale({ image, scale: 3 as never }));
    assert.match(error.message, /scale: 3 is not allowed; allowed: 2, 4 or 8/);
    assert.equal(posts('/v1/esrgan').length, sent);
  });

  it('sends extra fields by their API name; an unknown model is refused by name', async () => {
    const image = await pngImage(16, 16);
    await client().upscale({ image, extra: { face_enhance: true } });
    assert.equal((posts('/v1/esrgan')[0]!.body as Record<string, unknown>).face_enhance, true);
    const error = await failure(client().run('sdxl-turbo', { prompt: 'x' }));
    assert.match(error.message, /model: "sdxl-turbo" is not allowed; allowed: a declared model/);
  });

  it('never sends the key to an address the answer names on another host', async () => {
    // A status URL on a host that is neither the API's nor Segmind's: polled without the key.
    const foreign = await rawServer((req, res) => {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(
          JSON.stringify({ status: 'FAILED', error: req.headers['x-api-key'] ? 'got a key' : 'no key here' }),
        );
    });
    const api = await rawServer((_req, res) => {
      const elsewhere = foreign.url.replace('/v1', '/requests/abc');
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          request_id: 'abc',
          status: 'QUEUED',
          status_url: `${elsewhere}/status`,
          response_url: elsewhere,
        }),
      );
    });
    try {
      const error = await failure(
        createClient({ apiKey: KEY, baseUrl: api.url, poll: { firstDelayMs: 1 } }).generate(
          { prompt: 'x' },
          { api: 'async' },
        ),
      );
      assert.equal(error.code, 'job_failed');
      assert.match(error.message, /no key here/);
    } finally {
      await foreign.close();
      await api.close();
    }
  });
});
