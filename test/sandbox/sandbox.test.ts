import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test, type TestContext } from 'node:test';
import sharp from 'sharp';
import {
  SANDBOX_DEFAULT_API_KEY,
  renderImage,
  startSandbox,
  type Sandbox,
  type SandboxOptions,
} from '../../shared/sandbox/src/index.ts';

const KEY = SANDBOX_DEFAULT_API_KEY;
const JSON_HEADERS = { 'x-api-key': KEY, 'content-type': 'application/json' };

async function sandboxFor(t: TestContext, options: SandboxOptions = {}): Promise<Sandbox> {
  const sandbox = await startSandbox({ port: 0, ...options });
  t.after(() => sandbox.close());
  return sandbox;
}

function generate(
  sandbox: Sandbox,
  body: unknown,
  init: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  return fetch(`${sandbox.url}/sdxl1.0-txt2img`, {
    method: 'POST',
    headers: init.headers ?? JSON_HEADERS,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(init.signal ? { signal: init.signal } : {}),
  });
}

async function errorOf(response: Response): Promise<string> {
  assert.equal(response.headers.get('content-type'), 'application/json');
  const body = (await response.json()) as { error: unknown };
  assert.equal(typeof body.error, 'string');
  return body.error as string;
}

/** Mean absolute difference per channel (0..255) between two images, compared at 64x64. */
async function pixelDistance(first: Buffer, second: Buffer): Promise<number> {
  const [a, b] = await Promise.all(
    [first, second].map((image) => sharp(image).resize(64, 64).removeAlpha().raw().toBuffer()),
  );
  let total = 0;
  for (let i = 0; i < a!.length; i++) total += Math.abs(a![i]! - b![i]!);
  return total / a!.length;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

test('a binary 200 is a 1024x1024 JPEG with the contract headers', async (t) => {
  const sandbox = await sandboxFor(t);
  const response = await generate(sandbox, { prompt: 'a lighthouse', seed: 42 });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'image/jpeg');
  const bytes = Buffer.from(await response.arrayBuffer());
  assert.equal(response.headers.get('content-length'), String(bytes.length));
  const metadata = await sharp(bytes).metadata();
  assert.equal(metadata.format, 'jpeg');
  assert.equal(metadata.width, 1024);
  assert.equal(metadata.height, 1024);
  assert.equal(response.headers.get('x-remaining-credits'), '99.992');
  assert.equal(response.headers.get('x-cost'), '0.008');
  assert.equal(response.headers.get('x-seed-value'), '42');
  assert.match(
    response.headers.get('x-request-id') ?? '',
    /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  );
  assert.match(response.headers.get('x-generation-time') ?? '', /^\d+(\.\d+)?$/);
});

test('credits fall by samples x cost and the balance endpoint reports them', async (t) => {
  const sandbox = await sandboxFor(t, { credits: 1, costPerImage: 0.1 });
  const first = await generate(sandbox, { prompt: 'x', seed: 1 });
  await first.arrayBuffer();
  assert.equal(first.headers.get('x-remaining-credits'), '0.9');
  const second = await generate(sandbox, { prompt: 'x', seed: 1, samples: 3, base64: true });
  await second.arrayBuffer();
  assert.equal(second.headers.get('x-cost'), '0.3');
  // 1 - 0.1 - 0.3 in floats is 0.6000000000000001; the sandbox keeps the balance tidy.
  assert.equal(second.headers.get('x-remaining-credits'), '0.6');
  assert.equal(sandbox.credits, 0.6);

  const balance = await fetch(`${sandbox.url}/get-user-credits`, { headers: { 'x-api-key': KEY } });
  assert.equal(balance.status, 200);
  assert.deepEqual(await balance.json(), { credits: 0.6, 'free-credits': 0 });

  sandbox.credits = 5;
  const after = await fetch(`${sandbox.url}/get-user-credits`, { headers: { 'x-api-key': KEY } });
  assert.deepEqual(await after.json(), { credits: 5, 'free-credits': 0 });
  assert.throws(() => {
    sandbox.credits = Number.NaN;
  }, RangeError);
});

test('free credits are reported apart by the balance endpoint, never in x-remaining-credits, and not spent', async (t) => {
  const sandbox = await sandboxFor(t, { credits: 1, freeCredits: 0.5, costPerImage: 0.1 });
  const response = await generate(sandbox, { prompt: 'x', seed: 1 });
  await response.arrayBuffer();
  assert.equal(response.headers.get('x-remaining-credits'), '0.9');
  const balance = await fetch(`${sandbox.url}/get-user-credits`, { headers: { 'x-api-key': KEY } });
  assert.deepEqual(await balance.json(), { credits: 0.9, 'free-credits': 0.5 });
  sandbox.configure({ freeCredits: 2 });
  const after = await fetch(`${sandbox.url}/get-user-credits`, { headers: { 'x-api-key': KEY } });
  assert.deepEqual(await after.json(), { credits: 0.9, 'free-credits': 2 });
  assert.throws(() => sandbox.configure({ freeCredits: -1 }), /freeCredits must be a finite number >= 0/);
});

test('seed -1 draws a random seed from the random source and reports it in x-seed-value', async (t) => {
  const sandbox = await sandboxFor(t, { random: () => 0.5 });
  const response = await generate(sandbox, { prompt: 'x' });
  await response.arrayBuffer();
  assert.equal(response.headers.get('x-seed-value'), '500000000000000');

  sandbox.configure({ random: Math.random });
  const seeds = new Set<number>();
  for (let i = 0; i < 2; i++) {
    const random = await generate(sandbox, { prompt: 'x', seed: -1 });
    await random.arrayBuffer();
    const seed = Number(random.headers.get('x-seed-value'));
    assert.ok(Number.isInteger(seed) && seed >= 0 && seed <= 999_999_999_999_999);
    seeds.add(seed);
  }
  assert.equal(seeds.size, 2);
});

test('images are deterministic in prompt, seed and index, and another seed looks different', async (t) => {
  const sandbox = await sandboxFor(t);
  const body = { prompt: 'a red fox in snow', seed: 7 };
  const first = Buffer.from(await (await generate(sandbox, body)).arrayBuffer());
  const again = Buffer.from(await (await generate(sandbox, body)).arrayBuffer());
  assert.ok(first.equals(again), 'same prompt and seed give the same bytes');

  const direct = await renderImage({ prompt: body.prompt, seed: 7, index: 0, width: 1024, height: 1024 });
  assert.ok(direct.equals(first), 'renderImage is what the server sends');

  const otherSeed = Buffer.from(await (await generate(sandbox, { ...body, seed: 8 })).arrayBuffer());
  assert.ok(!otherSeed.equals(first));
  assert.ok((await pixelDistance(first, otherSeed)) > 8, 'another seed is visibly different');

  const otherIndex = await renderImage({ prompt: body.prompt, seed: 7, index: 1, width: 1024, height: 1024 });
  assert.ok((await pixelDistance(first, otherIndex)) > 8, 'the second sample differs from the first');

  const small = await renderImage({ prompt: 'x', seed: 1, index: 0, width: 320, height: 200 });
  const metadata = await sharp(small).metadata();
  assert.deepEqual([metadata.width, metadata.height], [320, 200]);
});

test('base64 answers follow base64Shape', async (t) => {
  const sandbox = await sandboxFor(t);
  const request = (samples: number) =>
    generate(sandbox, { prompt: 'shapes', seed: 3, samples, base64: true });
  const cases: [SandboxOptions['base64Shape'], number, string, 'string' | number][] = [
    ['auto', 1, 'image', 'string'],
    ['auto', 2, 'image', 2],
    ['image-string', 2, 'image', 'string'],
    ['image-array', 1, 'image', 1],
    ['images-array', 2, 'images', 2],
  ];
  for (const [shape, samples, field, expected] of cases) {
    sandbox.configure({ base64Shape: shape });
    const response = await request(samples);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/json');
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(body['status'], 'success');
    assert.equal(typeof body['interTime'], 'number');
    const value = body[field];
    if (expected === 'string') {
      assert.equal(typeof value, 'string', `${shape} with ${samples}`);
    } else {
      assert.ok(Array.isArray(value), `${shape} with ${samples}`);
      assert.equal(value.length, expected);
    }
    const firstImage = Buffer.from((Array.isArray(value) ? value[0] : value) as string, 'base64');
    assert.equal((await sharp(firstImage).metadata()).width, 1024);
    if (Array.isArray(value) && value.length > 1) assert.notEqual(value[0], value[1]);
  }
});

test('unknown paths are 404 JSON, and models only under /v1 (and /v2, the async API)', async (t) => {
  const sandbox = await sandboxFor(t);
  const origin = sandbox.url.replace(/\/v1$/, '');
  for (const path of [
    '/v1/sdxl-txt2img',
    '/sdxl1.0-txt2img',
    '/v2/sdxl-txt2img',
    '/v3/sdxl1.0-txt2img',
    '/',
  ]) {
    const response = await fetch(`${origin}${path}`, { method: 'POST', headers: JSON_HEADERS, body: '{}' });
    assert.equal(response.status, 404, path);
    assert.equal(await errorOf(response), 'The requested model endpoint or URL does not exist.');
  }
});

test('a wrong method is 405 with an HTML page', async (t) => {
  const sandbox = await sandboxFor(t);
  const get = await fetch(`${sandbox.url}/sdxl1.0-txt2img`, { headers: { 'x-api-key': KEY } });
  assert.equal(get.status, 405);
  assert.match(get.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(await get.text(), /<html/);
  const post = await fetch(`${sandbox.url}/get-user-credits`, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: '{}',
  });
  assert.equal(post.status, 405);
  assert.match(await post.text(), /Method Not Allowed/);
});

test('a missing or wrong key is 401 and the message never echoes the key', async (t) => {
  const sandbox = await sandboxFor(t);
  const missing = await generate(
    sandbox,
    { prompt: 'x' },
    { headers: { 'content-type': 'application/json' } },
  );
  assert.equal(missing.status, 401);
  assert.match(await errorOf(missing), /x-api-key/);

  const secret = 'sk-wrong-but-secret-123';
  const wrong = await generate(
    sandbox,
    { prompt: 'x' },
    { headers: { 'x-api-key': secret, 'content-type': 'application/json' } },
  );
  assert.equal(wrong.status, 401);
  const message = await errorOf(wrong);
  assert.match(message, /^Unauthorized\. API key is invalid or may have expired/);
  assert.ok(!message.includes(secret));

  const bearer = await generate(
    sandbox,
    { prompt: 'x' },
    { headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' } },
  );
  assert.equal(bearer.status, 401, 'the key is only accepted in x-api-key');

  const credits = await fetch(`${sandbox.url}/get-user-credits`, { headers: { 'x-api-key': secret } });
  assert.equal(credits.status, 401);
  assert.ok(!(await credits.text()).includes(secret));

  const custom = await sandboxFor(t, { apiKey: 'my-key' });
  const accepted = await generate(
    custom,
    { prompt: 'x', seed: 1 },
    { headers: { 'x-api-key': 'my-key', 'content-type': 'application/json' } },
  );
  assert.equal(accepted.status, 200);
  await accepted.arrayBuffer();
  assert.equal(sandbox.credits, 100, 'nothing refused was billed');
});

test('a body that is not declared JSON is 406 Invalid content type', async (t) => {
  const sandbox = await sandboxFor(t);
  const body = JSON.stringify({ prompt: 'x', seed: 1 });
  for (const contentType of [undefined, 'text/plain', 'application/x-www-form-urlencoded']) {
    const headers: Record<string, string> = { 'x-api-key': KEY };
    if (contentType) headers['content-type'] = contentType;
    // fetch labels a string body text/plain when no content type is given; a Uint8Array goes bare.
    const response = await fetch(`${sandbox.url}/sdxl1.0-txt2img`, {
      method: 'POST',
      headers,
      body: new TextEncoder().encode(body),
    });
    assert.equal(response.status, 406, String(contentType));
    assert.equal(await errorOf(response), 'Invalid content type');
  }
  const withCharset = await generate(sandbox, body, {
    headers: { 'x-api-key': KEY, 'content-type': 'Application/JSON; charset=utf-8' },
  });
  assert.equal(withCharset.status, 200);
  await withCharset.arrayBuffer();
});

test('invalid bodies are 422 naming the field and what is wrong', async (t) => {
  const sandbox = await sandboxFor(t);
  const cases: [unknown, RegExp][] = [
    ['{"prompt": ', /not valid JSON/],
    [[1, 2], /JSON object/],
    [{}, /prompt: is required/],
    [{ prompt: '' }, /prompt: must be a non-empty string/],
    [{ prompt: 5 }, /prompt: must be a non-empty string/],
    [{ prompt: 'x', negative_prompt: 3 }, /negative_prompt: must be a string/],
    [{ prompt: 'x', style: '' }, /style: must be a non-empty string/],
    [{ prompt: 'x', scheduler: null }, /scheduler: must be a non-empty string/],
    [{ prompt: 'x', samples: 5 }, /samples: must be a whole number from 1 to 4, got 5/],
    [{ prompt: 'x', samples: 1.5 }, /samples: must be a whole number/],
    [{ prompt: 'x', samples: '2' }, /samples: must be a whole number/],
    [{ prompt: 'x', num_inference_steps: 19 }, /num_inference_steps: must be a whole number from 20 to 100/],
    [{ prompt: 'x', num_inference_steps: 101 }, /num_inference_steps/],
    [{ prompt: 'x', guidance_scale: 0.5 }, /guidance_scale: must be a number from 1 to 25/],
    [{ prompt: 'x', guidance_scale: 26 }, /guidance_scale/],
    [{ prompt: 'x', strength: 0.05 }, /strength: must be a number from 0.1 to 1/],
    [{ prompt: 'x', high_noise_fraction: -0.1 }, /high_noise_fraction: must be a number from 0 to 1/],
    [{ prompt: 'x', seed: -2 }, /seed: must be a whole number from -1 to 999999999999999/],
    [{ prompt: 'x', seed: 1e15 }, /seed/],
    [{ prompt: 'x', img_width: 512 }, /img_width: can only be 1024/],
    [{ prompt: 'x', img_height: 768 }, /img_height: can only be 1024/],
    [{ prompt: 'x', refiner: 'yes' }, /refiner: must be true or false/],
    [{ prompt: 'x', base64: 1 }, /base64: must be true or false/],
    [{ prompt: 'x', high_noise_fraction: 1 }, /refiner: does not work when high_noise_fraction is 1/],
    [{ prompt: 'x', refiner: true, high_noise_fraction: 1 }, /refiner/],
    [{ prompt: '', samples: 0 }, /prompt: .*; samples: /],
  ];
  for (const [body, expected] of cases) {
    const response = await generate(sandbox, body);
    assert.equal(response.status, 422, JSON.stringify(body));
    assert.match(await errorOf(response), expected);
  }
  assert.equal(sandbox.credits, 100);
});

test('valid edge values, defaults and unknown fields are accepted', async (t) => {
  const sandbox = await sandboxFor(t);
  const bodies = [
    { prompt: 'x', seed: 5 },
    { prompt: 'x', seed: 5, refiner: false, high_noise_fraction: 1, unknown_field: 'ignored' },
    {
      prompt: 'x',
      negative_prompt: '',
      style: 'anything',
      scheduler: 'Euler a',
      samples: 4,
      num_inference_steps: 100,
      guidance_scale: 25,
      strength: 0.1,
      high_noise_fraction: 0,
      seed: 999_999_999_999_999,
      img_width: 1024,
      img_height: 1024,
      refiner: true,
      base64: false,
    },
  ];
  for (const body of bodies) {
    const response = await generate(sandbox, body);
    assert.equal(response.status, 200, JSON.stringify(body));
    await response.arrayBuffer();
  }
  const last = sandbox.requests.at(-1);
  assert.equal(last?.status, 200);
});

test('a binary answer for several samples holds image 0 and bills every sample', async (t) => {
  const sandbox = await sandboxFor(t);
  const response = await generate(sandbox, { prompt: 'four', seed: 9, samples: 4 });
  const bytes = Buffer.from(await response.arrayBuffer());
  assert.equal(response.headers.get('x-cost'), '0.032');
  const first = await renderImage({ prompt: 'four', seed: 9, index: 0, width: 1024, height: 1024 });
  assert.ok(bytes.equals(first));
});

test('too few credits is 406 in plain text, and nothing is billed', async (t) => {
  const sandbox = await sandboxFor(t, { credits: 0.01 });
  const response = await generate(sandbox, { prompt: 'x', samples: 2 });
  assert.equal(response.status, 406);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  assert.equal(await response.text(), 'Insufficient credits: balance 0.01, needed 0.016');
  assert.equal(response.headers.get('x-remaining-credits'), '0.01');
  assert.equal(sandbox.credits, 0.01);

  const exact = await generate(sandbox, { prompt: 'x', seed: 1 });
  assert.equal(exact.status, 200);
  await exact.arrayBuffer();
  assert.equal(exact.headers.get('x-remaining-credits'), '0.002');
});

test('every answer carries x-remaining-credits and Content-Length', async (t) => {
  const sandbox = await sandboxFor(t, { credits: 3.5 });
  const responses = [
    await fetch(`${sandbox.url}/nowhere`),
    await fetch(`${sandbox.url}/sdxl1.0-txt2img`),
    await generate(sandbox, { prompt: 'x' }, { headers: { 'content-type': 'application/json' } }),
    await generate(sandbox, { prompt: '' }),
    await fetch(`${sandbox.url}/get-user-credits`, { headers: { 'x-api-key': KEY } }),
  ];
  for (const response of responses) {
    const body = Buffer.from(await response.arrayBuffer());
    assert.equal(response.headers.get('x-remaining-credits'), '3.5', String(response.status));
    assert.equal(response.headers.get('content-length'), String(body.length), String(response.status));
  }
});

test('scripted statuses are answered in order with realistic bodies and are not billed', async (t) => {
  const sandbox = await sandboxFor(t, { statuses: [503, 200, 500] });
  const body = { prompt: 'x', seed: 1 };
  const first = await generate(sandbox, body);
  assert.equal(first.status, 503);
  assert.equal(typeof (await errorOf(first)), 'string');
  const second = await generate(sandbox, body);
  assert.equal(second.status, 200);
  await second.arrayBuffer();
  const third = await generate(sandbox, body);
  assert.equal(third.status, 500);
  await third.arrayBuffer();
  const fourth = await generate(sandbox, body);
  assert.equal(fourth.status, 200, 'the script is used up');
  await fourth.arrayBuffer();
  assert.equal(sandbox.credits, 99.984, 'only the two 200s were billed');

  // A request refused before the model does not use up a scripted status.
  sandbox.configure({ statuses: [502] });
  const refused = await generate(sandbox, { prompt: '' });
  assert.equal(refused.status, 422);
  await refused.arrayBuffer();
  const scripted = await generate(sandbox, body);
  assert.equal(scripted.status, 502);
  await scripted.arrayBuffer();
});

test('each scripted status has the body type the contract describes', async (t) => {
  const sandbox = await sandboxFor(t, { rateWindowMs: 1000 });
  const statuses = [401, 404, 405, 406, 422, 429, 500, 502, 503, 504];
  sandbox.configure({ statuses });
  for (const status of statuses) {
    const response = await generate(sandbox, { prompt: 'x', seed: 1 });
    assert.equal(response.status, status);
    const contentType = response.headers.get('content-type') ?? '';
    const text = await response.text();
    if (status === 405) {
      assert.match(contentType, /^text\/html/);
    } else if (status === 406) {
      assert.match(contentType, /^text\/plain/);
      assert.match(text, /^Insufficient credits: balance 100, needed 0.008$/);
    } else {
      assert.equal(contentType, 'application/json');
      assert.equal(typeof (JSON.parse(text) as { error: unknown }).error, 'string', String(status));
    }
    if (status === 429) {
      const resetAt = Date.parse(response.headers.get('x-rate-limit-reset-at-utc') ?? '');
      assert.ok(resetAt > Date.now() && resetAt <= Date.now() + 1100);
      assert.equal(response.headers.get('retry-after'), null);
    }
  }
  assert.equal(sandbox.credits, 100);
});

test('failureRate answers 500 without billing', async (t) => {
  const sandbox = await sandboxFor(t, { failureRate: 1 });
  const response = await generate(sandbox, { prompt: 'x', seed: 1 });
  assert.equal(response.status, 500);
  await errorOf(response);
  assert.equal(sandbox.credits, 100);
  sandbox.configure({ failureRate: 0 });
  const healthy = await generate(sandbox, { prompt: 'x', seed: 1 });
  assert.equal(healthy.status, 200);
  await healthy.arrayBuffer();
});

test('rpm answers 429 with the time the oldest request leaves the sliding window', async (t) => {
  const windowMs = 400;
  const sandbox = await sandboxFor(t, { rpm: 2, rateWindowMs: windowMs });
  const body = { prompt: 'x', seed: 1 };
  const firstAt = Date.now();
  for (let i = 0; i < 2; i++) {
    const admitted = await generate(sandbox, body);
    assert.equal(admitted.status, 200);
    await admitted.arrayBuffer();
  }
  const limited = await generate(sandbox, body);
  assert.equal(limited.status, 429);
  assert.match(await errorOf(limited), /Rate limit/);
  assert.equal(limited.headers.get('retry-after'), null);
  const header = limited.headers.get('x-rate-limit-reset-at-utc') ?? '';
  assert.match(header, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
  const resetAt = Date.parse(header);
  assert.ok(resetAt >= firstAt + windowMs && resetAt <= Date.now() + windowMs, header);
  assert.equal(sandbox.credits, 99.984, 'the 429 was not billed');

  await sleep(resetAt - Date.now() + 20);
  const again = await generate(sandbox, body);
  assert.equal(again.status, 200, 'a slot is free once the reset time has passed');
  await again.arrayBuffer();
});

test('truncateRate sends the full Content-Length, half the body, then hangs up (billed)', async (t) => {
  const sandbox = await sandboxFor(t, { truncateRate: 1 });
  const response = await generate(sandbox, { prompt: 'x', seed: 1 });
  assert.equal(response.status, 200);
  const declared = Number(response.headers.get('content-length'));
  assert.ok(declared > 1000);
  await assert.rejects(response.arrayBuffer());
  assert.equal(sandbox.credits, 99.992);

  const streamed = await generate(sandbox, { prompt: 'x', seed: 1 });
  let received = 0;
  await assert.rejects(async () => {
    for await (const chunk of streamed.body!) received += (chunk as Uint8Array).length;
  });
  assert.ok(received > 0 && received < declared, `received ${received} of ${declared}`);
});

test('dropRate hangs up before any answer; the job still ran and was billed', async (t) => {
  const sandbox = await sandboxFor(t, { dropRate: 1 });
  await assert.rejects(generate(sandbox, { prompt: 'x', seed: 1 }));
  assert.equal(sandbox.requests.length, 1);
  assert.equal(sandbox.requests[0]?.status, 0);
  assert.equal(sandbox.credits, 99.992);
  sandbox.configure({ dropRate: 0 });
  const healthy = await generate(sandbox, { prompt: 'x', seed: 1 });
  assert.equal(healthy.status, 200);
  await healthy.arrayBuffer();
});

test('latency delays a success without blocking other requests, and survives a client leaving', async (t) => {
  const sandbox = await sandboxFor(t, { latencyMs: 300 });
  const started = Date.now();
  const slow = generate(sandbox, { prompt: 'x', seed: 1 });
  await sleep(20);
  const balance = await fetch(`${sandbox.url}/get-user-credits`, { headers: { 'x-api-key': KEY } });
  assert.equal(balance.status, 200);
  await balance.arrayBuffer();
  assert.ok(Date.now() - started < 250, 'the balance call did not wait for the slow one');
  const response = await slow;
  await response.arrayBuffer();
  assert.ok(Date.now() - started >= 290);
  assert.ok(Number(response.headers.get('x-generation-time')) >= 0.29);

  const controller = new AbortController();
  const abandoned = generate(sandbox, { prompt: 'x', seed: 1 }, { signal: controller.signal });
  await sleep(50);
  controller.abort();
  await assert.rejects(abandoned);
  await sleep(300);
  sandbox.configure({ latencyMs: 0 });
  const after = await generate(sandbox, { prompt: 'x', seed: 1 });
  assert.equal(after.status, 200, 'the server is still healthy');
  await after.arrayBuffer();
  assert.equal(sandbox.requests[2]?.status, 0, 'no answer was sent to the client that left');
});

test('requests are recorded in order with parsed bodies and the status answered', async (t) => {
  const sandbox = await sandboxFor(t);
  await (await generate(sandbox, { prompt: 'recorded', seed: 1 })).arrayBuffer();
  await (await generate(sandbox, 'not json')).arrayBuffer();
  await (await fetch(`${sandbox.url}/get-user-credits?x=1`, { headers: { 'x-api-key': KEY } })).arrayBuffer();
  const [first, second, third] = sandbox.requests;
  assert.equal(sandbox.requests.length, 3);
  assert.equal(first?.method, 'POST');
  assert.equal(first?.path, '/v1/sdxl1.0-txt2img');
  assert.deepEqual(first?.body, { prompt: 'recorded', seed: 1 });
  assert.equal(first?.headers['x-api-key'], KEY);
  assert.equal(first?.status, 200);
  assert.equal(typeof first?.receivedAt, 'number');
  assert.equal(second?.body, 'not json');
  assert.equal(second?.status, 422);
  assert.equal(third?.method, 'GET');
  assert.equal(third?.path, '/v1/get-user-credits?x=1');
  assert.equal(third?.body, undefined);
  assert.equal(third?.status, 200);
});

test('close() with a request in flight resolves promptly and can be called twice', async () => {
  const sandbox = await startSandbox({ latencyMs: 10_000 });
  const inFlight = generate(sandbox, { prompt: 'x', seed: 1 });
  while (sandbox.requests.length === 0) await sleep(5);
  const started = Date.now();
  await sandbox.close();
  await sandbox.close();
  assert.ok(Date.now() - started < 1000);
  await assert.rejects(inFlight);
  await assert.rejects(fetch(`${sandbox.url}/get-user-credits`));
});

test('a body over 1 MiB is 413 and the server keeps serving', async (t) => {
  const sandbox = await sandboxFor(t);
  const huge = JSON.stringify({ prompt: 'x'.repeat(1024 * 1024 + 10) });
  const response = await generate(sandbox, huge);
  assert.equal(response.status, 413);
  await errorOf(response);
  assert.equal(sandbox.requests[0]?.body, undefined);
  const healthy = await generate(sandbox, { prompt: 'x', seed: 1 });
  assert.equal(healthy.status, 200);
  await healthy.arrayBuffer();
});

test('malformed HTTP and half-sent requests do not crash the server', async (t) => {
  const sandbox = await sandboxFor(t);
  await new Promise<void>((resolve) => {
    const socket = connect(sandbox.port, '127.0.0.1', () => socket.end('THIS IS NOT HTTP\r\n\r\n'));
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.resume();
  });
  await new Promise<void>((resolve) => {
    const socket = connect(sandbox.port, '127.0.0.1', () => {
      socket.write(
        'POST /v1/sdxl1.0-txt2img HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          `x-api-key: ${KEY}\r\nContent-Length: 100\r\n\r\n{"prompt":`,
      );
      setTimeout(() => socket.destroy(), 20);
    });
    socket.on('close', () => resolve());
  });
  const healthy = await generate(sandbox, { prompt: 'x', seed: 1 });
  assert.equal(healthy.status, 200);
  await healthy.arrayBuffer();
});

test('options are checked when given', async (t) => {
  const sandbox = await sandboxFor(t);
  assert.throws(() => sandbox.configure({ failureRate: 2 }), RangeError);
  assert.throws(() => sandbox.configure({ statuses: [42] }), RangeError);
  assert.throws(() => sandbox.configure({ latencyMs: -1 }), RangeError);
  assert.throws(() => sandbox.configure({ rpm: 1.5 }), RangeError);
  await assert.rejects(startSandbox({ dropRate: -0.5 }), RangeError);
  sandbox.configure({ credits: 2 });
  assert.equal(sandbox.credits, 2);
  assert.match(sandbox.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  assert.equal(new URL(sandbox.url).port, String(sandbox.port));
});
