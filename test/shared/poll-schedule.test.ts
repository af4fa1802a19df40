// The async poll schedule against the sandbox over HTTP: what one job teaches of its model's time,
// the next uses (in another client on the same store, in a batch round at once, across processes on
// Redis), and no job makes more status checks than checking at once and then every interval would.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as wait } from 'node:timers/promises';
import {
  JOB_TIME_SAMPLES,
  MemoryJobTimeStore,
  RedisJobTimeStore,
  createClient,
  forecast,
  nextCheckAt,
  type PollOptions,
} from '@sdxl-kit/client';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { Redis } from 'ioredis';
import { skipWithoutRedis, startRedis, type TestRedis } from '../support/redis.ts';

const KEY = 'SG_pollschedule000777';

describe('the poll schedule against the sandbox over HTTP', () => {
  let sandbox: Sandbox;
  const client = (jobTimes: MemoryJobTimeStore | RedisJobTimeStore, poll: PollOptions = {}) =>
    createClient({ apiKey: KEY, baseUrl: sandbox.url, jobTimes, poll });
  /** The status checks of one request id, in the order the sandbox got them. */
  const checksOf = (requestId: string) =>
    sandbox.requests.filter((request) => request.path === `/v2/requests/${requestId}/status`);

  before(async () => {
    sandbox = await startSandbox({ apiKey: KEY, recordLimit: 10_000, credits: 1e6 });
  });
  beforeEach(() => {
    sandbox.configure({ latencyMs: 0, queueMs: 0 });
    sandbox.requests.length = 0;
  });
  after(() => sandbox.close());

  it('keeps what a job taught in its store: a new client on it waits for the learnt time before its first check', async () => {
    sandbox.configure({ latencyMs: 1500 });
    const store = new MemoryJobTimeStore();
    const first = await client(store).generate({ prompt: 'teaches' }, { api: 'async' });
    const [learnt] = await store.recent(`${sandbox.url} sdxl1.0-txt2img`);
    // Counted from the submit's answer: the server's total_time, or less if this process read the answer late.
    assert.ok(learnt && learnt.totalMs > 0, `learnt ${JSON.stringify(learnt)}`);
    assert.ok(first.polls >= 2, 'the cold first check (250 ms) came before the 1.5 s job was done');

    sandbox.requests.length = 0;
    const second = await client(store).generate({ prompt: 'uses it' }, { api: 'async' });
    const checks = checksOf(second.requestId!);
    const submitted = sandbox.requests.find((request) => request.method === 'POST')!;
    // Its first check waited for the learnt time (a lower bound the client's own wait guarantees).
    assert.ok(
      checks[0]!.receivedAt - submitted.receivedAt >= learnt.totalMs - 100,
      `first check ${checks[0]!.receivedAt - submitted.receivedAt} ms after the submit, learnt ${learnt.totalMs}`,
    );
    assert.equal(second.polls, checks.length);
  });

  it('times submit() then waitFor() from the submit, as generate does: the first check waits for the learnt time', async () => {
    sandbox.configure({ latencyMs: 1500 });
    const store = new MemoryJobTimeStore();
    await client(store).generate({ prompt: 'teaches' }, { api: 'async' });
    const [learnt] = await store.recent(`${sandbox.url} sdxl1.0-txt2img`);
    sandbox.requests.length = 0;
    // A host that keeps the ticket (say, in its own queue) and waits for it later, in another client.
    const ticket = await client(store).submit('sdxl1.0-txt2img', { prompt: 'submitted, then waited for' });
    assert.equal(typeof ticket.acceptedAt, 'number', 'the ticket says when the submit was answered');
    const result = await client(store).waitFor(JSON.parse(JSON.stringify(ticket)));
    const checks = checksOf(ticket.requestId);
    const submitted = sandbox.requests.find((request) => request.method === 'POST')!;
    assert.ok(
      checks[0]!.receivedAt - submitted.receivedAt >= learnt!.totalMs - 100,
      `first check ${checks[0]!.receivedAt - submitted.receivedAt} ms after the submit, learnt ${learnt!.totalMs}`,
    );
    assert.equal(result.polls, checks.length);
    assert.equal(result.images.length, 1);
  });

  it('shares within a batch round: a job waiting on the cold cadence looks again as soon as another job of its model is done', async () => {
    sandbox.configure({ latencyMs: 500 });
    // Cold: a first check at 100 ms, then one every 3 s. B starts 1.5 s after A, so on the cold
    // cadence alone it would look again 4.5 s after A's start; A's result (at 3 s) teaches it sooner.
    const shared = client(new MemoryJobTimeStore(), { firstDelayMs: 100, intervalMs: 3000 });
    const a = shared.generate({ prompt: 'first of the round' }, { api: 'async' });
    await wait(1500);
    const b = shared.generate({ prompt: 'second of the round' }, { api: 'async' });
    await a;
    // A marker the test sends once A's call has returned: B's second check came before it.
    await shared.getCredits();
    const bResult = await b;
    const marker = sandbox.requests.findIndex((request) => request.path.endsWith('/get-user-credits'));
    const bChecks = sandbox.requests
      .map((request, index) => ({ request, index }))
      .filter(({ request }) => request.path === `/v2/requests/${bResult.requestId}/status`);
    assert.equal(bResult.polls, 2);
    assert.deepEqual(
      bChecks.map(({ index }) => index < marker),
      [true, true],
      'both of B’s checks before the marker: the second was woken by what A taught',
    );
  });

  it('never makes more status checks than checking at once and then every interval, when the forecast is wrong', async () => {
    const store = new MemoryJobTimeStore();
    // Taught that jobs take 50 ms; this one takes 2.5 s.
    for (let i = 0; i < 3; i++) await store.add(`${sandbox.url} sdxl1.0-txt2img`, { totalMs: 50 }, 12);
    sandbox.configure({ latencyMs: 2500 });
    const started = Date.now();
    const result = await client(store, { intervalMs: 500 }).generate({ prompt: 'slower' }, { api: 'async' });
    const elapsed = Date.now() - started;
    // The fixed policy has made 1 + floor(t / 500) checks by time t; it finds the job done by its
    // first check after the end, so it makes at least 1 + ceil(end / 500).
    assert.ok(result.polls <= 2 + Math.floor(elapsed / 500), `${result.polls} checks in ${elapsed} ms`);
    assert.equal(result.polls, checksOf(result.requestId!).length);
  });

  it('checks a QUEUED job no sooner than its inference time, and one still PROCESSING within it', () => {
    const expected = forecast([
      { totalMs: 1000, queueMs: 200, inferenceMs: 800 },
      { totalMs: 1100, queueMs: 300, inferenceMs: 800 },
      { totalMs: 1050, queueMs: 250, inferenceMs: 800 },
    ])!;
    assert.equal(expected.endMs, 1050);
    assert.equal(expected.inferenceMs, 800);
    const cadence = { firstDelayMs: 250, intervalMs: 1000 };
    const first = nextCheckAt({ polls: 0 }, cadence, expected);
    assert.equal(
      first,
      expected.endMs + expected.spreadMs,
      `first check at ${first}: a spread after the end`,
    );
    // Still waiting for a worker at its first check: not done before a whole inference from now.
    assert.ok(
      nextCheckAt({ polls: 1, lastAtMs: first, lastState: 'QUEUED' }, cadence, expected) >= first + 800,
    );
    // Running, long past the forecast: about an inference from now, sooner than the cadence's next.
    const late = 5000;
    const next = nextCheckAt({ polls: 1, lastAtMs: late, lastState: 'PROCESSING' }, cadence, expected);
    assert.ok(next > late + 800 && next < late + 1000, `next check at ${next}`);
    // Knowing nothing: the first delay, then on the interval's beat.
    assert.equal(nextCheckAt({ polls: 0 }, cadence, undefined), 250);
    assert.equal(nextCheckAt({ polls: 1, lastAtMs: 250 }, cadence, undefined), 1000);
    assert.equal(nextCheckAt({ polls: 2, lastAtMs: 1000 }, cadence, undefined), 2000);
  });

  describe('on Redis, shared by processes', { skip: skipWithoutRedis }, () => {
    let redis: TestRedis;
    const connections: Redis[] = [];
    const connect = () => {
      const connection = new Redis(redis.url);
      connections.push(connection);
      return connection;
    };
    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      for (const connection of connections) connection.disconnect();
      await redis?.close();
    });

    it('what one process learns, another reads, and each keeps only the newest samples', async () => {
      const [one, two] = [
        new RedisJobTimeStore(connect(), 'bot-a:'),
        new RedisJobTimeStore(connect(), 'bot-a:'),
      ];
      sandbox.configure({ latencyMs: 300 });
      const result = await client(one).generate({ prompt: 'on redis' }, { api: 'async' });
      const key = `${sandbox.url} sdxl1.0-txt2img`;
      const seen = await two.recent(key);
      assert.equal(seen.length, 1);
      assert.deepEqual(seen, await one.recent(key));
      assert.ok(seen[0]!.totalMs > 0 && seen[0]!.inferenceMs! >= 300, `read ${JSON.stringify(seen)}`);
      assert.ok(result.polls >= 1);
      // Adds from both go to one list, which keeps the newest JOB_TIME_SAMPLES.
      for (let i = 0; i < 20; i++)
        await (i % 2 ? one : two).add(key, { totalMs: 1000 + i }, JOB_TIME_SAMPLES);
      const kept = await one.recent(key);
      assert.equal(kept.length, JOB_TIME_SAMPLES);
      assert.deepEqual(
        kept.map((sample) => sample.totalMs),
        Array.from({ length: JOB_TIME_SAMPLES }, (_, i) => 1020 - JOB_TIME_SAMPLES + i),
      );
      // Another bot's prefix is its own.
      assert.deepEqual(await new RedisJobTimeStore(connect(), 'bot-b:').recent(key), []);
    });
  });
});
