import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import sharp from 'sharp';
import {
  REQUEST_FIELDS,
  RequestLimiter,
  createAxiosTransport,
  createClient,
  nodeSleep,
  type ClientOptions,
  type SdxlError,
} from '@sdxl-kit/client';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { failure as failureOf } from '../support/failure.ts';

const KEY = 'SG_contractsecret00042';
const fast = { retryBaseDelayMs: 5, retryMaxDelayMs: 20 };

describe('client against the sandbox over HTTP', () => {
  let sandbox: Sandbox;
  const logLines: string[] = [];
  const client = (options: Parameters<typeof createClient>[0] = {}) =>
    createClient({
      apiKey: KEY,
      baseUrl: sandbox.url,
      ...fast,
      logger: {
        debug: (message, data) => logLines.push(message + JSON.stringify(data ?? {})),
        warn: (message, data) => logLines.push(message + JSON.stringify(data ?? {})),
      },
      ...options,
    });

  before(async () => {
    sandbox = await startSandbox({ apiKey: KEY });
  });
  beforeEach(() => {
    sandbox.configure({
      statuses: [],
      failureRate: 0,
      truncateRate: 0,
      dropRate: 0,
      latencyMs: 0,
      base64Shape: 'auto',
      rateWindowMs: 60_000,
    });
    sandbox.credits = 100;
  });
  after(async () => {
    await sandbox.close();
    for (const line of logLines) assert.ok(!line.includes(KEY), `key in log line: ${line}`);
  });

  /** The error, checked for the key in every view of it. */
  const failure = (promise: Promise<unknown>) => failureOf(promise, KEY);

  it('makes one 1024x1024 JPEG, reports the seed, the credits left and the cost', async () => {
    const result = await client().generate({ prompt: 'a panda astronaut', seed: 1234 });
    assert.equal(result.images.length, 1);
    const [image] = result.images;
    assert.equal(image?.mimeType, 'image/jpeg');
    const metadata = await sharp(image!.bytes).metadata();
    assert.deepEqual([metadata.format, metadata.width, metadata.height], ['jpeg', 1024, 1024]);
    assert.equal(result.seed, 1234);
    assert.equal(image?.seed, 1234);
    assert.equal(result.remainingCredits, 99.992);
    assert.equal(result.cost, 0.008);
    assert.ok(result.requestId);
    assert.equal(result.lowCredits, false);
  });

  it('sends every field explicitly with the key and a JSON content type', async () => {
    await client().generate({ prompt: 'explicit', steps: 30 });
    const received = sandbox.requests.at(-1)!;
    assert.equal(received.headers['x-api-key'], KEY);
    assert.match(String(received.headers['content-type']), /application\/json/);
    const body = received.body as Record<string, unknown>;
    // schema.test.ts pins the table itself; here every one of its fields must reach the wire.
    assert.deepEqual(Object.keys(body).sort(), REQUEST_FIELDS.map((field) => field.wire).sort());
    assert.equal(body.num_inference_steps, 30);
  });

  it('draws a fresh random seed for each request and reports the one used', async () => {
    const c = client();
    const first = await c.generate({ prompt: 'same' });
    const second = await c.generate({ prompt: 'same', seed: -1 });
    assert.notEqual(first.seed, second.seed);
    const sent = sandbox.requests.slice(-2).map((r) => (r.body as { seed: number }).seed);
    assert.deepEqual(sent, [first.seed, second.seed]);
    assert.ok(sent.every((seed) => seed >= 0));
    assert.notDeepEqual(first.images[0]!.bytes, second.images[0]!.bytes);
  });

  it('returns 4 different images from one billed call', async () => {
    const before = sandbox.requests.length;
    const result = await client().generate({ prompt: 'four', samples: 4, seed: 7 });
    assert.equal(sandbox.requests.length - before, 1, 'one call');
    assert.equal((sandbox.requests.at(-1)!.body as { base64: boolean }).base64, true);
    assert.deepEqual(
      result.images.map((image) => image.index),
      [0, 1, 2, 3],
    );
    const distinct = new Set(result.images.map((image) => image.bytes.toString('base64')));
    assert.equal(distinct.size, 4);
    assert.ok(Math.abs(result.remainingCredits! - (100 - 4 * 0.008)) < 1e-9);
  });

  for (const shape of ['image-string', 'image-array', 'images-array'] as const) {
    it(`reads base64 answers shaped as ${shape}`, async () => {
      sandbox.configure({ base64Shape: shape });
      const one = await client().generate({ prompt: 'b64', base64: true, seed: 5 });
      assert.equal(one.images.length, 1);
      assert.equal(one.images[0]?.mimeType, 'image/jpeg');
      if (shape !== 'image-string') {
        const four = await client().generate({ prompt: 'b64', samples: 4, seed: 5 });
        assert.equal(four.images.length, 4);
      }
    });
  }

  it('gives the same image for the same prompt and seed in binary and base64', async () => {
    const binary = await client().generate({ prompt: 'twin', seed: 99 });
    const base64 = await client().generate({ prompt: 'twin', seed: 99, base64: true });
    assert.deepEqual(binary.images[0]!.bytes, base64.images[0]!.bytes);
  });

  const finals: Array<[status: number, code: string]> = [
    [401, 'unauthorized'],
    [404, 'not_found'],
    [405, 'method_not_allowed'],
    [406, 'insufficient_credits'],
    [422, 'unprocessable'],
  ];
  for (const [status, code] of finals) {
    it(`maps a ${status} to ${code} and does not retry it`, async () => {
      sandbox.configure({ statuses: [status] });
      const before = sandbox.requests.length;
      const error = await failure(client().generate({ prompt: 'x' }));
      assert.equal(error.code, code);
      assert.equal((error as SdxlError & { status: number }).status, status);
      assert.equal(sandbox.requests.length - before, 1);
    });
  }

  it('refuses a wrong key with 401 and never shows the key', async () => {
    const error = await failure(
      createClient({ apiKey: 'SG_wrongwrongwrong', baseUrl: sandbox.url }).generate({ prompt: 'x' }),
    );
    assert.equal(error.code, 'unauthorized');
    assert.ok(!error.message.includes('SG_wrongwrongwrong'));
  });

  it('reports a wrong base URL as not found', async () => {
    const error = await failure(
      createClient({ apiKey: KEY, baseUrl: `${sandbox.url}/nope` }).generate({ prompt: 'x' }),
    );
    assert.equal(error.code, 'not_found');
  });

  it('says when credits run out, with the server words', async () => {
    sandbox.credits = 0.004;
    const error = await failure(client().generate({ prompt: 'x' }));
    assert.equal(error.code, 'insufficient_credits');
    assert.match(error.message, /^406 /);
  });

  it('retries 429 and 5xx, then succeeds, waiting between attempts', async () => {
    // A scripted 429 says the limit resets one window from now; keep the window short.
    sandbox.configure({ statuses: [429, 503, 500], rateWindowMs: 200 });
    const retries: number[] = [];
    const before = sandbox.requests.length;
    const result = await client({ maxRetries: 3 }).generate(
      { prompt: 'persist' },
      { onRetry: ({ delayMs }) => void retries.push(delayMs) },
    );
    assert.equal(result.images.length, 1);
    assert.equal(sandbox.requests.length - before, 4);
    assert.equal(retries.length, 3);
  });

  it('gives up on a server that keeps failing after the configured retries', async () => {
    sandbox.configure({ failureRate: 1 });
    const before = sandbox.requests.length;
    const error = await failure(client({ maxRetries: 2 }).generate({ prompt: 'x' }));
    assert.equal(error.code, 'server_error');
    assert.equal(sandbox.requests.length - before, 3);
  });

  it('does not retry a truncated answer (it was billed), and says so', async () => {
    sandbox.configure({ truncateRate: 1 });
    const before = sandbox.requests.length;
    const error = await failure(client().generate({ prompt: 'x' }));
    assert.equal(error.code, 'connection');
    assert.equal(sandbox.requests.length - before, 1);
  });

  it('does not retry a connection dropped after sending, unless asked to', async () => {
    sandbox.configure({ dropRate: 1 });
    let before = sandbox.requests.length;
    const error = await failure(client().generate({ prompt: 'x' }));
    assert.equal(error.code, 'connection');
    assert.equal(sandbox.requests.length - before, 1);
    before = sandbox.requests.length;
    await failure(client({ retryBrokenConnections: true, maxRetries: 1 }).generate({ prompt: 'x' }));
    assert.equal(sandbox.requests.length - before, 2);
  });

  it('times out a slow answer', async () => {
    sandbox.configure({ latencyMs: 1000 });
    const error = await failure(client({ timeoutMs: 100 }).generate({ prompt: 'x' }));
    assert.equal(error.code, 'timeout');
  });

  it('gives one attempt its whole timeout even when that is longer than the default deadline', async () => {
    const axios = createAxiosTransport();
    const asked: number[] = [];
    const watched = (options: ClientOptions) =>
      client({
        ...options,
        transport: { request: (request) => (asked.push(request.timeoutMs), axios.request(request)) },
      });
    await watched({ timeoutMs: 600_000 }).generate({ prompt: 'x' });
    await watched({ timeoutMs: 600_000, deadlineMs: 30_000 }).generate({ prompt: 'x' });
    assert.equal(asked[0], 600_000, 'the default deadline does not cut a longer timeout');
    assert.ok(asked[1]! <= 30_000, `an explicit deadline still bounds the attempt: ${asked[1]}`);
  });

  it('refuses options it cannot work with when it is made, naming each, without showing the key', () => {
    const made = (options: ClientOptions) => () => createClient({ apiKey: KEY, ...options });
    assert.throws(made({ timeoutMs: Number.NaN }), {
      code: 'invalid_request',
      message: 'Invalid client options: timeoutMs: NaN is not allowed; allowed: a number of ms above 0',
    });
    assert.throws(made({ baseUrl: 'api.segmind.com/v1', maxInFlight: 0, lowCreditsThreshold: -1 }), {
      message:
        'Invalid client options: baseUrl: "api.segmind.com/v1" is not allowed; allowed: an http(s) URL such as https://api.segmind.com/v1; ' +
        'maxInFlight: 0 is not allowed; allowed: a whole number, 1 or more; ' +
        'lowCreditsThreshold: -1 is not allowed; allowed: a number of credits, 0 or more',
    });
    assert.throws(made({ baseUrl: `htps://example.com/v1?key=${KEY}` }), (error: SdxlError) => {
      assert.ok(!error.message.includes(KEY), error.message);
      return error.code === 'invalid_request';
    });
    assert.throws(() => createClient({ apiKey: ' ' }), /apiKey: an empty or non-text key is not allowed/);
    assert.doesNotThrow(made({ requestsPerMinute: Infinity, maxRetries: 0, timeoutMs: 1 }));
  });

  it('says how many images are missing when an answer holds fewer than the samples asked for', async () => {
    sandbox.configure({ base64Shape: 'image-string' });
    const result = await client().generate({ prompt: 'four asked', samples: 4 });
    assert.equal(result.images.length, 1);
    assert.equal(result.missingImages, 3);
    assert.ok(logLines.some((line) => line.startsWith('asked for 4 images and got 1')));
    sandbox.configure({ base64Shape: 'auto' });
    assert.equal((await client().generate({ prompt: 'four asked', samples: 4 })).missingImages, 0);
  });

  it('tells a failed attempt while the call still holds its place, so queued calls can be cancelled unsent', async () => {
    sandbox.configure({ statuses: [401] });
    const before = sandbox.requests.length;
    const one = client({ maxInFlight: 1 });
    const queued = new AbortController();
    const seen: string[] = [];
    const first = one.generate(
      { prompt: 'refused' },
      {
        onAttemptFailed: (error) => {
          // The slot is still this call's: the queued call has not been handed it.
          seen.push(`${error.code} in flight ${one.limiter.inFlight}, queued ${one.limiter.queued}`);
          queued.abort();
        },
      },
    );
    const second = one.generate({ prompt: 'never sent' }, { signal: queued.signal });
    assert.equal((await failure(first)).code, 'unauthorized');
    assert.equal((await failure(second)).code, 'aborted');
    assert.deepEqual(seen, ['unauthorized in flight 1, queued 1']);
    assert.deepEqual(
      sandbox.requests.slice(before).map((request) => (request.body as { prompt?: string }).prompt),
      ['refused'],
    );
  });

  it('flags low credits below the threshold', async () => {
    sandbox.credits = 1.004;
    const result = await client().generate({ prompt: 'x' });
    assert.ok(result.remainingCredits! < 1);
    assert.equal(result.lowCredits, true);
    assert.equal((await client({ lowCreditsThreshold: 0.5 }).getCredits()).lowCredits, false);
  });

  it('reads the balance from the free endpoint', async () => {
    sandbox.credits = 42.5;
    const balance = await client().getCredits();
    assert.equal(balance.credits, 42.5);
    assert.equal(balance.total, 42.5);
    const error = await failure(
      createClient({ apiKey: 'SG_notthekey000', baseUrl: sandbox.url }).getCredits(),
    );
    assert.equal(error.code, 'unauthorized');
  });

  it('refuses invalid input before sending anything', async () => {
    const before = sandbox.requests.length;
    const error = await failure(client().generate({ prompt: 'x', steps: 500 }));
    assert.equal(error.code, 'invalid_request');
    assert.equal(sandbox.requests.length, before);
  });
});

describe('the limiter against a rate-limited sandbox', () => {
  it('paces a batch so that a tight limit never answers 429', async () => {
    // The server's window is a little shorter than the one the client paces for: on a loaded test
    // machine a request can arrive more than the limiter's 250 ms margin after it started.
    const sandbox = await startSandbox({ apiKey: KEY, rpm: 3, rateWindowMs: 800 });
    try {
      const client = createClient({
        apiKey: KEY,
        baseUrl: sandbox.url,
        requestsPerMinute: 3,
        rateWindowMs: 1000,
        maxInFlight: 2,
        maxRetries: 0,
      });
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => client.generate({ prompt: `p${i}` })),
      );
      assert.equal(results.length, 8);
      const statuses = sandbox.requests.map((request) => request.status);
      assert.deepEqual(statuses, Array(8).fill(200));
    } finally {
      await sandbox.close();
    }
  });

  it('keeps one pace across clients that share a limiter (one account, a client per run)', async () => {
    const sandbox = await startSandbox({ apiKey: KEY, rpm: 3, rateWindowMs: 800 });
    try {
      const limiter = new RequestLimiter({
        requestsPerMinute: 3,
        windowMs: 1000,
        maxInFlight: 2,
        sleep: nodeSleep,
      });
      const runs = [1, 2].map(() =>
        createClient({ apiKey: KEY, baseUrl: sandbox.url, limiter, maxRetries: 0 }),
      );
      await Promise.all(
        runs.flatMap((client, run) => [1, 2, 3].map((n) => client.generate({ prompt: `run ${run} ${n}` }))),
      );
      assert.deepEqual(
        sandbox.requests.map((request) => request.status),
        Array(6).fill(200),
      );
    } finally {
      await sandbox.close();
    }
  });

  it('does not count time queued behind the limiter against the deadline', async () => {
    const sandbox = await startSandbox({ apiKey: KEY });
    try {
      const client = createClient({
        apiKey: KEY,
        baseUrl: sandbox.url,
        requestsPerMinute: 1,
        rateWindowMs: 1000,
        deadlineMs: 1500,
      });
      // The third call waits two windows (2.5 s with the margin) for its turn, past a 1.5 s deadline
      // that still leaves a loaded machine time to render each image.
      const results = await Promise.all([1, 2, 3].map((n) => client.generate({ prompt: `queued ${n}` })));
      assert.equal(results.length, 3);
      const arrivals = sandbox.requests.map((request) => request.receivedAt);
      assert.ok(arrivals[2]! - arrivals[0]! >= 2000, `paced: ${arrivals.map((t) => t - arrivals[0]!)}`);
    } finally {
      await sandbox.close();
    }
  });

  it('puts a retry at the front of the line, so a long paced batch does not use up its deadline', async () => {
    const sandbox = await startSandbox({ apiKey: KEY, statuses: [503] });
    try {
      const client = createClient({
        apiKey: KEY,
        baseUrl: sandbox.url,
        requestsPerMinute: 1,
        rateWindowMs: 300,
        maxInFlight: 1,
        deadlineMs: 2500,
        retryBaseDelayMs: 5,
      });
      // One start per 550 ms (window plus margin). Behind the other seven, the first call's retry
      // would start about 4.4 s after its first attempt, far past its 2.5 s deadline; at the front it
      // starts one start later.
      const results = await Promise.all(
        [1, 2, 3, 4, 5, 6, 7, 8].map((n) => client.generate({ prompt: `batch ${n}` })),
      );
      assert.equal(results.length, 8);
      const arrivals = sandbox.requests.map(
        (request) => `${(request.body as { prompt: string }).prompt} ${request.status}`,
      );
      assert.deepEqual(arrivals.slice(0, 4), ['batch 1 503', 'batch 2 200', 'batch 1 200', 'batch 3 200']);
    } finally {
      await sandbox.close();
    }
  });

  it('without the limiter the same batch does draw 429s (the test above can fail)', async () => {
    const sandbox = await startSandbox({ apiKey: KEY, rpm: 3, rateWindowMs: 600 });
    try {
      const client = createClient({ apiKey: KEY, baseUrl: sandbox.url, maxInFlight: 8, maxRetries: 0 });
      const outcomes = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => client.generate({ prompt: `p${i}` })),
      );
      assert.ok(outcomes.some((outcome) => outcome.status === 'rejected'));
      assert.ok(sandbox.requests.some((request) => request.status === 429));
    } finally {
      await sandbox.close();
    }
  });
});
