import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisBudget } from '@sdxl-kit/client';
import { Redis } from 'ioredis';
import { skipWithoutRedis } from '../support/redis.ts';
import { rateLimited, startCluster, user, type BotProcess, type Cluster } from './cluster.ts';
import { ADMIN_CHANNEL, GUILD } from './world.ts';

describe('two bot processes on one Redis', { skip: skipWithoutRedis }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(
      {
        BOT_REQUESTS_PER_MINUTE: '6',
        BOT_RATE_WINDOW_MS: '2000',
        BOT_MAX_IN_FLIGHT: '4',
        BOT_USER_QUEUE_LIMIT: '2',
        BOT_USER_DAILY_IMAGES: '6',
        SDXL_LOW_CREDITS: '1',
      },
      // The account's pace, enforced: 6 calls per 2 s, as the bots are told.
      { rpm: 6, rateWindowMs: 2_000, latencyMs: 300, credits: 1.1 },
    );
  });
  after(() => cluster?.close());

  it('share one pace: a burst from 20 users draws no 429, every job is answered by one of them, and the admins hear of the low balance once', async () => {
    // One command to each process first, as a bot that has been running a while has had: each then
    // knows the balance and acknowledges the burst at once instead of asking for it first.
    for (const index of [90, 91])
      assert.equal(await cluster.outcome(cluster.imagine(user(index), { prompt: 'a buoy' })), 'result');
    const billedBefore = cluster.sandbox.billed.length;
    const records = Array.from({ length: 20 }, (_, index) =>
      cluster.imagine(user(index), { prompt: `a harbour, take ${index}` }),
    );
    const outcomes = await Promise.all(records.map((record) => cluster.outcome(record, 40_000)));
    assert.deepEqual(
      outcomes.filter((outcome) => outcome !== 'result'),
      [],
      'every job posted its result',
    );
    assert.equal(rateLimited(cluster.sandbox), 0, 'the sandbox answered no request with 429');
    assert.equal(cluster.sandbox.billed.length - billedBefore, 20, 'each job billed once');
    const receivers = cluster.bots.map((bot) => (bot.output().match(/"msg":"job queued"/g) ?? []).length);
    assert.deepEqual(receivers, [11, 11], 'both processes took commands');
    const runners = cluster.bots.map((bot) => (bot.output().match(/"msg":"job running"/g) ?? []).length);
    assert.equal(runners[0]! + runners[1]!, 22);
    // 1.1 credits at 0.008 an image: the balance crossed 1 once, during the burst.
    const notices = cluster.standin.messages.filter(
      (message) => message.channelId === ADMIN_CHANNEL && /credits are low/.test(message.content),
    );
    assert.equal(notices.length, 1, 'one admin notice for one crossing, though two processes saw it');
  });

  it('hold per-user limits and daily quotas across processes', async () => {
    cluster.sandbox.configure({ latencyMs: 1_500 });
    const eager = user(100);
    const eagerRecords = Array.from({ length: 5 }, (_, index) =>
      cluster.imagine(eager, { prompt: `a lighthouse, take ${index}` }),
    );
    // Three images each against a quota of six a day, three at once: the quota, checked and taken in
    // one step across processes, lets two through and refuses the third itself (were it counted twice
    // it would reach the per-user limit instead, with that message).
    const thrifty = user(101);
    const quota = Array.from({ length: 3 }, (_, index) =>
      cluster.imagine(thrifty, { prompt: `a meadow, take ${index}`, samples: 3 }),
    );
    const [eagerOutcomes, quotaOutcomes] = await Promise.all([
      Promise.all(eagerRecords.map((record) => cluster.outcome(record))),
      Promise.all(quota.map((record) => cluster.outcome(record))),
    ]);
    assert.equal(eagerOutcomes.filter((outcome) => outcome === 'result').length, 2);
    for (const refusal of eagerOutcomes.filter((outcome) => outcome !== 'result'))
      assert.match(refusal, /You already have 2 jobs in line \(the limit is 2 per person\)/);
    assert.equal(quotaOutcomes.filter((outcome) => outcome === 'result').length, 2);
    const [quotaRefusal] = quotaOutcomes.filter((outcome) => outcome !== 'result');
    assert.match(quotaRefusal ?? '', /Daily limit: you have made 6 of your 6 images today/);
    cluster.sandbox.configure({ latencyMs: 300 });
  });
});

describe('a bot process killed while it runs a job', { skip: skipWithoutRedis }, () => {
  let cluster: Cluster;
  before(async () => {
    // A short lock so the test is quick: the job moves on within about 3 s of the kill.
    cluster = await startCluster(
      // A server budget: the job's hold, taken by the killed process, is settled by the survivor.
      { BOT_JOB_LOCK_MS: '2000', BOT_STALLED_CHECK_MS: '1000', BOT_BUDGET_SERVER_DAY: '1' },
      { latencyMs: 4_000 },
    );
  });
  after(() => cluster?.close());

  it('has its job finished by the other process, resumed by its request id and billed once', async () => {
    const record = cluster.imagine(user(300), { prompt: 'a lighthouse in a gale' });
    // The process that submitted it (its request id stored) is killed while the sandbox works on it.
    // Killed once its request id is stored (the job is billed from then on) and while the sandbox
    // still works on it.
    const redis = new Redis(cluster.redis.url);
    let running: BotProcess | undefined;
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        running = cluster.bots.find((bot) => /"msg":"job running"/.test(bot.output()));
        const jobId = running && /"jobId":"(\w+)","msg":"job running"/.exec(running.output())?.[1];
        const key = `${cluster.env.BOT_REDIS_PREFIX}:job:${jobId}`;
        if (jobId && (await redis.hget(key, 'requestId'))) break;
        assert.ok(Date.now() < deadline, 'the job was submitted within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      redis.disconnect();
    }
    assert.ok(running);
    assert.equal(cluster.sandbox.billed.length, 0, 'killed while the sandbox works on it');
    running.child.kill('SIGKILL');
    await running.exited;
    assert.equal(await cluster.outcome(record, 30_000), 'result', 'the other process posted the result');
    assert.equal(cluster.sandbox.billed.length, 1, 'billed once: resumed, not submitted again');
    const survivor = cluster.bots.find((bot) => bot !== running)!;
    assert.match(survivor.output(), /"msg":"resuming a submitted job"/);
    const message = cluster.standin.original(record)!;
    assert.equal(message.attachments.length, 1);
    const ledger = new Redis(cluster.redis.url);
    try {
      const usage = await new RedisBudget(ledger, { prefix: `${cluster.env.BOT_REDIS_PREFIX}:` }).usage({
        id: `guild:${GUILD}`,
        credits: 1,
        window: 'day',
      });
      assert.deepEqual(
        { spent: usage.spent, held: usage.reserved },
        { spent: cluster.sandbox.billed[0]!.cost, held: 0 },
        "the server spent what was billed, the dead process's hold settled",
      );
    } finally {
      ledger.disconnect();
    }
  });
});

describe('a queued job started by the other process', { skip: skipWithoutRedis }, () => {
  let cluster: Cluster;
  before(async () => {
    // One image at a time, each job about 0.4 s (50 jobs, about 23 s): every waiting job moves up a
    // place each time one starts, so the process that queued it keeps a position edit pending (they
    // are spaced 3 s apart); the stand-in hands commands to the processes in turn, so about half the
    // jobs are started by the process that did not queue them.
    cluster = await startCluster(
      { BOT_MAX_IN_FLIGHT: '1', BOT_REQUESTS_PER_MINUTE: '1000', BOT_USER_QUEUE_LIMIT: '3' },
      { latencyMs: 300 },
    );
  });
  after(() => cluster?.close());

  it('never has its reply go back from "making…" to a queue position', async () => {
    const records = Array.from({ length: 50 }, (_, index) =>
      cluster.imagine(user(400 + index), { prompt: `a tide pool, take ${index}` }),
    );
    const outcomes = await Promise.all(records.map((record) => cluster.outcome(record, 90_000)));
    assert.deepEqual(
      outcomes.filter((outcome) => outcome !== 'result'),
      [],
      'every job posted its result',
    );
    // Jobs one process queued and the other ran: the case at stake.
    const ids = (bot: BotProcess, msg: string) =>
      new Set(
        [...bot.output().matchAll(new RegExp(`"jobId":"(\\w+)"[^\\n]*"msg":"${msg}"`, 'g'))].map((m) => m[1]),
      );
    const [first, second] = cluster.bots.map((bot) => ({
      queued: ids(bot, 'job queued'),
      ran: ids(bot, 'job running'),
    }));
    const elsewhere =
      [...first!.queued].filter((id) => second!.ran.has(id)).length +
      [...second!.queued].filter((id) => first!.ran.has(id)).length;
    assert.ok(elsewhere >= 4, `jobs queued by one process and run by the other: ${elsewhere}`);
    const backwards = records.flatMap((record, index) => {
      const history = cluster.standin.original(record)!.history.map((entry) => entry.content);
      const making = history.findIndex((content) => content.startsWith('\ud83c\udfa8'));
      const after = history.slice(making + 1).filter((content) => content.startsWith('\u23f3'));
      return making >= 0 && after.length > 0 ? [`job ${index}: ${after.join(' | ').slice(0, 120)}`] : [];
    });
    assert.deepEqual(backwards, [], 'no reply showed a queue position after "making…"');
  });
});
