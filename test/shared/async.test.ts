// The async API (v2) end to end against the sandbox over HTTP: submit once, poll, fetch, decode,
// account; faults while polling; the fallback to v1; resume after a restart; the key kept in.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import sharp from 'sharp';
import {
  createClient,
  createHttpTransport,
  type AsyncTicket,
  type JobStatus,
  type Transport,
} from '@sdxl-kit/client';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { pngImage } from '../support/images.ts';
import { failure as failureOf } from '../support/failure.ts';

const KEY = 'SG_asyncsecret000777';
const quickPolls = { firstDelayMs: 20, intervalMs: 20, maxIntervalMs: 50, timeoutMs: 20_000 };

describe('the async API against the sandbox over HTTP', () => {
  let sandbox: Sandbox;
  const logLines: string[] = [];
  const client = (options: Parameters<typeof createClient>[0] = {}) =>
    createClient({
      apiKey: KEY,
      baseUrl: sandbox.url,
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      poll: quickPolls,
      logger: {
        debug: (message, data) => logLines.push(message + JSON.stringify(data ?? {})),
        warn: (message, data) => logLines.push(message + JSON.stringify(data ?? {})),
      },
      ...options,
    });
  const submits = (slug: string) =>
    sandbox.requests.filter((request) => request.method === 'POST' && request.path === `/v2/${slug}`);

  before(async () => {
    sandbox = await startSandbox({ apiKey: KEY, recordLimit: 10_000 });
  });
  beforeEach(() => {
    sandbox.configure({
      latencyMs: 60,
      queueMs: 0,
      pollStatuses: [],
      pollDropRate: 0,
      statusDelayMs: 0,
      retiredModels: [],
      syncOnlyModels: [],
      failJobs: 0,
      resultTtlMs: 3_600_000,
    });
    sandbox.credits = 100;
    sandbox.requests.length = 0;
  });
  after(async () => {
    await sandbox.close();
    for (const line of logLines) assert.ok(!line.includes(KEY), `key in log line: ${line}`);
  });

  /** The error, checked for the key in every view of it. */
  const failure = (promise: Promise<unknown>) => failureOf(promise, KEY);

  it('generates through submit and poll: the request id reaches the hook before the first poll, credits and cost come from metrics', async () => {
    const seen: string[] = [];
    let ticket: AsyncTicket | undefined;
    const statuses: JobStatus[] = [];
    const result = await client().generate(
      { prompt: 'a lighthouse at dusk', seed: 77 },
      {
        api: 'async',
        onSubmitted: (submitted) => {
          ticket = submitted;
          seen.push(...sandbox.requests.map((request) => `${request.method} ${request.path}`));
        },
        onStatus: (status) => statuses.push(status),
      },
    );
    assert.ok(ticket && /^[0-9a-f-]{36}$/.test(ticket.requestId));
    assert.deepEqual(seen, ['POST /v2/sdxl1.0-txt2img'], 'nothing was polled before the hook had the id');
    assert.equal(result.api, 'async');
    assert.equal(result.requestId, ticket.requestId);
    assert.ok(result.polls >= 1);
    assert.equal(statuses.at(-1)?.state, 'COMPLETED');
    const metadata = await sharp(result.images[0]!.bytes).metadata();
    assert.deepEqual([metadata.format, metadata.width, metadata.height], ['jpeg', 1024, 1024]);
    assert.equal(result.seed, 77);
    assert.equal(result.cost, 0.008);
    assert.equal(result.remainingCredits, 99.992);
    assert.equal(sandbox.credits, 99.992, 'billed once, at completion');
    assert.equal(submits('sdxl1.0-txt2img').length, 1);
    // The output file is public: fetched without the key.
    const files = sandbox.requests.filter((request) => request.path.startsWith('/files/'));
    assert.equal(files.length, 1);
    assert.equal(files[0]!.headers['x-api-key'], undefined);
  });

  it('tells a transport that adds the key itself which requests may carry it: never a public file, even on the API`s origin', async () => {
    const seen: { url: URL; authenticate: boolean }[] = [];
    const http = createHttpTransport();
    const recording: Transport = {
      request: async (wire) => {
        seen.push({ url: new URL(wire.url), authenticate: wire.authenticate });
        return await http.request(wire);
      },
    };
    await client({ transport: recording }).generate({ prompt: 'a heron' }, { api: 'async' });
    const files = seen.filter(({ url }) => url.pathname.startsWith('/files/'));
    assert.equal(files.length, 1);
    assert.equal(files[0]!.url.origin, new URL(sandbox.url).origin, 'served where the API is');
    assert.equal(files[0]!.authenticate, false);
    const apiCalls = seen.filter(({ url }) => !url.pathname.startsWith('/files/'));
    assert.ok(apiCalls.length >= 3, 'submit, status, result');
    assert.ok(apiCalls.every(({ authenticate }) => authenticate));
  });

  it('brings every image of a several-sample job', async () => {
    const result = await client().generate({ prompt: 'four foxes', samples: 3 }, { api: 'async' });
    assert.equal(result.images.length, 3);
    assert.deepEqual(
      result.images.map((image) => image.index),
      [0, 1, 2],
    );
    assert.equal(result.missingImages, 0);
  });

  it('a FAILED job is job_failed with the server words, carries its request id, and is not billed', async () => {
    sandbox.configure({ failJobs: 1 });
    const error = await failure(client().generate({ prompt: 'doomed' }, { api: 'async' }));
    assert.equal(error.code, 'job_failed');
    assert.ok(error.requestId);
    assert.ok(error.message.length > 'The job failed: '.length, error.message);
    assert.equal(sandbox.credits, 100);
  });

  it('a job the API accepts and then cannot do (an image URL it cannot fetch) fails once, unbilled, without a second submit', async () => {
    const error = await failure(
      client().upscale({ image: 'http://127.0.0.1:1/nothing-here.png' }, { api: 'async' }),
    );
    assert.equal(error.code, 'job_failed');
    assert.match(error.message, /image/);
    assert.equal(submits('esrgan').length, 1);
    assert.equal(sandbox.credits, 100);
  });

  it('survives 5xx, 429 with a reset time and dropped connections while polling, and never submits twice', async () => {
    sandbox.configure({ latencyMs: 150, pollStatuses: [500, 503, 429, 502, 504], pollDropRate: 0.3 });
    const result = await client().generate({ prompt: 'stormy sea' }, { api: 'async' });
    assert.equal(result.images.length, 1);
    assert.equal(submits('sdxl1.0-txt2img').length, 1);
    assert.equal(sandbox.credits, 99.992);
  });

  it('waits out a slow status answer', async () => {
    sandbox.configure({ statusDelayMs: 300 });
    const result = await client().generate({ prompt: 'slow' }, { api: 'async' });
    assert.equal(result.images.length, 1);
  });

  it('resume picks a request up by its id in a new client, submitting nothing', async () => {
    sandbox.configure({ latencyMs: 300 });
    const ticket = await client().submit('sdxl1.0-txt2img', { prompt: 'a resumed cat', seed: 5 });
    const result = await client().resume(ticket.requestId);
    assert.equal(result.requestId, ticket.requestId);
    assert.equal(result.images.length, 1);
    assert.equal(result.seed, 5);
    // The request was not kept; the result says what it was asked to draw.
    assert.deepEqual(result.request, { prompt: 'a resumed cat' });
    assert.equal(submits('sdxl1.0-txt2img').length, 1);
    assert.equal(sandbox.credits, 99.992);
  });

  it('an expired or unknown request id is request_expired', async () => {
    sandbox.configure({ resultTtlMs: 50 });
    const ticket = await client().submit('sdxl1.0-txt2img', { prompt: 'gone' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const error = await failure(client().resume(ticket.requestId));
    assert.equal(error.code, 'request_expired');
    assert.equal(error.requestId, ticket.requestId);
    const unknown = await failure(client().resume('00000000-0000-4000-8000-000000000000'));
    assert.equal(unknown.code, 'request_expired');
    assert.equal(
      (await failure(Promise.resolve().then(() => client().resume('../../v1/sdxl')))).code,
      'invalid_request',
    );
  });

  it('aborting while polling stops waiting, says the job goes on, and leaves it to resume: billed once', async () => {
    sandbox.configure({ latencyMs: 400 });
    const controller = new AbortController();
    let id = '';
    const error = await failure(
      client().generate(
        { prompt: 'stop me' },
        {
          api: 'async',
          signal: controller.signal,
          onSubmitted: (ticket) => void ((id = ticket.requestId), controller.abort()),
        },
      ),
    );
    assert.equal(error.code, 'aborted');
    assert.equal(error.requestId, id);
    assert.match(error.message, /goes on and will be billed/);
    const result = await client().resume(id);
    assert.equal(result.images.length, 1);
    assert.equal(submits('sdxl1.0-txt2img').length, 1);
    assert.equal(sandbox.credits, 99.992);
  });

  it('gives up waiting after the poll timeout with the request id, without a second submit', async () => {
    sandbox.configure({ latencyMs: 2_000 });
    const error = await failure(
      client({ poll: { ...quickPolls, timeoutMs: 150 } }).generate({ prompt: 'too slow' }, { api: 'async' }),
    );
    assert.equal(error.code, 'timeout');
    assert.ok(error.requestId);
    assert.match(error.message, /resume it with its request id/);
    assert.equal(submits('sdxl1.0-txt2img').length, 1);
  });

  it('falls back to the synchronous API where a model has no async one, and remembers it', async () => {
    sandbox.configure({ syncOnlyModels: ['esrgan'] });
    const image = await pngImage(40, 30);
    const shared = client();
    const first = await shared.upscale({ image, scale: 2 }, { api: 'async' });
    const second = await shared.upscale({ image, scale: 2 }, { api: 'async' });
    assert.equal(first.api, 'sync');
    assert.equal(second.api, 'sync');
    assert.equal(submits('esrgan').length, 1, 'the 404 was remembered');
    const v1 = sandbox.requests.filter((request) => request.path === '/v1/esrgan');
    assert.equal(v1.length, 2);
    const metadata = await sharp(second.images[0]!.bytes).metadata();
    assert.deepEqual([metadata.width, metadata.height], [80, 60]);
  });

  it('a retired model is model_retired and not billed, on both APIs', async () => {
    sandbox.configure({ retiredModels: ['sdxl-img2img'] });
    const image = await pngImage(32, 32);
    for (const api of ['sync', 'async'] as const) {
      const error = await failure(client().vary({ image, prompt: 'old' }, { api }));
      assert.equal(error.code, 'model_retired', api);
    }
    assert.equal(sandbox.credits, 100);
  });

  it('auto picks async for a model slower than 10 s and sync for the fast ones', async () => {
    const image = await pngImage(64, 64);
    const shared = client();
    assert.equal((await shared.run('sdxl-controlnet', { image, prompt: 'a pose' })).api, 'async');
    assert.equal((await shared.generate({ prompt: 'fast' })).api, 'sync');
  });

  it('learns where the first poll goes from the last job: one poll each once it knows', async () => {
    sandbox.configure({ latencyMs: 300 });
    const learner = client({ poll: { intervalMs: 50, maxIntervalMs: 100, timeoutMs: 20_000 } });
    const image = await pngImage(32, 32);
    await learner.upscale({ image }, { api: 'async' });
    const polls: number[] = [];
    for (let i = 0; i < 3; i++) polls.push((await learner.upscale({ image }, { api: 'async' })).polls);
    assert.ok(polls.filter((count) => count === 1).length >= 2, `polls after learning: ${polls.join(', ')}`);
  });
});
