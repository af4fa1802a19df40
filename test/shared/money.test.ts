// What a call will cost and the budgets it keeps to: prices, plans, ledgers (in memory and on a real
// Redis), and the client holding, settling and releasing against the sandbox over HTTP.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  BudgetExceededError,
  MemoryBudget,
  PlanEstimator,
  PriceBook,
  RedisBudget,
  createClient,
  esrgan,
  sdxlTxt2Img,
  type BudgetLedger,
  type BudgetLimit,
} from '@sdxl-kit/client';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { Redis } from 'ioredis';
import { skipWithoutRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { failure as failureOf } from '../support/failure.ts';

const KEY = 'SG_money_secret_31337';
/** The error, checked for the key in every view of it. */
const failure = (promise: Promise<unknown>) => failureOf(promise, KEY);
const sum = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) * 1e6) / 1e6;

describe('prices and plans', () => {
  it('a model is priced as published until the API reports what this account is billed', () => {
    const prices = new PriceBook();
    assert.deepEqual(prices.priceOf(sdxlTxt2Img), { credits: 0.00798, per: 'image', basis: 'published' });
    assert.equal(prices.costOf(sdxlTxt2Img, 4), 0.03192, 'four samples, four images');
    prices.observe(sdxlTxt2Img, 2, 0.02);
    assert.deepEqual(prices.priceOf(sdxlTxt2Img), { credits: 0.01, per: 'image', basis: 'reported' });
    assert.equal(prices.costOf(sdxlTxt2Img, 3), 0.03);
    // esrgan is one image a call, priced per call.
    assert.equal(prices.costOf(esrgan, 1), 0.0047);
  });

  it('a plan adds calls, images and credits, and times them as the limiter would start them', () => {
    // Two in flight, no rate limit: four 6.26 s calls run two by two.
    const pair = new PlanEstimator(new PriceBook(), { maxInFlight: 2 });
    for (const samples of [1, 2, 3, 4]) pair.add(sdxlTxt2Img, { samples });
    assert.deepEqual(pair.result(), {
      calls: 4,
      images: 10,
      credits: 0.0798,
      seconds: 12.5,
      basis: 'published',
    });
    // Two a minute: the third call waits for the window (60 s plus the limiter's 2% margin).
    const paced = new PlanEstimator(new PriceBook(), { requestsPerMinute: 2, maxInFlight: 4 });
    for (let call = 0; call < 3; call++) paced.add(sdxlTxt2Img, {});
    assert.equal(paced.result().seconds, 67.5);
  });
});

/** The ledger contract, run against the embedded ledger and Redis. */
function ledgerContract(
  name: string,
  open: () => Promise<{ ledger: BudgetLedger; close?: () => Promise<void> }>,
) {
  describe(
    `${name}: reserve, settle, release`,
    { skip: name.includes('Redis') ? skipWithoutRedis : false },
    () => {
      let ledger: BudgetLedger;
      let close: (() => Promise<void>) | undefined;
      let run = 0;
      const limit = (credits: number, window: BudgetLimit['window'] = 'day'): BudgetLimit => ({
        id: `test:${name.replace(/\W/g, '')}:${process.pid}:${run}`,
        credits,
        window,
      });
      before(async () => ({ ledger, close } = await open()));
      beforeEach(() => void run++);
      after(() => close?.());

      it('holds an estimate, refuses what does not fit, naming the budget, and counts what was billed', async () => {
        const cap = limit(0.02);
        const first = await ledger.reserve([cap], 0.008);
        await ledger.reserve([cap], 0.008);
        const refused = await failure(ledger.reserve([cap], 0.008));
        assert.ok(refused instanceof BudgetExceededError);
        assert.equal(refused.code, 'budget_exceeded');
        assert.match(refused.message, /0\.02 credits: 0 spent and 0\.016 held by calls in flight/);
        assert.match(refused.message, /resets at \d{4}-\d\d-\d\dT00:00:00\.000Z/);
        await ledger.settle(first, 0.0075);
        await ledger.settle(first, 0.0075); // settling twice counts once
        const usage = await ledger.usage(cap);
        assert.equal(usage.spent, 0.0075);
        assert.equal(usage.reserved, 0.008);
        assert.equal(usage.left, 0.0045);
      });

      it('releases a hold when nothing was billed, and takes from every limit or from none', async () => {
        const small = limit(0.01);
        const large = limit(1, 'month');
        const held = await ledger.reserve([small, large], 0.008);
        await failure(ledger.reserve([large, small], 0.008));
        assert.equal(
          (await ledger.usage(large)).reserved,
          0.008,
          'the refused call held nothing on the larger budget',
        );
        await ledger.release(held);
        assert.deepEqual([(await ledger.usage(small)).reserved, (await ledger.usage(small)).spent], [0, 0]);
        await ledger.reserve([small, large], 0.01);
      });

      it('never lets a burst pass the cap: 50 holds at once against a budget worth 10', async () => {
        const cap = limit(0.08);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 50 }, () => ledger.reserve([cap], 0.008)),
        );
        assert.equal(outcomes.filter((outcome) => outcome.status === 'fulfilled').length, 10);
      });
    },
  );
}

ledgerContract('the embedded ledger', async () => ({ ledger: new MemoryBudget() }));

let redisServer: TestRedis | undefined;
ledgerContract('the Redis ledger', async () => {
  redisServer ??= await startRedis();
  const connection = new Redis(redisServer.url);
  return {
    ledger: new RedisBudget(connection, { prefix: 'money-test:' }),
    close: async () => {
      connection.disconnect();
      await redisServer?.close();
    },
  };
});

describe('windows', () => {
  it("a day's count starts again at midnight UTC; a hold that lapses frees its credits", async () => {
    let now = Date.UTC(2026, 11, 6, 23, 59);
    const ledger = new MemoryBudget({ now: () => now, reservationTtlMs: 60_000 });
    const day: BudgetLimit = {
      id: 'guild:1',
      credits: 0.01,
      window: 'day',
      label: "the server's daily budget",
    };
    const held = await ledger.reserve([day], 0.008);
    const refused = await failure(ledger.reserve([day], 0.008));
    assert.match(refused.message, /^the server's daily budget is 0\.01 credits/);
    assert.equal((refused as BudgetExceededError).resetsAt?.toISOString(), '2026-12-07T00:00:00.000Z');
    now += 2 * 60_000;
    await ledger.settle(held, 0.008); // settled after midnight: counted on the day it was held
    assert.equal((await ledger.usage(day)).spent, 0, 'a new day');
    await ledger.reserve([day], 0.008);
    now += 61_000;
    assert.equal((await ledger.usage(day)).reserved, 0, 'a hold nobody settled lapses');
  });
});

describe('a client with a budget, against the sandbox over HTTP', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox({ apiKey: KEY });
  });
  beforeEach(() => {
    sandbox.credits = 100;
    sandbox.billed.length = 0;
    sandbox.requests.length = 0;
    sandbox.configure({ statuses: [], failJobs: 0, costHeader: true });
  });
  after(() => sandbox.close());

  const clientWith = (ledger: BudgetLedger, credits: number) =>
    createClient({
      apiKey: KEY,
      baseUrl: sandbox.url,
      retryBaseDelayMs: 5,
      maxRetries: 0,
      budget: { ledger, limits: [{ id: 'run', credits, window: 'total', label: '--max-cost' }] },
    });
  const generations = () => sandbox.requests.filter((request) => request.method === 'POST').length;

  it('spends what the sandbox billed, to the micro-credit, and sends nothing that would pass the cap', async () => {
    const ledger = new MemoryBudget();
    const client = clientWith(ledger, 0.02);
    const first = await client.generate({ prompt: 'a fox' });
    assert.equal(first.estimatedCost, 0.00798, 'the published price before the first report');
    const second = await client.generate({ prompt: 'a fox' }, { api: 'async' });
    assert.equal(second.estimatedCost, 0.008, "the sandbox's reported price after it");
    const refused = await failure(client.generate({ prompt: 'a fox' }));
    assert.equal(refused.code, 'budget_exceeded');
    assert.match(
      refused.message,
      /^--max-cost is 0\.02 credits: 0\.016 spent, so this call \(about 0\.008\) does not fit/,
    );
    assert.equal(generations(), 2, 'the third call was never sent');
    const usage = await ledger.usage({ id: 'run', credits: 0.02, window: 'total' });
    assert.equal(usage.spent, sum(sandbox.billed.map((call) => call.cost)));
    assert.equal(usage.spent, sum([first.cost!, second.cost!]));
  });

  it('releases the hold when the API billed nothing (a 500, a FAILED job), and counts the estimate when it may have', async () => {
    const ledger = new MemoryBudget();
    const client = clientWith(ledger, 1);
    sandbox.configure({ statuses: [500] });
    assert.equal((await failure(client.generate({ prompt: 'a fox' }))).code, 'server_error');
    sandbox.configure({ failJobs: 1 });
    assert.equal((await failure(client.generate({ prompt: 'a fox' }, { api: 'async' }))).code, 'job_failed');
    const limit = { id: 'run', credits: 1, window: 'total' } as const;
    assert.deepEqual([(await ledger.usage(limit)).spent, (await ledger.usage(limit)).reserved], [0, 0]);
    assert.equal(sandbox.billed.length, 0);
    // Accepted, then we stopped waiting: the job goes on and is billed, so its estimate counts.
    sandbox.configure({ failJobs: 0, latencyMs: 2000 });
    const controller = new AbortController();
    const waiting = client.generate(
      { prompt: 'a fox' },
      {
        api: 'async',
        signal: controller.signal,
        onSubmitted: () => void setTimeout(() => controller.abort(), 20),
      },
    );
    assert.equal((await failure(waiting)).code, 'aborted');
    assert.equal((await ledger.usage(limit)).spent, 0.00798);
    sandbox.configure({ latencyMs: 0 });
  });

  it('an answer without x-cost is priced by the drop in remaining credits, when the call ran alone', async () => {
    sandbox.configure({ costHeader: false });
    const client = createClient({ apiKey: KEY, baseUrl: sandbox.url, maxRetries: 0 });
    const first = await client.generate({ prompt: 'a fox' });
    assert.equal(first.cost, undefined, 'no earlier reading to compare with');
    const second = await client.generate({ prompt: 'a fox', samples: 2 });
    assert.equal(second.cost, sandbox.billed[1]!.cost);
    assert.equal(second.cost, 0.016);
    assert.deepEqual(client.prices.priceOf(sdxlTxt2Img), { credits: 0.008, per: 'image', basis: 'reported' });
    // Two at once: neither drop can be put down to one call.
    const both = await Promise.all([client.generate({ prompt: 'a' }), client.generate({ prompt: 'b' })]);
    assert.deepEqual(
      both.map((result) => result.cost),
      [undefined, undefined],
    );
    sandbox.configure({ costHeader: true });
  });

  it('refuses a cap below one call before anything is uploaded or sent', async () => {
    const client = clientWith(new MemoryBudget(), 0.001);
    const refused = await failure(client.upscale({ image: 'https://example.invalid/a.png' }));
    assert.equal(refused.code, 'budget_exceeded');
    assert.equal(sandbox.requests.length, 0);
  });
});
