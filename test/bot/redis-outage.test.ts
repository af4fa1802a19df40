import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { skipWithoutRedis } from '../support/redis.ts';
import { eventually, startCluster, user, type Cluster } from './cluster.ts';

const BUSY = /The bot is busy and cannot take requests this moment/;

describe('Redis stopped and restarted while two bot processes run jobs', { skip: skipWithoutRedis }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(
      // A paid plan's pace: the jobs wait for images in flight and Redis, not for the free plan's 5 a minute.
      { BOT_MAX_IN_FLIGHT: '2', BOT_REQUESTS_PER_MINUTE: '60' },
      // Slow enough that jobs are in flight and in line when Redis goes.
      { latencyMs: 2_500, rpm: 60 },
    );
  });
  after(() => cluster?.close());

  const submitted = () =>
    cluster.sandbox.requests.filter((request) => request.method === 'POST' && !/credits/.test(request.path))
      .length;

  it('refuses new commands while it is away, loses no accepted job, and takes commands again when it is back', async () => {
    const accepted = Array.from({ length: 5 }, (_, index) =>
      cluster.imagine(user(400 + index), { prompt: `a windmill, take ${index}` }),
    );
    // Every command acknowledged (so accepted and stored), and the first ones submitted to the API.
    await eventually(
      () =>
        cluster.bots.reduce(
          (sum, bot) => sum + (bot.output().match(/"msg":"job queued"/g) ?? []).length,
          0,
        ) === 5 && submitted() >= 2,
      'the five jobs queued and two of them submitted',
    );

    await cluster.redis.stop({ hard: true });
    const stoppedAt = cluster.sandbox.requests.length;
    // ioredis sees the connection drop; until it does a command may still be taken and wait for Redis.
    await eventually(
      () => cluster.bots.every((bot) => /"msg":"redis connection lost"/.test(bot.output())),
      'both processes to notice that Redis went away',
    );
    const during = [0, 1].map((index) =>
      cluster.imagine(user(420 + index), { prompt: `a dune, take ${index}` }),
    );
    const duringOutcomes = await Promise.all(during.map((record) => cluster.outcome(record, 20_000)));
    for (const outcome of duringOutcomes) assert.match(outcome, BUSY);
    assert.ok(
      during.every((record) => {
        const reply = cluster.standin.message(record.originalMessageId ?? record.followupIds[0] ?? '');
        return reply?.ephemeral === true;
      }),
      'the refusals are private',
    );

    // Redis stays away until a job in flight has its images back from the API: that job's images,
    // its end and the next job's start wait for Redis.
    await eventually(
      () =>
        cluster.sandbox.requests
          .slice(stoppedAt)
          .some((request) => /^\/v2\/requests\/[^/]+$/.test(request.path) && request.status === 200),
      'a job in flight to get its images while Redis is away',
    );
    await cluster.redis.restart();
    const outcomes = await Promise.all(accepted.map((record) => cluster.outcome(record, 60_000)));
    assert.deepEqual(
      outcomes,
      ['result', 'result', 'result', 'result', 'result'],
      'every accepted job posted',
    );
    const prompts = cluster.sandbox.billed.map((call) => call.prompt ?? '');
    for (let index = 0; index < 5; index++)
      assert.equal(
        prompts.filter((prompt) => prompt.startsWith(`a windmill, take ${index}`)).length,
        1,
        `job ${index} billed once`,
      );

    // Back: a new command from a user refused during the outage now goes through.
    const again = cluster.imagine(user(420), { prompt: 'a dune, again' });
    const againOutcome = await cluster.outcome(again, 30_000);
    assert.equal(againOutcome, 'result');
    for (const bot of cluster.bots) {
      assert.equal(bot.child.exitCode, null, 'both processes still run');
      assert.match(bot.output(), /"msg":"redis connection back"/);
      // BullMQ retries each of its connections every second or two; the log says so once per outage.
      for (const line of ['queue error', 'queue worker error'])
        assert.ok(
          (bot.output().match(new RegExp(`"msg":"${line}"`, 'g')) ?? []).length <= 1,
          `"${line}" logged at most once for one outage`,
        );
    }
  });
});
