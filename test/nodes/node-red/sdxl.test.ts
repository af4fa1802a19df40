import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { ERROR_HINTS } from '@sdxl-kit/client/core';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import {
  LOG_ERROR,
  NODES,
  helper,
  record as recordMessages,
  until,
  nodeRedVersion,
  watchRuntimeLog,
  type FlowNode,
  type RuntimeNode,
} from './harness.ts';

const API_KEY = 'nr-test-key-4f8a2c91d7e3b6';
const JPEG_START = Buffer.from([0xff, 0xd8, 0xff]);
/** Only an abort closes the hanging server's socket; without one, these tests fail instead of hanging the suite. */
const ABORT_TIMEOUT_MS = 20_000;

type Msg = Record<string, unknown> & { payload?: unknown; sdxl?: Record<string, unknown> };

let sandbox: Sandbox;
/** Everything the runtime handed out during a test, searched for the key afterwards. */
const captured: unknown[] = [];

before(async () => {
  sandbox = await startSandbox({ port: 0, apiKey: API_KEY });
});
after(async () => {
  await sandbox.close();
});
afterEach(async () => {
  captured.push(helper.log().args);
  await helper.unload();
  sandbox.configure({ statuses: [], latencyMs: 0, rateWindowMs: 60_000 });
  sandbox.credits = 100;
});

interface FlowOptions {
  node?: Record<string, unknown>;
  account?: Record<string, unknown>;
  /** A second SDXL node on the same account. */
  twin?: boolean;
  join?: boolean;
}

// Node ids must differ from type names: Node-RED takes a property equal to a node's id for a config reference.

/** A tab with an account, an SDXL node wired to collectors, a Catch node, and optionally a Join node. */
function flow(options: FlowOptions = {}): FlowNode[] {
  const nodes: FlowNode[] = [
    { id: 'tab', type: 'tab', label: 'sdxl' },
    {
      id: 'account',
      type: 'sdxl-config',
      name: 'test account',
      baseUrl: sandbox.url,
      requestsPerMinute: '',
      maxInFlight: '4',
      lowCreditsThreshold: '1',
      timeout: '',
      ...options.account,
    },
    {
      id: 'gen',
      type: 'sdxl',
      z: 'tab',
      account: 'account',
      prompt: '',
      output: 'messages',
      ...options.node,
      wires: [[options.join ? 'joiner' : 'images'], ['alerts']],
    },
    { id: 'images', type: 'helper', z: 'tab' },
    { id: 'alerts', type: 'helper', z: 'tab' },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
  if (options.join) {
    nodes.push({
      id: 'joiner',
      type: 'join',
      z: 'tab',
      mode: 'auto',
      build: 'array',
      property: 'payload',
      propertyType: 'msg',
      useparts: true,
      timeout: '',
      count: '',
      wires: [['images']],
    });
  }
  if (options.twin) {
    nodes.push({
      id: 'twin',
      type: 'sdxl',
      z: 'tab',
      account: 'account',
      prompt: '',
      output: 'messages',
      wires: [['images'], ['alerts']],
    });
  }
  return nodes;
}

async function load(options: FlowOptions = {}): Promise<void> {
  await helper.load(NODES, flow(options), { account: { apiKey: API_KEY } });
}

function node(id: string): RuntimeNode {
  const found = helper.getNode(id);
  assert.ok(found, `node ${id} is running`);
  return found;
}

/** The next `count` messages that reach a helper node; fails after `timeoutMs`. */
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

/** Messages reaching `id` until the test ends, for asserting that nothing (else) arrived. */
function record(id: string): Msg[] {
  return recordMessages<Msg>(id, captured);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function lastTxt2img(): Record<string, unknown> {
  const posts = sandbox.requests.filter((request) => request.method === 'POST');
  return posts.at(-1)?.body as Record<string, unknown>;
}

function statusTexts(id: string): string[] {
  return node(id).status.args.map(([status]) => String((status as { text?: string }).text ?? ''));
}

describe(`the sdxl node in Node-RED ${nodeRedVersion}`, () => {
  it('takes the prompt from msg.payload and sends a JPEG Buffer with the call facts', async () => {
    await load();
    const images = collect('images', 1);
    node('gen').receive({ payload: 'a red fox in snow', topic: 'foxes', keep: { me: [1, 2] } });
    const [msg] = await images;
    assert.ok(msg);

    assert.equal(lastTxt2img().prompt, 'a red fox in snow');
    assert.ok(Buffer.isBuffer(msg.payload));
    assert.deepEqual((msg.payload as Buffer).subarray(0, 3), JPEG_START);
    assert.equal(msg.topic, 'foxes', 'other properties travel through');
    assert.deepEqual(msg.keep, { me: [1, 2] });
    const sdxl = msg.sdxl as Record<string, unknown>;
    assert.equal(typeof sdxl.seed, 'number');
    assert.equal(sdxl.index, 0);
    assert.equal(sdxl.count, 1);
    assert.equal(sdxl.lowCredits, false);
    assert.equal(sdxl.remainingCredits, sandbox.credits);
    assert.equal(sdxl.cost, 0.008);
    assert.equal(typeof sdxl.requestId, 'string');
    assert.deepEqual(msg.parts, {
      id: (msg.parts as { id: string }).id,
      index: 0,
      count: 1,
      type: 'array',
      len: 1,
    });
    assert.match(statusTexts('gen').at(-1) ?? '', /^1 image · 99\.99 credits$/);
  });

  it("uses the node's own prompt over msg.payload", async () => {
    await load({ node: { prompt: 'a lighthouse at dawn' } });
    const images = collect('images', 1);
    node('gen').receive({ payload: 'not this one' });
    await images;
    assert.equal(lastTxt2img().prompt, 'a lighthouse at dawn');
  });

  it('lets msg.sdxl fill only the fields the node leaves empty', async () => {
    await load({ node: { steps: '30', scheduler: 'DDIM' } });
    const images = collect('images', 1);
    node('gen').receive({
      payload: 'the payload loses to msg.sdxl.prompt',
      sdxl: { prompt: 'a castle', steps: 50, scheduler: 'Euler', guidance_scale: '9', seed: 1234 },
    });
    const [msg] = await images;
    const sent = lastTxt2img();
    assert.equal(sent.prompt, 'a castle');
    assert.equal(sent.num_inference_steps, 30, 'the node wins');
    assert.equal(sent.scheduler, 'DDIM', 'the node wins');
    assert.equal(sent.guidance_scale, 9, 'msg.sdxl fills an empty field, by wire name too');
    assert.equal(sent.seed, 1234);
    assert.equal(msg?.sdxl?.seed, 1234);
  });

  it("does not reuse a result's seed when two sdxl nodes are chained", async () => {
    const chained = flow({ twin: true }).map((entry) =>
      entry.id === 'gen'
        ? { ...entry, wires: [['twin', 'images'], ['alerts']] }
        : entry.id === 'twin'
          ? { ...entry, prompt: 'the same scene at night' }
          : entry,
    );
    await helper.load(NODES, chained, { account: { apiKey: API_KEY } });
    const images = collect('images', 2);
    node('gen').receive({ payload: 'a harbour at noon' });
    const [first, second] = (await images) as [Msg, Msg];
    const posts = sandbox.requests.filter((request) => request.method === 'POST').slice(-2);
    const sentSeeds = posts.map((request) => (request.body as { seed?: unknown }).seed);
    assert.equal((posts[1]?.body as { prompt: string }).prompt, 'the same scene at night');
    assert.notEqual(sentSeeds[1], first.sdxl?.seed, `the second call was sent seed ${String(sentSeeds[1])}`);
    assert.notEqual(second.sdxl?.seed, first.sdxl?.seed, 'each call has its own seed');
  });

  it('sends four images as four messages that a real Join node gathers into one array', async () => {
    await load({ node: { samples: '4' }, join: true });
    const joined = collect('images', 1);
    node('gen').receive({ payload: 'four kittens', topic: 'batch' });
    const [msg] = await joined;
    assert.ok(Array.isArray(msg?.payload));
    const payload = msg.payload as Buffer[];
    assert.equal(payload.length, 4);
    for (const image of payload) assert.deepEqual(image.subarray(0, 3), JPEG_START);
    assert.equal(msg.topic, 'batch');
    assert.equal(lastTxt2img().samples, 4);
  });

  it("puts one image per prompt in its prompt's place, so Split → sdxl → Join (automatic) rebuilds the array", async () => {
    await helper.load(
      NODES,
      [
        ...flow({ join: true }),
        {
          id: 'splitter',
          type: 'split',
          z: 'tab',
          splt: '\\n',
          spltType: 'str',
          arraySplt: 1,
          arraySpltType: 'len',
          stream: false,
          addname: '',
          wires: [['gen']],
        },
      ],
      { account: { apiKey: API_KEY } },
    );
    const received = record('images');
    const joined = collect('images', 1);
    node('splitter').receive({ payload: ['a fox', 'a cat', 'an owl'], topic: 'animals' });
    const [msg] = await joined;
    await sleep(50);
    assert.equal(received.length, 1, 'one Join gives one message');
    assert.ok(Array.isArray(msg?.payload), `payload is ${typeof msg?.payload}`);
    const payload = msg.payload as Buffer[];
    assert.equal(payload.length, 3);
    for (const image of payload) assert.deepEqual(image.subarray(0, 3), JPEG_START);
    assert.equal(msg.topic, 'animals');
    assert.equal(msg.parts, undefined, 'no sequence is left over');
    const prompts = sandbox.requests.filter((request) => request.method === 'POST').slice(-3);
    assert.deepEqual(prompts.map((request) => (request.body as { prompt: string }).prompt).sort(), [
      'a cat',
      'a fox',
      'an owl',
    ]);
  });

  it("keeps a single image's msg.parts a copy of the input's", async () => {
    await load();
    const images = collect('images', 1);
    const input = { payload: 'one heron', parts: { id: 'outer', index: 3, count: 5, type: 'array' } };
    node('gen').receive(input);
    const [msg] = await images;
    assert.deepEqual(msg?.parts, input.parts, "the prompt's place in its sequence");
    (msg?.parts as { index: number }).index = 99;
    assert.equal(input.parts.index, 3, 'the input message is untouched');
  });

  it('numbers the four messages 0 to 3 in one sequence', async () => {
    await load({ node: { samples: '4' } });
    const images = collect('images', 4);
    node('gen').receive({ payload: 'four owls' });
    const messages = await images;
    const parts = messages.map((msg) => msg.parts as { id: string; index: number; count: number });
    assert.deepEqual(
      parts.map((part) => part.index),
      [0, 1, 2, 3],
    );
    assert.ok(parts.every((part) => part.count === 4 && part.id === parts[0]?.id));
    assert.equal(new Set(messages.map((msg) => msg._msgid)).size, 4, 'each message is its own copy');
  });

  it('gives every image message its own copy of everything, so a change to one leaves the others alone', async () => {
    await load({ node: { samples: '2' } });
    const images = collect('images', 2);
    const input = { payload: 'two herons', parts: { id: 'outer', index: 3, count: 5, type: 'array' } };
    node('gen').receive(input);
    const [first, second] = (await images) as [Msg, Msg];
    const request = (msg: Msg) => msg.sdxl?.request as { prompt: string };
    const outer = (msg: Msg) => (msg.parts as { parts: { index: number } }).parts;
    assert.equal(outer(first).index, 3, 'the enclosing sequence is kept for Join');
    request(first).prompt = 'changed downstream';
    outer(first).index = 99;
    assert.equal(request(second).prompt, 'two herons');
    assert.equal(outer(second).index, 3);
    assert.equal(input.parts.index, 3, 'the input message is untouched');
  });

  it('sends one message with every image when the output is an array', async () => {
    await load({ node: { output: 'array', samples: '2' } });
    const received = record('images');
    const images = collect('images', 1);
    node('gen').receive({ payload: 'two robots' });
    const [msg] = await images;
    await sleep(50);
    assert.equal(received.length, 1);
    assert.ok(Array.isArray(msg?.payload));
    assert.equal((msg.payload as Buffer[]).length, 2);
    assert.equal(msg.parts, undefined);
    assert.equal((msg.sdxl?.images as unknown[]).length, 2);
  });

  describe('errors reach a Catch node with their code', () => {
    // `ownWords`: the node's own message, complete without the client's generic hint.
    const cases: { code: string; statuses?: number[]; msg?: Msg; expected?: string; ownWords?: true }[] = [
      {
        code: 'invalid_request',
        msg: { payload: 'x', sdxl: { steps: 500 } },
        expected:
          'steps: 500 is not allowed; allowed: a whole number from 20 to 100. Fix the option named in the message;',
      },
      {
        code: 'invalid_request',
        msg: { payload: 42 },
        expected:
          "prompt: none given; the node's Prompt is empty, msg.sdxl.prompt is not set and msg.payload is a number (42). Allowed: non-empty text in any of them.",
        ownWords: true,
      },
      {
        code: 'invalid_request',
        msg: { payload: { text: 'a cat' } },
        expected: 'msg.payload is an object.',
        ownWords: true,
      },
      { code: 'unauthorized', statuses: [401] },
      { code: 'not_found', statuses: [404] },
      { code: 'method_not_allowed', statuses: [405] },
      { code: 'insufficient_credits', statuses: [406] },
      { code: 'unprocessable', statuses: [422] },
      { code: 'rate_limited', statuses: [429, 429, 429] },
      { code: 'server_error', statuses: [500, 500, 500] },
      { code: 'bad_response', statuses: [418] },
    ];
    for (const { code, statuses, msg, expected, ownWords } of cases) {
      it(`${code}${statuses ? ` (HTTP ${statuses[0]})` : ` (${JSON.stringify(msg)})`}`, async () => {
        await load();
        // A short rate window makes the sandbox's 429s reset soon, so the client's retries run out quickly.
        if (statuses) sandbox.configure({ statuses, rateWindowMs: 200 });
        const images = record('images');
        const caught = collect('caught', 1);
        const sent = sandbox.requests.length;
        node('gen').receive({ topic: 'keep me', ...(msg ?? { payload: 'a cat' }) });
        const [error] = await caught;
        const details = error?.error as { code: string; message: string; source: { id: string } };
        assert.equal(details.code, code);
        if (!statuses) {
          assert.equal(sandbox.requests.length, sent, 'nothing was sent, so no credit was spent');
          assert.ok(expected && details.message.includes(expected), details.message);
        }
        assert.equal(details.source.id, 'gen');
        if (!ownWords) {
          const hint = ERROR_HINTS[code as keyof typeof ERROR_HINTS];
          assert.ok(details.message.endsWith(hint), details.message);
          assert.match(
            details.message.slice(0, -hint.length),
            /[.!?…] $/,
            'the hint is a sentence of its own',
          );
        }
        assert.equal(error?.topic, 'keep me', 'the Catch node gets the failed message');
        assert.equal(images.length, 0);
        assert.equal(statusTexts('gen').at(-1), code);
      });
    }

    it('timeout (a server that never answers)', async () => {
      const silent = await hangingServer();
      try {
        await load({ account: { baseUrl: silent.url, timeout: '0.3' } });
        const caught = collect('caught', 1);
        node('gen').receive({ payload: 'a cat' });
        const [error] = await caught;
        assert.equal((error?.error as { code: string }).code, 'timeout');
      } finally {
        await silent.close();
      }
    });

    it('connection (nothing listening at the base URL)', async () => {
      const closed = await hangingServer();
      await closed.close();
      await load({ account: { baseUrl: closed.url } });
      const caught = collect('caught', 1);
      node('gen').receive({ payload: 'a cat' });
      const [error] = await caught;
      assert.equal((error?.error as { code: string }).code, 'connection');
    });

    it('invalid_request, sending nothing anywhere, when a setting of a hand-edited account is not a number', async () => {
      await load({ account: { requestsPerMinute: 'five' } });
      const sockets: unknown[] = [];
      const opened = (socket: unknown) => sockets.push(socket);
      subscribe('net.client.socket', opened);
      try {
        const before = sandbox.requests.length;
        for (const payload of ['a cat', 'a dog']) {
          const caught = collect('caught', 1);
          node('gen').receive({ payload });
          const [error] = await caught;
          const details = error?.error as { code: string; message: string };
          assert.equal(details.code, 'invalid_request');
          assert.ok(
            details.message.includes(
              'The SDXL account\'s settings are refused: Requests/min: "five" is not allowed; allowed: a whole number',
            ),
            details.message,
          );
        }
        assert.equal(sandbox.requests.length, before, 'nothing reached the sandbox');
        assert.equal(sockets.length, 0, 'no connection was opened to any host');
        assert.equal(statusTexts('gen').at(-1), 'bad account settings');
      } finally {
        unsubscribe('net.client.socket', opened);
      }
    });

    it('unauthorized, before sending, when the account has no key', async () => {
      await helper.load(NODES, flow(), {});
      const before = sandbox.requests.length;
      const caught = collect('caught', 1);
      node('gen').receive({ payload: 'a cat' });
      const [error] = await caught;
      assert.equal((error?.error as { code: string }).code, 'unauthorized');
      assert.equal(sandbox.requests.length, before);
    });
  });

  it('keeps an error visible in red on a busy node until a call succeeds', async () => {
    sandbox.configure({ latencyMs: 300 });
    await load();
    const images = collect('images', 1);
    node('gen').receive({ payload: 'a slow cat' });
    await until(() => statusTexts('gen').includes('generating'), 'the first call to start');
    const caught = collect('caught', 1);
    node('gen').receive({ payload: 'x', sdxl: { steps: 500 } });
    await caught;
    const last = () => node('gen').status.args.at(-1)?.[0] as { fill?: string; text?: string };
    assert.deepEqual(last(), { fill: 'red', shape: 'ring', text: 'invalid_request · generating' });
    await images;
    assert.equal(last().fill, 'green', 'the next success clears it');
    assert.equal(last().text, '1 image · 99.99 credits');
  });

  it('sends one alert on the second output when credits cross the threshold, and turns yellow', async () => {
    sandbox.credits = 1.01;
    await load();
    const alerts = record('alerts');
    for (const expected of ['1.002', '0.994', '0.986']) {
      const images = collect('images', 1);
      node('gen').receive({ payload: 'a coin' });
      const [msg] = await images;
      assert.equal(String(msg?.sdxl?.remainingCredits), expected);
    }
    await sleep(50);
    assert.equal(alerts.length, 1, 'one alert per crossing');
    const alert = alerts[0];
    assert.equal(alert?.topic, 'sdxl/low-credits');
    assert.match(String(alert?.payload), /0\.994 left, below the threshold of 1/);
    assert.equal(alert?.sdxl?.remainingCredits, 0.994);
    const statuses = node('gen').status.args.map(([status]) => status as { fill?: string; text?: string });
    assert.deepEqual(statuses.at(-1), {
      fill: 'yellow',
      shape: 'dot',
      text: '1 image · 0.986 credits (low)',
    });
  });

  it('alerts again only after the balance has gone back above the threshold, on any node of the account', async () => {
    sandbox.credits = 1.005;
    await load({ twin: true });
    const alerts = record('alerts');
    const run = async (id: string, credits?: number): Promise<Msg> => {
      if (credits !== undefined) sandbox.credits = credits;
      const images = collect('images', 1);
      node(id).receive({ payload: 'a coin' });
      const [msg] = await images;
      assert.ok(msg);
      return msg;
    };
    assert.equal((await run('gen')).sdxl?.lowCredits, true);
    assert.equal((await run('twin')).sdxl?.lowCredits, true);
    assert.equal((await run('gen', 5)).sdxl?.lowCredits, false, 'topped up');
    assert.match(statusTexts('gen').at(-1) ?? '', /^1 image · 4\.992 credits$/);
    assert.equal((await run('twin', 1)).sdxl?.lowCredits, true, 'crossed again');
    await sleep(50);
    assert.deepEqual(
      alerts.map((alert) => alert.sdxl?.remainingCredits),
      [0.997, 0.992],
      'one alert per crossing, whichever node made the call',
    );
  });

  it(
    'aborts a slow request when the flow stops, and sends nothing',
    { timeout: ABORT_TIMEOUT_MS },
    async () => {
      const slow = await hangingServer();
      try {
        await load({ account: { baseUrl: slow.url } });
        const images = record('images');
        const caught = record('caught');
        node('gen').receive({ payload: 'a slow cat' });
        const request = await slow.nextRequest;
        const hungUp = new Promise((resolve) => request.socket.once('close', resolve));
        const log = watchRuntimeLog();
        try {
          await helper.unload();
        } finally {
          log.stop();
        }
        await hungUp;
        assert.equal(images.length + caught.length, 0);
        assert.ok(
          log.records.some(
            (record) =>
              record.id === 'gen' &&
              record.msg === 'Cancelled 1 request in flight; 1 had reached the API and may have been billed.',
          ),
          'the node says it cancelled a call that may have been billed',
        );
      } finally {
        await slow.close();
      }
      await load(); // afterEach unloads again
    },
  );

  it('aborts a slow request when the node is redeployed', { timeout: ABORT_TIMEOUT_MS }, async () => {
    const slow = await hangingServer();
    try {
      const nodes = flow({ account: { baseUrl: slow.url } });
      await helper.load(NODES, nodes, { account: { apiKey: API_KEY } });
      const images = record('images');
      const caught = record('caught');
      node('gen').receive({ payload: 'a slow cat' });
      const request = await slow.nextRequest;
      const hungUp = new Promise((resolve) => request.socket.once('close', resolve));
      const changed = nodes.map((entry) => (entry.id === 'gen' ? { ...entry, name: 'renamed' } : entry));
      await helper.setFlows(changed, 'nodes', { account: { apiKey: API_KEY } });
      await hungUp;
      assert.equal(images.length + caught.length, 0);
    } finally {
      await slow.close();
    }
  });

  it('shares one limiter between the nodes of an account: one image in flight', async () => {
    sandbox.configure({ latencyMs: 150 });
    await load({ account: { maxInFlight: '1' }, twin: true });
    const images = collect('images', 3);
    let most = 0;
    const watching = setInterval(() => {
      most = Math.max(most, sandbox.requests.filter((request) => request.status === 0).length);
    }, 2);
    try {
      node('gen').receive({ payload: 'one' });
      node('twin').receive({ payload: 'two' });
      node('gen').receive({ payload: 'three' });
      await images;
    } finally {
      clearInterval(watching);
    }
    assert.equal(most, 1, 'never two requests at the API at once');
    // With room for more, the node would say "generating ×2"; the shared limit keeps its second message waiting.
    assert.ok(statusTexts('gen').includes('generating +1 queued'), statusTexts('gen').join(' | '));
  });

  it('holds a request over the requests-per-minute limit until the flow stops, then ends it', async () => {
    await load({ account: { requestsPerMinute: '1' }, twin: true });
    const first = collect('images', 1);
    node('gen').receive({ payload: 'first' });
    await first;
    const posted = sandbox.requests.length;
    node('twin').receive({ payload: 'second, same account' });
    await until(() => statusTexts('twin').includes('queued'), 'the twin to queue');
    await sleep(200);
    assert.equal(sandbox.requests.length, posted, 'the second waits for the next minute');
    const images = record('images');
    const caught = record('caught');
    // Node-RED reports a close that does not end (the queued call still waiting for its turn) as an error.
    const log = watchRuntimeLog();
    try {
      await helper.unload();
    } finally {
      log.stop();
    }
    const stopErrors = log.records.filter((record) => record.level <= LOG_ERROR);
    assert.deepEqual(stopErrors, [], 'the queued call ended when the flow stopped');
    assert.ok(
      log.records.some(
        (record) => record.id === 'twin' && record.msg === 'Cancelled 1 queued request; none had been sent.',
      ),
      'the node says it cancelled the queued call',
    );
    assert.equal(sandbox.requests.length, posted, 'stopping the flow dropped the queued request');
    assert.equal(images.length + caught.length, 0);
    await load(); // afterEach unloads again
  });

  it('keeps the API key out of messages, errors, logs and the exported flow', async () => {
    await load();
    const images = collect('images', 1);
    node('gen').receive({ payload: 'a secret garden', sdxl: { apiKey: 'from-the-message' } });
    captured.push(await images);
    assert.equal(sandbox.requests.at(-1)?.headers['x-api-key'], API_KEY, 'the key comes from the account');
    assert.ok(
      node('gen').warn.args.some(([text]) => String(text).includes('msg.sdxl.apiKey')),
      'the node says it ignored msg.sdxl.apiKey',
    );

    sandbox.configure({ statuses: [401] });
    const caught = collect('caught', 1);
    node('gen').receive({ payload: 'again' });
    captured.push(await caught);
    const exported = helper._redNodes.getFlows();
    captured.push(exported, node('gen').status.args, node('gen').warn.args, node('gen').error.args);
    captured.push(node('gen').log.args, node('account').error.args, helper.log().args);

    const text = JSON.stringify(captured, (_key, value: unknown) =>
      Buffer.isBuffer(value)
        ? '<buffer>'
        : value instanceof Error
          ? { ...value, message: value.message, stack: value.stack }
          : value,
    );
    assert.match(text, /401 .*unauthorized|unauthorized.*401/s, 'the refused call was captured too');
    assert.equal(text.includes(API_KEY), false, 'the key appears nowhere');
    assert.ok(JSON.stringify(exported).includes('"sdxl-config"'), 'the flow was exported');
  });
});

/** A loopback HTTP server that reads requests and never answers: a very slow API. */
async function hangingServer(): Promise<{
  url: string;
  nextRequest: Promise<IncomingMessage>;
  close(): Promise<void>;
}> {
  const server: Server = createServer();
  const nextRequest = once(server, 'request').then(([request]) => request as IncomingMessage);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    nextRequest,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
