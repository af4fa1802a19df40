import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { skipWithoutRedis } from '../support/redis.ts';
import {
  eventually,
  metricValue,
  operatorGet,
  operatorPort,
  rateLimited,
  startCluster,
  user,
  type Cluster,
} from './cluster.ts';

/**
 * How often the sandbox took a job's submit (its async POST, answered 200), by prompt. A submit the
 * account's pace refused (429) was not taken, and the client sends it again.
 */
function submitsOf(cluster: Cluster, prompt: string): number {
  return cluster.sandbox.requests.filter(
    (request) =>
      request.method === 'POST' &&
      request.path.startsWith('/v2/') &&
      request.status === 200 &&
      (request.body as { prompt?: unknown } | undefined)?.prompt === prompt,
  ).length;
}

describe('short job locks and stalled checks under a burst', { skip: skipWithoutRedis }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(
      {
        // The documented, allowed values with which a burst once had jobs handed out twice.
        BOT_JOB_LOCK_MS: '10000',
        BOT_STALLED_CHECK_MS: '5000',
        BOT_MAX_IN_FLIGHT: '4',
        BOT_REQUESTS_PER_MINUTE: '6',
        BOT_RATE_WINDOW_MS: '15000',
        BOT_USER_QUEUE_LIMIT: '2',
        BOT_HTTP_PORT: '0',
      },
      { latencyMs: 2_000, rpm: 6, rateWindowMs: 15_000 },
      { delivery: 'every-session' },
    );
  });
  after(() => cluster?.close());

  it('submits each job once, and every reply ends posted or refused, never stuck in line', async () => {
    const prompts = Array.from({ length: 18 }, (_, index) => `a paper boat, take ${index}`);
    const records = prompts.map((prompt, index) => cluster.imagine(user(800 + (index % 9)), { prompt }));
    // Both copies scraped while the burst waits for the pace: ready, and the line seen from each.
    const ports = await Promise.all(cluster.bots.map((bot) => operatorPort(bot)));
    const during = await Promise.all(
      ports.map((port) =>
        eventually(async () => {
          const metrics = await operatorGet(port, '/metrics');
          return metrics && (metricValue(metrics.body, 'sdxl_bot_jobs_waiting') ?? 0) > 0 && metrics.body;
        }, 'a scrape showing jobs waiting'),
      ),
    );
    for (const port of ports) assert.equal((await operatorGet(port, '/health'))?.status, 200, 'ready');
    const outcomes = await Promise.all(records.map((record) => cluster.outcome(record, 120_000)));
    const posted = outcomes.flatMap((outcome, index) => (outcome === 'result' ? [prompts[index]!] : []));
    for (const [index, outcome] of outcomes.entries()) {
      if (outcome !== 'result') assert.match(outcome, /already have 2 jobs in line/, `job ${index} refused`);
    }
    assert.ok(posted.length >= 16, `most jobs posted: ${posted.length} of 18`);
    assert.deepEqual(
      prompts.flatMap((prompt) => {
        const submits = submitsOf(cluster, prompt);
        return submits === (posted.includes(prompt) ? 1 : 0) ? [] : [`${prompt}: submitted ${submits} times`];
      }),
      [],
      'each posted job submitted once, each refused one never',
    );
    const billed = cluster.sandbox.billed.map((call) => call.prompt ?? '');
    assert.deepEqual(billed.toSorted(), posted.toSorted(), 'billed once each');
    // What the copies report adds up to what happened: every posted job finished by one copy, none
    // failed, and each 429 counted where it came from.
    const after = await Promise.all(ports.map((port) => operatorGet(port, '/metrics')));
    const total = (name: string, labels?: string) =>
      after.reduce((sum, metrics) => sum + (metricValue(metrics!.body, name, labels) ?? 0), 0);
    assert.equal(total('sdxl_bot_jobs_finished_total'), posted.length);
    assert.equal(total('sdxl_bot_job_seconds_count'), posted.length);
    assert.equal(total('sdxl_bot_jobs_failed_total'), 0);
    assert.equal(total('sdxl_bot_rate_limited_total', 'source="segmind"'), rateLimited(cluster.sandbox));
    assert.equal(
      total('sdxl_bot_rate_limited_total', 'source="discord"'),
      cluster.standin.rest.filter((call) => call.status === 429).length,
    );
    // The copy that finished the last job heard the balance the account was left with.
    assert.ok(
      after.some(
        (metrics) =>
          Math.abs(
            (metricValue(metrics!.body, 'sdxl_bot_credits_left') ?? Number.NaN) - cluster.sandbox.credits,
          ) < 1e-9,
      ),
      `credits left ${cluster.sandbox.credits} reported by a copy`,
    );
    assert.ok(during.every((metrics) => metricValue(metrics, 'sdxl_bot_credits_left') !== undefined));
  });
});
