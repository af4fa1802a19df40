import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import {
  Sdxl,
  everything,
  failure,
  runNode,
  splitErrorOutput,
  testCredential,
  workflow,
  type INodeExecutionData,
  type RunOptions,
} from './harness.ts';

const KEY = 'sk-n8n-node-test-7f3a9c2e51b84d06';

// Every execution of one account shares one pace, so this file's runs against the shared sandbox
// would queue behind each other at the default 5 a minute; a one-second window keeps them quick.
Sdxl.rateWindowMs = 1_000;

let sandbox: Sandbox;

before(async () => {
  sandbox = await startSandbox({ apiKey: KEY, credits: 100 });
});
after(async () => {
  await sandbox.close();
});
beforeEach(() => {
  sandbox.configure({ statuses: [], latencyMs: 0, rpm: undefined, rateWindowMs: 60_000 });
  sandbox.credits = 100;
  sandbox.requests.length = 0;
});

function run(overrides: Partial<RunOptions> = {}) {
  return runNode({
    credentials: { apiKey: KEY, baseUrl: sandbox.url },
    parameters: { prompt: 'a lighthouse at dusk', options: {} },
    ...overrides,
  });
}

const JPEG_START = [0xff, 0xd8, 0xff];

function imageBytes(item: INodeExecutionData, field = 'data'): Buffer {
  const binary = item.binary?.[field];
  assert.ok(binary, `item has binary field "${field}"`);
  return Buffer.from(binary.data, 'base64');
}

function posts() {
  return sandbox.requests.filter((request) => request.method === 'POST');
}

describe('n8n node: output', () => {
  it('returns one image as n8n binary data, named with its seed, with credits and the pairing', async () => {
    const { items, sent } = await run({
      parameters: { prompt: 'a lighthouse at dusk', negativePrompt: 'blurry', options: { seed: 1234 } },
    });
    assert.equal(items.length, 1);
    const [item] = items as [INodeExecutionData];
    assert.deepEqual(imageBytes(item).subarray(0, 3), Buffer.from(JPEG_START));
    assert.equal(item.binary?.data?.mimeType, 'image/jpeg');
    assert.equal(item.binary?.data?.fileName, 'sdxl-1234.jpg');
    assert.deepEqual(item.pairedItem, { item: 0 });
    assert.equal(item.json.prompt, 'a lighthouse at dusk');
    assert.equal(item.json.negativePrompt, 'blurry');
    assert.equal(item.json.seed, 1234);
    assert.equal(item.json.index, 0);
    assert.equal(item.json.lowCredits, false);
    assert.equal(typeof item.json.remainingCredits, 'number');
    assert.ok((item.json.remainingCredits as number) < 100, 'the balance after the call');
    // The credential, not the node, put the key on the request; the body uses the wire's names.
    assert.equal(sent[0]?.headers['x-api-key'], KEY);
    const body = posts()[0]?.body as Record<string, unknown>;
    assert.equal(body.negative_prompt, 'blurry');
    assert.equal(body.seed, 1234);
    assert.equal(body.num_inference_steps, 25);
    assert.ok(!everything(items).includes(KEY), 'the key is not in the output');
  });

  it('returns four images from one call as four items, each its own JPEG, all paired with the input', async () => {
    const { items } = await run({ parameters: { prompt: 'four cats', options: { samples: 4, seed: 77 } } });
    assert.equal(items.length, 4);
    assert.equal(posts().length, 1, 'one billed call');
    assert.deepEqual(
      items.map((item) => item.binary?.data?.fileName),
      ['sdxl-77-1.jpg', 'sdxl-77-2.jpg', 'sdxl-77-3.jpg', 'sdxl-77-4.jpg'],
    );
    for (const [index, item] of items.entries()) {
      assert.deepEqual(imageBytes(item).subarray(0, 3), Buffer.from(JPEG_START));
      assert.equal(item.json.index, index);
      assert.deepEqual(item.pairedItem, { item: 0 });
    }
  });

  it('pairs every image with the input item it came from, across several items', async () => {
    const prompts = ['a red apple', 'a green pear', 'a yellow lemon'];
    const { items } = await run({
      items: prompts.map((prompt) => ({ json: { prompt } })),
      parameters: (itemIndex) => ({
        prompt: prompts[itemIndex],
        options: { samples: itemIndex === 1 ? 2 : 1, maxInFlight: 3, requestsPerMinute: 100 },
      }),
    });
    assert.deepEqual(
      items.map((item) => [item.json.prompt, item.pairedItem]),
      [
        ['a red apple', { item: 0 }],
        ['a green pear', { item: 1 }],
        ['a green pear', { item: 1 }],
        ['a yellow lemon', { item: 2 }],
      ],
    );
  });

  it('puts the image in the field the user names, or as base64 in the JSON instead', async () => {
    const named = await run({ parameters: { prompt: 'x', options: { binaryPropertyName: 'picture' } } });
    assert.ok(named.items[0]?.binary?.picture);
    assert.equal(named.items[0]?.binary?.data, undefined);

    const inline = await run({ parameters: { prompt: 'x', options: { returnBase64: true } } });
    const item = inline.items[0] as INodeExecutionData;
    assert.equal(item.binary, undefined);
    assert.deepEqual(
      Buffer.from(item.json.base64 as string, 'base64').subarray(0, 3),
      Buffer.from(JPEG_START),
    );
    assert.deepEqual(item.pairedItem, { item: 0 });
  });

  it('answers an AI agent with compact JSON only: no base64, even when asked for', async () => {
    const { items } = await run({
      nodeType: 'n8n-nodes-sdxl.sdxlTool',
      parameters: { prompt: 'a robot', options: { returnBase64: true } },
    });
    const json = items[0]?.json ?? {};
    assert.equal(json.base64, undefined);
    assert.equal(items[0]?.binary, undefined, 'n8n would drop it from the answer anyway, with a warning');
    assert.match(String(json.message), /^Generated image 1 of 1 \(sdxl-\d+\.jpg, seed \d+\)\.$/);
    assert.deepEqual(items[0]?.pairedItem, { item: 0 });
    assert.ok(JSON.stringify(json).length < 600, 'small enough for an agent to read');
    assert.match(String(json.fileName), /^sdxl-\d+\.jpg$/);
  });

  it('flags low credits on the items and warns in the execution', async () => {
    sandbox.credits = 0.5;
    const { items, hints } = await run({ parameters: { prompt: 'x', options: { lowCreditsThreshold: 1 } } });
    assert.equal(items[0]?.json.lowCredits, true);
    assert.equal(hints.length, 1);
    assert.equal(hints[0]?.type, 'warning');
    assert.match(hints[0]?.message ?? '', /credits left/);

    const plenty = await run({ parameters: { prompt: 'x', options: { lowCreditsThreshold: 0.01 } } });
    assert.equal(plenty.items[0]?.json.lowCredits, false);
    assert.equal(plenty.hints.length, 0);
  });
});

describe('n8n node: invalid input', () => {
  it('stops with a NodeOperationError naming the item before any request is sent', async () => {
    const error = await failure(
      run({
        items: [{ json: {} }, { json: {} }],
        parameters: (itemIndex) => ({ prompt: 'x', options: itemIndex === 1 ? { steps: 5 } : {} }),
      }),
    );
    assert.ok(error instanceof workflow.NodeOperationError);
    assert.equal((error.context as { itemIndex?: number }).itemIndex, 1);
    assert.match(error.message, /^Steps: 5 is not allowed; allowed: a whole number from 20 to 100$/);
    assert.equal(posts().length, 0, 'nothing sent, nothing billed');
  });

  it('reads numbers and switches that expressions give as text (Webhook, Sheets, CSV), and refuses other text', async () => {
    const { items } = await run({
      parameters: {
        prompt: 'x',
        options: { seed: '42', steps: ' 30 ', guidanceScale: '8.5', samples: '2', refiner: 'false' },
      },
    });
    assert.equal(items.length, 2);
    assert.equal(items[0]?.json.seed, 42);
    const body = posts()[0]?.body as Record<string, unknown>;
    assert.deepEqual(
      [body.seed, body.num_inference_steps, body.guidance_scale, body.samples, body.refiner],
      [42, 30, 8.5, 2, false],
    );

    const words = await failure(run({ parameters: { prompt: 'x', options: { steps: 'thirty' } } }));
    assert.ok(words instanceof workflow.NodeOperationError);
    assert.match(words.message, /"thirty" is not allowed/);
    const empty = await failure(run({ parameters: { prompt: 'x', options: { seed: '' } } }));
    assert.match(empty.message, /"" is not allowed/);
    const yes = await failure(run({ parameters: { prompt: 'x', options: { refiner: 'yes' } } }));
    assert.match(yes.message, /"yes" is not allowed/);
    assert.equal(posts().length, 1, 'only the first run was sent');
  });

  it('names the fields as the form does, not by their names in the code', async () => {
    const error = await failure(run({ parameters: { prompt: 'x', options: { steps: 10, samples: 5 } } }));
    assert.match(error.message, /Number of Images: 5 is not allowed; allowed: a whole number from 1 to 4/);
    assert.match(error.message, /Steps: 10 is not allowed/);
    assert.doesNotMatch(`${error.message} ${String(error.description)}`, /samples|steps:/);
    // Where to fix them: both are under Options.
    assert.match(
      String(error.description),
      /^Fix Options > (Number of Images|Steps) and Options > (Number of Images|Steps): nothing was sent and nothing was billed\./,
    );
    const refiner = await failure(run({ parameters: { prompt: 'x', options: { highNoiseFraction: 1 } } }));
    assert.match(refiner.message, /^High Noise Fraction: 1 leaves the refiner no steps/);
    assert.doesNotMatch(`${refiner.message} ${String(refiner.description)}`, /highNoiseFraction/);
    assert.equal(posts().length, 0);
  });

  it('refuses an empty prompt and a refiner with no steps left', async () => {
    const empty = await failure(run({ parameters: { prompt: '   ', options: {} } }));
    assert.match(empty.message, /^Prompt: " {3}" is not allowed/);
    // The prompt stands at the top of the form, not under Options.
    assert.match(String(empty.description), /^Fix Prompt: nothing was sent/);
    assert.doesNotMatch(String(empty.description), /Options/);
    const refiner = await failure(
      run({ parameters: { prompt: 'x', options: { refiner: true, highNoiseFraction: 1 } } }),
    );
    assert.match(refiner.message, /refiner/);
    assert.equal(posts().length, 0);
  });

  it('refuses pacing settings that cannot work, before any request', async () => {
    const error = await failure(run({ parameters: { prompt: 'x', options: { maxInFlight: 0 } } }));
    assert.ok(error instanceof workflow.NodeOperationError);
    assert.match(error.message, /Images in Flight: "0" is not allowed/);
    assert.equal(posts().length, 0);
  });

  it('with Continue On Fail, turns the invalid item into an error item and runs the others', async () => {
    const { items } = await run({
      continueOnFail: true,
      items: [{ json: {} }, { json: {} }, { json: {} }],
      parameters: (itemIndex) => ({ prompt: 'x', options: itemIndex === 1 ? { guidanceScale: 40 } : {} }),
    });
    assert.equal(items.length, 3);
    assert.equal(items[1]?.json.code, 'invalid_request');
    assert.match(String(items[1]?.json.error), /Guidance Scale: 40 is not allowed/);
    assert.deepEqual(items[1]?.pairedItem, { item: 1 });
    assert.ok(items[0]?.binary?.data && items[2]?.binary?.data);
    assert.equal(posts().length, 2);
  });
});

interface ErrorCase {
  name: string;
  code: string;
  httpCode?: string;
  message: RegExp;
  setup: () => Partial<RunOptions>;
}

const ERROR_CASES: ErrorCase[] = [
  {
    name: 'a wrong key',
    code: 'unauthorized',
    httpCode: '401',
    message: /refused the API key/,
    setup: () => ({ credentials: { apiKey: 'sk-wrong-key-0000000000', baseUrl: sandbox.url } }),
  },
  {
    name: 'an account out of credits',
    code: 'insufficient_credits',
    httpCode: '406',
    message: /out of credits/,
    setup: () => {
      sandbox.credits = 0;
      return {};
    },
  },
  {
    name: 'rate limiting that outlasts the retries',
    code: 'rate_limited',
    httpCode: '429',
    message: /rate limiting/,
    setup: () => {
      sandbox.configure({ statuses: [429, 429, 429], rateWindowMs: 200 });
      return {};
    },
  },
  {
    name: 'a server failure that outlasts the retries',
    code: 'server_error',
    httpCode: '500',
    message: /failed on its side/,
    setup: () => {
      sandbox.configure({ statuses: [500, 500, 500] });
      return {};
    },
  },
  {
    name: 'a refused parameter',
    code: 'unprocessable',
    httpCode: '422',
    message: /^The SDXL API refused a value in the request$/,
    setup: () => {
      sandbox.configure({ statuses: [422] });
      return {};
    },
  },
  {
    name: 'a wrong base URL',
    code: 'not_found',
    httpCode: '404',
    message: /not found/,
    setup: () => ({ credentials: { apiKey: KEY, baseUrl: `${sandbox.url}/nowhere` } }),
  },
  {
    name: 'an answer slower than the timeout',
    code: 'timeout',
    message: /did not answer in time/,
    setup: () => {
      sandbox.configure({ latencyMs: 5_000 });
      return { parameters: { prompt: 'x', options: { timeoutSeconds: 1 } } };
    },
  },
  {
    name: 'nothing listening at the base URL',
    code: 'connection',
    message: /Could not reach/,
    setup: () => ({ credentials: { apiKey: KEY, baseUrl: 'http://127.0.0.1:9/v1' } }),
  },
];

describe('n8n node: API errors', () => {
  for (const errorCase of ERROR_CASES) {
    it(`${errorCase.name}: NodeApiError with the item index, and no key anywhere`, async () => {
      const error = await failure(run(errorCase.setup()));
      assert.ok(error instanceof workflow.NodeApiError, `${error.name}: ${error.message}`);
      assert.match(error.message, errorCase.message);
      assert.ok(String(error.description).length > 20, 'says how to fix it');
      assert.equal((error.context as { itemIndex?: number }).itemIndex, 0);
      // Only an HTTP answer has an HTTP status: a timeout or a refused connection has none.
      assert.equal(error.httpCode ?? undefined, errorCase.httpCode);
      assert.ok(!everything(error).includes(KEY), 'the key is not in the error');
    });

    it(`${errorCase.name}, with Continue On Fail: an error item with the code, and the run goes on`, async () => {
      const options = errorCase.setup();
      const { items } = await run({ ...options, continueOnFail: true });
      assert.equal(items.length, 1);
      assert.equal(items[0]?.json.code, errorCase.code);
      assert.equal(items[0]?.json.httpCode, errorCase.httpCode);
      assert.match(String(items[0]?.json.error), errorCase.message);
      assert.deepEqual(items[0]?.pairedItem, { item: 0 });
      assert.ok(!everything(items).includes(KEY), 'the key is not in the output');
    });
  }

  it('with Continue On Fail, one failed item among good ones fails alone', async () => {
    sandbox.configure({ statuses: [200, 401, 200] });
    const { items } = await run({
      continueOnFail: true,
      items: [{ json: {} }, { json: {} }, { json: {} }],
      parameters: { prompt: 'x', options: { maxInFlight: 1 } },
    });
    assert.deepEqual(
      items.map((item) => item.json.code ?? 'image'),
      ['image', 'unauthorized', 'image'],
    );
    assert.deepEqual(
      items.map((item) => item.pairedItem),
      [{ item: 0 }, { item: 1 }, { item: 2 }],
    );
  });

  it('with On Error "Continue (using error output)", failed items go to the error output, images stay', async () => {
    sandbox.configure({ statuses: [200, 401] });
    const { items } = await run({
      continueOnFail: true,
      onError: 'continueErrorOutput',
      items: [{ json: {} }, { json: {} }, { json: {} }],
      parameters: (itemIndex) => ({
        prompt: 'x',
        options: { maxInFlight: 1, ...(itemIndex === 2 && { steps: 5 }) },
      }),
    });
    const { success, failed } = splitErrorOutput(items);
    assert.deepEqual(
      success.map((item) => [item.pairedItem, Boolean(item.binary?.data)]),
      [[{ item: 0 }, true]],
    );
    assert.deepEqual(
      failed.map((item) => [item.pairedItem, (item.json.details as { code?: string }).code]),
      [
        [{ item: 1 }, 'unauthorized'],
        [{ item: 2 }, 'invalid_request'],
      ],
    );
    assert.match(String(failed[0]?.json.error), /refused the API key/);
    // n8n replaces the JSON of an item carrying `error` with `{ error }`: the code must not ride there.
    assert.equal(failed[0]?.error, undefined);
    assert.ok(!everything(items).includes(KEY), 'the key is not in the output');
  });

  it('suggests Retry On Fail for a server failure only when the node had one item: it re-runs every item', async () => {
    sandbox.configure({ statuses: [500, 500, 500] });
    const single = await failure(run());
    assert.match(String(single.description), /Retry On Fail" in the node settings can do that/);

    sandbox.configure({ statuses: [200, 500, 500, 500] });
    const { items } = await run({
      continueOnFail: true,
      items: [{ json: {} }, { json: {} }, { json: {} }],
      parameters: { prompt: 'x', options: { maxInFlight: 1 } },
    });
    const failed = items.find((item) => item.json.code === 'server_error');
    assert.ok(failed, 'the second item failed');
    assert.match(String(failed.json.description), /would run every item of this node again/);
    assert.match(String(failed.json.description), /Continue \(using error output\)/);
    assert.doesNotMatch(String(failed.json.description), /can do that for you/);
  });

  it('without Continue On Fail, the first failure stops the items still queued', async () => {
    sandbox.configure({ statuses: [401] });
    const error = await failure(
      run({
        items: Array.from({ length: 5 }, () => ({ json: {} })),
        parameters: { prompt: 'x', options: { maxInFlight: 1, requestsPerMinute: 100 } },
      }),
    );
    assert.ok(error instanceof workflow.NodeApiError);
    assert.equal(posts().length, 1, 'the four queued items were never sent');
  });
});

describe('n8n node: pacing and cancellation', () => {
  const defaultWindow = Sdxl.rateWindowMs;
  afterEach(() => {
    Sdxl.rateWindowMs = defaultWindow;
  });

  /** A sandbox of its own: the shared one remembers earlier tests' requests in its rate window. */
  async function pacedSandbox(rpm: number, rateWindowMs: number): Promise<Sandbox> {
    return await startSandbox({ apiKey: KEY, rpm, rateWindowMs });
  }

  it('paces 100 items to the plan across the whole run and never draws a 429', async () => {
    // A 2-second window stands in for the minute so the run takes seconds. The sandbox counts over a
    // window 40% shorter: it shares this process, and on a loaded CI machine arrivals lag their starts
    // by more than the limiter's 250 ms margin of so short a window (a CI run drew three 429s with
    // 10%; of a real minute, the margin is 1.2 s). Unpaced, 4 in flight still overrun it at once.
    Sdxl.rateWindowMs = 2_000;
    const paced = await pacedSandbox(25, 1_200);
    try {
      const { items } = await run({
        credentials: { apiKey: KEY, baseUrl: paced.url },
        items: Array.from({ length: 100 }, (_, index) => ({ json: { index } })),
        parameters: { prompt: 'x', options: { requestsPerMinute: 25, maxInFlight: 4 } },
      });
      assert.equal(items.length, 100);
      assert.ok(
        items.every(
          (item, index) => item.binary?.data && (item.pairedItem as { item: number }).item === index,
        ),
      );
      const statuses = paced.requests.map((request) => request.status);
      assert.equal(statuses.length, 100);
      assert.deepEqual([...new Set(statuses)], [200], 'no 429, no retry');
    } finally {
      await paced.close();
    }
  });

  it('keeps to the default pace of the free plan: 5 requests in the first window', async () => {
    Sdxl.rateWindowMs = 1_500;
    const paced = await pacedSandbox(5, 900);
    try {
      const { items } = await run({
        credentials: { apiKey: KEY, baseUrl: paced.url },
        items: Array.from({ length: 7 }, () => ({ json: {} })),
        parameters: { prompt: 'x', options: {} },
      });
      assert.equal(items.length, 7);
      // Counted from the first arrival: the sixth may start 1.75 s after the first (window + margin).
      const first = paced.requests[0]!.receivedAt;
      const early = paced.requests.filter((request) => request.receivedAt - first < 1_200).length;
      assert.equal(early, 5, 'five in the first window, the rest after it');
      assert.deepEqual([...new Set(paced.requests.map((request) => request.status))], [200]);
    } finally {
      await paced.close();
    }
  });

  it('keeps one pace per account across executions, one after another and at the same time: no 429', async () => {
    // Loop Over Items runs the node once per item, and workflows run side by side: each run is a
    // separate `execute`, and together they must keep to the plan.
    Sdxl.rateWindowMs = 2_000;
    const paced = await pacedSandbox(3, 1_800);
    try {
      const execution = (count: number) =>
        run({
          credentials: { apiKey: KEY, baseUrl: paced.url },
          items: Array.from({ length: count }, () => ({ json: {} })),
          parameters: { prompt: 'x', options: { requestsPerMinute: 3, maxInFlight: 1 } },
        });
      for (const count of [3, 3]) assert.equal((await execution(count)).items.length, count);
      const together = await Promise.all([execution(2), execution(2)]);
      assert.deepEqual(
        together.map((result) => result.items.length),
        [2, 2],
      );
      const statuses = paced.requests.map((request) => request.status);
      assert.equal(statuses.length, 10);
      assert.deepEqual([...new Set(statuses)], [200], 'no 429, no retry');
    } finally {
      await paced.close();
    }
  });

  it('cancelling the execution aborts the request in flight and sends no queued one', async () => {
    sandbox.configure({ latencyMs: 20_000 });
    const controller = new AbortController();
    const pending = run({
      signal: controller.signal,
      items: Array.from({ length: 3 }, () => ({ json: {} })),
      parameters: { prompt: 'x', options: { maxInFlight: 1 } },
    });
    while (posts().length === 0) await new Promise((resolve) => setImmediate(resolve));
    const cancelledAt = Date.now();
    controller.abort();
    const error = await failure(pending);
    assert.ok(Date.now() - cancelledAt < 5_000, 'the run ended without waiting for the answer');
    assert.match(error.message, /cancelled/);
    // Give the sandbox a moment to see the socket close.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(posts().length, 1, 'the queued items were never sent');
    assert.equal(posts()[0]?.status, 0, 'the server never answered: the client hung up');
  });
});

describe('n8n node: credential test', () => {
  it('says the key is valid and how many credits are left', async () => {
    sandbox.credits = 42.5;
    const { result, sent } = await testCredential({ apiKey: KEY, baseUrl: sandbox.url });
    assert.deepEqual(result, { status: 'OK', message: 'Valid, 42.5 credits left' });
    assert.equal(sent[0]?.url, `${sandbox.url}/get-user-credits`);
    assert.equal(posts().length, 0, 'the test spends nothing');
  });

  it('says why a key does not work, without repeating it', async () => {
    const wrong = 'sk-wrong-key-for-the-test-1234';
    const { result } = await testCredential({ apiKey: wrong, baseUrl: sandbox.url });
    assert.equal(result.status, 'Error');
    assert.match(result.message, /refused/);
    assert.ok(!result.message.includes(wrong));

    const unreachable = await testCredential({ apiKey: KEY, baseUrl: 'http://127.0.0.1:9/v1' });
    assert.equal(unreachable.result.status, 'Error');
    assert.match(unreachable.result.message, /connect/i);
  });
});
