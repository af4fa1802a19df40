// The account's budget, in a real Node-RED runtime against the sandbox over HTTP: shared by every
// sdxl node on the account, refusals to Catch with budget_exceeded and nothing sent, the status
// showing what is spent, and the sandbox's billed record equal to the costs the messages report.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import {
  NODES,
  helper,
  nodeRedVersion,
  record as recordMessages,
  until,
  type FlowNode,
  type RuntimeNode,
} from './harness.ts';

const API_KEY = 'nr-budget-key-93c1e7a0b25d';
/** What the declaration publishes for one SDXL image: a fresh account's first estimate. */
const PUBLISHED = 0.00798;

type Msg = Record<string, unknown> & { sdxl?: Record<string, unknown>; error?: Record<string, unknown> };

let sandbox: Sandbox;
/** Every account gets its own id: the spending an account's id has done outlives a redeploy, by design. */
let accountSerial = 0;
const captured: unknown[] = [];

before(async () => {
  sandbox = await startSandbox({ port: 0, apiKey: API_KEY });
});
after(async () => {
  await sandbox.close();
  assert.ok(
    !inspect(captured, { depth: 12 }).includes(API_KEY),
    'the key is in nothing the runtime gave out',
  );
});
afterEach(async () => {
  captured.push(helper.log().args);
  await helper.unload();
  sandbox.configure({ latencyMs: 0, costPerImage: 0.008 });
  sandbox.credits = 100;
  sandbox.requests.length = 0;
  sandbox.billed.length = 0;
});

const micro = (credits: number) => Math.round(credits * 1e6);
const total = (costs: number[]) => costs.reduce((sum, cost) => sum + micro(cost), 0) / 1e6;
const posts = () => sandbox.requests.filter((request) => request.method === 'POST').length;

/** An account with a budget, two sdxl nodes on it, collectors for images and for Catch. */
function flow(account: Record<string, unknown>, accountId = `budget-account-${++accountSerial}`): FlowNode[] {
  const sdxl = (id: string): FlowNode => ({
    id,
    type: 'sdxl',
    z: 'tab',
    account: accountId,
    prompt: '',
    output: 'messages',
    wires: [['images'], []],
  });
  return [
    { id: 'tab', type: 'tab', label: 'budget' },
    {
      id: accountId,
      type: 'sdxl-config',
      name: 'studio',
      baseUrl: sandbox.url,
      requestsPerMinute: '',
      maxInFlight: '4',
      lowCreditsThreshold: '1',
      timeout: '',
      budget: '',
      budgetWindow: 'day',
      ...account,
    },
    sdxl('gen'),
    sdxl('twin'),
    { id: 'images', type: 'helper', z: 'tab' },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

async function load(nodes: FlowNode[]): Promise<void> {
  const accountId = nodes.find((entry) => entry.type === 'sdxl-config')?.id as string;
  await helper.load(NODES, nodes, { [accountId]: { apiKey: API_KEY } });
}

function node(id: string): RuntimeNode {
  const found = helper.getNode(id);
  assert.ok(found, `node ${id} is running`);
  return found;
}

function record(id: string): Msg[] {
  return recordMessages<Msg>(id, captured);
}

/** The statuses node `id` showed: the helper spies on the prototype, so each call says which node made it. */
function statuses(id: string): { fill?: string; text?: string }[] {
  const spy = node(id).status as unknown as { args: unknown[][]; thisValues: { id: string }[] };
  return spy.args
    .filter((_, call) => spy.thisValues[call]?.id === id)
    .map(([status]) => status as { fill?: string; text?: string });
}

/** The start of the next UTC day or hour, as the refusal names it. */
function nextReset(window: 'day' | 'hour'): string {
  const now = new Date();
  const next =
    window === 'day'
      ? Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)
      : Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), now.getUTCHours() + 1);
  return new Date(next).toISOString();
}

describe(`the account's budget in Node-RED ${nodeRedVersion}`, () => {
  it('is shared by every sdxl node on the account; a message over it goes to Catch with budget_exceeded, nothing sent', async () => {
    await load(flow({ budget: '0.02' }));
    const images = record('images');
    const caught = record('caught');
    node('gen').receive({ payload: 'a red fox' });
    await until(() => images.length === 1, 'the first image');
    node('twin').receive({ payload: 'a grey wolf' });
    await until(() => images.length === 2, 'the second image');
    // 0.008 + 0.008 spent of 0.02: a third image at 0.008 does not fit, from either node.
    node('gen').receive({ payload: 'a brown bear' });
    await until(() => caught.length === 1, 'the refusal');
    assert.equal(posts(), 2, 'the third call was never sent');
    const error = caught[0]?.error as { code: string; message: string; source: { id: string } };
    assert.equal(error.code, 'budget_exceeded');
    assert.equal(error.source.id, 'gen');
    assert.equal(
      error.message,
      `SdxlError: The daily budget of the SDXL account "studio" is 0.02 credits: 0.016 spent, so this call (about 0.008) does not fit; it resets at ${nextReset('day')}. Nothing was sent. Raise the Budget in the SDXL account's settings, or wait until it resets.`,
    );
    assert.equal(caught[0]?.payload, 'a brown bear', 'Catch gets the message that was refused');
    // The status shows what is spent against the budget, then the refusal in red.
    assert.deepEqual(statuses('twin').at(-1), {
      fill: 'green',
      shape: 'dot',
      text: '1 image · 0.016/0.02 cr today',
    });
    assert.deepEqual(statuses('gen').at(-1), {
      fill: 'red',
      shape: 'ring',
      text: 'budget_exceeded (0.016/0.02 cr today)',
    });
    // What the messages report is what the sandbox billed, to the micro-credit.
    const reported = images.map((msg) => msg.sdxl?.cost as number);
    assert.equal(total(reported), total(sandbox.billed.map((call) => call.cost)));
    assert.equal(total(reported), 0.016);
  });

  it('counts per UTC hour when set to, and says when the hour resets', async () => {
    await load(flow({ budget: '0.01', budgetWindow: 'hour' }));
    const images = record('images');
    const caught = record('caught');
    node('gen').receive({ payload: 'one' });
    await until(() => images.length === 1, 'the image');
    assert.equal(statuses('gen').at(-1)?.text, '1 image · 0.008/0.01 cr this hour');
    node('gen').receive({ payload: 'two' });
    await until(() => caught.length === 1, 'the refusal');
    assert.match(
      String(caught[0]?.error?.message),
      new RegExp(
        `^SdxlError: The hourly budget of the SDXL account "studio" is 0\\.01 credits: 0\\.008 spent.*resets at ${nextReset('hour').replace(/\./g, '\\.')}`,
      ),
    );
    assert.equal(posts(), 1);
  });

  it('never lets a burst pass it by more than the calls in flight were billed above their estimate', async () => {
    // Ten messages at once against 0.04: each holds the published 0.00798 before it is sent, so five
    // fit; the sandbox bills 0.008 an image.
    sandbox.configure({ latencyMs: 200 });
    await load(flow({ budget: '0.04' }));
    const images = record('images');
    const caught = record('caught');
    for (let index = 0; index < 10; index++)
      node(index % 2 ? 'twin' : 'gen').receive({ payload: `burst ${index}` });
    await until(() => images.length + caught.length === 10, 'every message answered');
    assert.ok(caught.every((msg) => msg.error?.code === 'budget_exceeded'));
    assert.equal(posts(), images.length, 'a refused message sent nothing');
    assert.equal(sandbox.billed.length, images.length);
    const spent = total(sandbox.billed.map((call) => call.cost));
    assert.equal(total(images.map((msg) => msg.sdxl?.cost as number)), spent);
    assert.ok(
      micro(spent) <= micro(0.04) + images.length * (micro(0.008) - micro(PUBLISHED)),
      `spent ${spent} of 0.04 over ${images.length} calls`,
    );
    assert.ok(images.length >= 4 && images.length <= 5, `${images.length} calls fit`);
  });

  it('keeps what was spent across a redeploy of the account', async () => {
    const nodes = flow({ budget: '0.02' });
    await load(nodes);
    let images = record('images');
    node('gen').receive({ payload: 'one' });
    node('twin').receive({ payload: 'two' });
    await until(() => images.length === 2, 'two images');
    // A full redeploy makes new config and sdxl nodes; the account's day is not given back.
    const accountId = nodes[1]?.id as string;
    await helper.setFlows(
      nodes.map((entry) => (entry.id === accountId ? { ...entry, name: 'studio (renamed)' } : entry)),
      'full',
      { [accountId]: { apiKey: API_KEY } },
    );
    images = record('images');
    const caught = record('caught');
    node('gen').receive({ payload: 'three' });
    await until(() => caught.length === 1, 'the refusal');
    assert.match(String(caught[0]?.error?.message), /"studio \(renamed\)" is 0\.02 credits: 0\.016 spent/);
    assert.equal(images.length, 0);
    assert.equal(posts(), 2);
  });

  it('refuses a budget that is not a number, or a window other than hour or day, naming it; nothing is sent', async () => {
    for (const [account, words] of [
      [
        { budget: 'lots' },
        'Budget: "lots" is not allowed; allowed: a number of credits, 0 or more (empty: no budget)',
      ],
      [{ budget: '-1' }, 'Budget: "-1" is not allowed'],
      [{ budget: '1', budgetWindow: 'week' }, 'Budget per: "week" is not allowed; allowed: hour or day'],
    ] as const) {
      await load(flow(account));
      const caught = record('caught');
      node('gen').receive({ payload: 'a cat' });
      await until(() => caught.length === 1, 'the refusal');
      assert.equal(caught[0]?.error?.code, 'invalid_request');
      assert.ok(String(caught[0]?.error?.message).includes(words), String(caught[0]?.error?.message));
      await helper.unload();
    }
    assert.equal(sandbox.requests.length, 0);
  });

  it('with no budget, sends as before and shows the credits left', async () => {
    await load(flow({ budget: '', budgetWindow: '' }));
    const images = record('images');
    node('gen').receive({ payload: 'a cat' });
    await until(() => images.length === 1, 'the image');
    assert.match(statuses('gen').at(-1)?.text ?? '', /^1 image · 99\.99 credits$/);
  });
});
