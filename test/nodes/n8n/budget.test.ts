// Max Credits per Execution: the built node prices its whole run before the first call, and the
// execution's ledger keeps every call within the cap, against the sandbox over real HTTP. What the
// sandbox billed is compared with what the items report.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import {
  Sdxl,
  everything,
  failure,
  runNode,
  workflow,
  type INodeExecutionData,
  type RunOptions,
} from './harness.ts';

const KEY = 'sk-n8n-budget-test-5be01c7d9a2f';
/** What the declaration publishes for one SDXL image, and so what a fresh execution estimates. */
const PUBLISHED = 0.00798;

Sdxl.rateWindowMs = 1_000;

let sandbox: Sandbox;

before(async () => {
  sandbox = await startSandbox({ apiKey: KEY, credits: 100 });
});
after(async () => {
  await sandbox.close();
});
beforeEach(() => {
  sandbox.configure({ statuses: [], latencyMs: 0, costPerImage: 0.008 });
  sandbox.credits = 100;
  sandbox.requests.length = 0;
  sandbox.billed.length = 0;
});

const micro = (credits: number) => Math.round(credits * 1e6);
const total = (costs: number[]) => costs.reduce((sum, cost) => sum + micro(cost), 0) / 1e6;
const generations = () => sandbox.requests.filter((request) => request.method === 'POST').length;

function run(items: number, options: Record<string, unknown>, overrides: Partial<RunOptions> = {}) {
  return runNode({
    credentials: { apiKey: KEY, baseUrl: sandbox.url },
    items: Array.from({ length: items }, (_, index) => ({ json: { index } })),
    parameters: (itemIndex) => ({ prompt: `prompt ${itemIndex}`, options }),
    ...overrides,
  });
}

/** The cost each call reported: every image item of a call carries it, so one per call (index 0). */
function reportedCosts(items: INodeExecutionData[]): number[] {
  return items
    .filter((item) => item.json.index === 0 && item.json.cost !== undefined)
    .map((item) => item.json.cost as number);
}

describe('n8n node: Max Credits per Execution', () => {
  it('stops before the first call when the run is estimated over the cap, naming the estimate and the cap', async () => {
    // Five items, two images each: 10 x 0.00798 = 0.0798 credits, over a cap of 0.05.
    const error = await failure(run(5, { samples: 2, maxCredits: 0.05 }));
    assert.ok(error instanceof workflow.NodeOperationError);
    assert.equal(
      error.message,
      'This run would cost about 0.0798 credits, more than Max Credits per Execution (0.05)',
    );
    assert.match(
      String(error.description),
      /^5 calls for 10 images, estimated at each model's published price\./,
    );
    assert.match(String(error.description), /Nothing was sent\.$/);
    assert.equal(sandbox.requests.length, 0, 'nothing sent, nothing uploaded');
    assert.equal(sandbox.billed.length, 0);
    assert.ok(!everything(error).includes(KEY), 'the key is not in the error');
  });

  it('a cap of 0 refuses any billed call, and a value that is not a number is refused by name', async () => {
    const zero = await failure(run(1, { maxCredits: 0 }));
    assert.match(zero.message, /about 0\.00798 credits, more than Max Credits per Execution \(0\)/);
    const words = await failure(run(1, { maxCredits: 'ten' }));
    assert.ok(words instanceof workflow.NodeOperationError);
    assert.equal(
      words.message,
      'Max Credits per Execution: "ten" is not allowed; allowed: a number of credits, 0 or more',
    );
    const negative = await failure(run(1, { maxCredits: -1 }));
    assert.match(negative.message, /"-1" is not allowed/);
    assert.equal(generations(), 0);
  });

  it('runs what fits, reads a cap given as text, and its items report what the sandbox billed, to the micro-credit', async () => {
    const { items } = await run(3, {
      samples: 2,
      maxCredits: '0.05',
      maxInFlight: 3,
      requestsPerMinute: 100,
    });
    assert.equal(items.length, 6);
    assert.equal(sandbox.billed.length, 3);
    const costs = reportedCosts(items);
    assert.equal(costs.length, 3, 'every call reported its cost');
    assert.equal(total(costs), total(sandbox.billed.map((call) => call.cost)));
    // Each image item carries its call's cost and request ID, as billed.
    for (const item of items) {
      const billed = sandbox.billed.find((call) => call.requestId === item.json.requestId);
      assert.ok(billed, `item ${String(item.json.fileName)} names a billed call`);
      assert.equal(micro(item.json.cost as number), micro(billed.cost));
    }
  });

  it('never passes the cap mid-run by more than the calls in flight when it was reached; refused items fail with budget_exceeded', async () => {
    // The estimate is 8 x 0.00798 = 0.06384, under a cap of 0.07. The account is billed 0.02 an
    // image: once the first answers say so, each call holds 0.02 and the cap stops the run early.
    sandbox.configure({ costPerImage: 0.02 });
    const maxInFlight = 2;
    const cap = 0.07;
    const { items } = await run(
      8,
      { maxCredits: cap, maxInFlight, requestsPerMinute: 100 },
      { continueOnFail: true },
    );
    assert.equal(items.length, 8, 'one item per input: an image or a refusal');
    const refused = items.filter((item) => item.json.code === 'budget_exceeded');
    const made = items.filter((item) => item.json.error === undefined);
    assert.ok(refused.length >= 4, `most items refused (${refused.length})`);
    assert.equal(made.length + refused.length, 8, 'no other failure');
    // Only what was billed was sent: a refused item sent nothing.
    assert.equal(generations(), sandbox.billed.length);
    assert.equal(made.length, sandbox.billed.length);
    const spent = total(sandbox.billed.map((call) => call.cost));
    assert.equal(total(reportedCosts(items)), spent, 'the items report what was billed');
    // Past the cap only by what calls already in flight were billed above the estimate they held.
    assert.ok(
      micro(spent) <= micro(cap) + maxInFlight * (micro(0.02) - micro(PUBLISHED)),
      `spent ${spent} against a cap of ${cap}`,
    );
    const first = refused[0] as INodeExecutionData;
    assert.equal(first.json.error, 'Max Credits per Execution reached');
    assert.match(String(first.json.description), /^Max Credits per Execution is 0\.07 credits: [\d.]+ spent/);
    assert.match(String(first.json.description), /Nothing was sent\./);
    assert.ok(!everything(items).includes(KEY), 'the key is not in the items');
  });

  it('without Continue On Fail, the first refusal stops the execution with a NodeOperationError', async () => {
    sandbox.configure({ costPerImage: 0.02 });
    const error = await failure(run(8, { maxCredits: 0.07, maxInFlight: 2, requestsPerMinute: 100 }));
    assert.ok(error instanceof workflow.NodeOperationError);
    assert.equal(error.message, 'Max Credits per Execution reached');
    assert.match(String(error.description), /does not fit/);
    assert.ok(sandbox.billed.length < 8);
    assert.equal(generations(), sandbox.billed.length, 'nothing sent past the cap');
    assert.ok(!everything(error).includes(KEY));
  });

  it('each execution has its own cap: a second run starts from nothing spent', async () => {
    const first = await run(2, { maxCredits: 0.02 });
    const second = await run(2, { maxCredits: 0.02 });
    assert.equal(first.items.length + second.items.length, 4);
    assert.equal(sandbox.billed.length, 4);
  });
});
