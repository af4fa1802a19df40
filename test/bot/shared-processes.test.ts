import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startSandbox, type Sandbox, type SandboxOptions } from '@sdxl-kit/sandbox';
import {
  startDiscordStandin,
  type Actor,
  type DiscordStandin,
  type InteractionRecord,
} from '../../bot/test-support/discord-standin/server.ts';
import { skipWithoutRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { ADMIN_CHANNEL, API_KEY, BOT_TOKEN, CHANNEL, GUILD } from './world.ts';

const MAIN = new URL('../../bot/src/main.ts', import.meta.url).pathname;
const REDIS_PASSWORD = 'redis-secret-do-not-leak-4711';

/** A bot process as `npm start` runs it, with what it printed. */
interface BotProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/**
 * Two real bot processes (`bot/src/main.ts`) on one real Redis, logged in with one token to the
 * Discord stand-in (which hands each interaction to one of them in turn), with the sandbox enforcing
 * the account's pace behind them.
 */
interface Cluster {
  redis: TestRedis;
  sandbox: Sandbox;
  standin: DiscordStandin;
  bots: BotProcess[];
  env: Record<string, string>;
  spawnBot(): BotProcess;
  imagine(actor: Actor, options: Record<string, string | number | boolean>): InteractionRecord;
  /** The result message with images, or the private reply, whichever the user ends up with. */
  outcome(record: InteractionRecord, timeoutMs?: number): Promise<'result' | string>;
  close(): Promise<void>;
}

async function startCluster(env: Record<string, string>, sandboxOptions: SandboxOptions): Promise<Cluster> {
  const redis = await startRedis({ password: REDIS_PASSWORD });
  const sandbox = await startSandbox({ apiKey: API_KEY, ...sandboxOptions });
  const standin = await startDiscordStandin({
    token: BOT_TOKEN,
    guilds: [{ id: GUILD, channels: [CHANNEL, ADMIN_CHANNEL] }],
  });
  const fullEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    DISCORD_TOKEN: BOT_TOKEN,
    DISCORD_API_URL: standin.apiUrl,
    SDXL_API_KEY: API_KEY,
    SDXL_BASE_URL: sandbox.url,
    REDIS_URL: redis.url,
    BOT_REDIS_PREFIX: `test-${randomUUID()}`,
    BOT_ADMIN_CHANNEL_ID: ADMIN_CHANNEL,
    LOG_LEVEL: 'debug',
    ...env,
  };
  const spawnBot = (): BotProcess => {
    const child = spawn(process.execPath, ['--no-warnings', MAIN], {
      env: fullEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { child, output: () => output, exited };
  };
  const bots = [spawnBot(), spawnBot()];
  try {
    await standin.waitForGateway(60_000, 2);
  } catch (error) {
    for (const bot of bots) bot.child.kill('SIGKILL');
    await Promise.all([standin.close(), sandbox.close(), redis.close()]);
    throw new Error(
      `the bots did not log in: ${bots.map((bot) => bot.output().slice(-2_000)).join('\n---\n')}`,
      {
        cause: error,
      },
    );
  }
  const cluster: Cluster = {
    redis,
    sandbox,
    standin,
    bots,
    env: fullEnv,
    spawnBot,
    imagine: (actor, options) =>
      standin.slash({ guildId: GUILD, channelId: CHANNEL, ...actor }, 'imagine', options),
    outcome: (record, timeoutMs = 20_000) =>
      standin.waitFor(
        () => {
          const original = standin.original(record);
          if (original && !original.deleted && original.attachments.length > 0) return 'result';
          const reply = [
            ...(record.originalMessageId ? [record.originalMessageId] : []),
            ...record.followupIds,
          ]
            .map((id) => standin.message(id))
            .find((message) => message && !message.deleted && message.ephemeral && message.content);
          return reply?.content;
        },
        'a result or a private reply',
        timeoutMs,
      ),
    async close() {
      for (const bot of cluster.bots) if (bot.child.exitCode === null) bot.child.kill('SIGTERM');
      await Promise.all(
        cluster.bots.map((bot) =>
          Promise.race([bot.exited, new Promise((resolve) => setTimeout(resolve, 10_000))]),
        ),
      );
      for (const bot of cluster.bots) if (bot.child.exitCode === null) bot.child.kill('SIGKILL');
      await standin.close();
      await sandbox.close();
      await redis.close();
      // Whatever the test was about: no secret reached a log line or a Discord message.
      const everything =
        cluster.bots.map((bot) => bot.output()).join('') +
        standin.messages.map((message) => JSON.stringify(message.history)).join('');
      for (const secret of [API_KEY, BOT_TOKEN, REDIS_PASSWORD])
        assert.ok(!everything.includes(secret), `a secret (${secret.slice(0, 6)}…) leaked`);
    },
  };
  return cluster;
}

const user = (index: number): Actor => ({
  userId: String(810_000_000_000_000_000n + BigInt(index)),
  username: `user${index}`,
});

const rateLimited = (sandbox: Sandbox) => sandbox.requests.filter((request) => request.status === 429).length;

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
      { BOT_JOB_LOCK_MS: '2000', BOT_STALLED_CHECK_MS: '1000' },
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
  });
});
