import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import {
  shardOf,
  startDiscordStandin,
  type Actor,
  type DiscordStandin,
  type InteractionRecord,
} from '../../bot/test-support/discord-standin/server.ts';
import type { StandinMessage } from '../../bot/test-support/discord-standin/messages.ts';
import { skipWithoutRedis, startRedis, type TestRedis } from '../support/redis.ts';
import { startProcess, type BotProcess } from './cluster.ts';
import { API_KEY, BOT_TOKEN } from './world.ts';

const MAIN = new URL('../../bot/src/main.ts', import.meta.url).pathname;
const SHARDS = new URL('../../bot/src/shards.ts', import.meta.url).pathname;
const REDIS_PASSWORD = 'redis-secret-shards-do-not-leak-2718';

/** Guild ids as Discord makes them (a timestamp above bit 22): one lands on each of two shards. */
const guildOn = (shard: number) => String((1_300_000_000_000n + BigInt(shard)) << 22n);
const GUILDS = [0, 1].map((shard) => ({
  id: guildOn(shard),
  channels: [String((1_300_000_000_100n + BigInt(shard)) << 22n)],
}));

/** Resolves once `pattern` shows in what the process printed; rejects with its output if it exits first. */
async function printed(process: BotProcess, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(process.output());
    if (match) return match;
    if (process.child.exitCode !== null || Date.now() > deadline)
      throw new Error(`never printed ${pattern}:\n${process.output().slice(-3_000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const user = (index: number): Actor => ({
  userId: String(820_000_000_000_000_000n + BigInt(index)),
  username: `member${index}`,
});

describe('shards from npm run start:shards and a worker on one Redis', { skip: skipWithoutRedis }, () => {
  let redis: TestRedis;
  let sandbox: Sandbox;
  let standin: DiscordStandin;
  let manager: BotProcess;
  let worker: BotProcess;
  let env: Record<string, string>;
  /** Processes a test started of its own. */
  const others: BotProcess[] = [];
  before(async () => {
    redis = await startRedis({ password: REDIS_PASSWORD });
    sandbox = await startSandbox({ apiKey: API_KEY, latencyMs: 300 });
    // Discord recommends two shards for this bot, and lets sixteen sessions start at once (as it does
    // for large bots), so the shards start without discord.js's 5.5 s between them.
    standin = await startDiscordStandin({ token: BOT_TOKEN, guilds: GUILDS, shards: 2, maxConcurrency: 16 });
    env = {
      DISCORD_TOKEN: BOT_TOKEN,
      DISCORD_API_URL: standin.apiUrl,
      SDXL_API_KEY: API_KEY,
      SDXL_BASE_URL: sandbox.url,
      REDIS_URL: redis.url,
      BOT_REDIS_PREFIX: `test-${randomUUID()}`,
      BOT_REQUESTS_PER_MINUTE: '50',
      BOT_MAX_IN_FLIGHT: '2',
      LOG_LEVEL: 'debug',
    };
    manager = startProcess(SHARDS, { ...env, BOT_ROLE: 'gateway', BOT_SHARDS: 'auto' });
    worker = startProcess(MAIN, { ...env, BOT_ROLE: 'worker' });
    await Promise.all([
      printed(manager, /"msg":"every shard is ready"/),
      printed(worker, /"msg":"worker ready/),
    ]);
  });
  after(async () => {
    for (const started of [manager, worker, ...others])
      if (started?.child.exitCode === null) started.child.kill('SIGKILL');
    await standin?.close();
    await sandbox?.close();
    await redis?.close();
    // Whatever the test was about: no secret reached a log line or a Discord message.
    const everything =
      [manager, worker, ...others].map((started) => started?.output() ?? '').join('') +
      (standin?.messages.map((message) => JSON.stringify(message.history)).join('') ?? '');
    for (const secret of [API_KEY, BOT_TOKEN, REDIS_PASSWORD])
      assert.ok(!everything.includes(secret), `a secret (${secret.slice(0, 6)}…) leaked`);
  });

  it('start one shard per recommended shard, each with its own guilds, on glibc without re-executing', async () => {
    assert.deepEqual(
      GUILDS.map((guild) => shardOf(guild.id, 2)),
      [0, 1],
    );
    assert.deepEqual(
      [...standin.gatewayShards].sort(([a], [b]) => a - b),
      [
        [0, 2],
        [1, 2],
      ],
      'two sessions, identified as shard 0 and shard 1 of 2; the worker is not on the gateway',
    );
    const pids = [...manager.output().matchAll(/"shard":(\d),"pid":(\d+),"msg":"shard started"/g)].map(
      (match) => Number(match[2]),
    );
    assert.equal(pids.length, 2);
    if (process.platform === 'linux') {
      // The shards kept their IPC channel to the manager (it heard both were ready) and still run with
      // glibc's arenas capped, set by the manager rather than by a re-exec that would cut the channel.
      for (const pid of pids) {
        const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
        assert.ok(
          environ.includes('MALLOC_ARENA_MAX=2'),
          `shard process ${pid} runs with MALLOC_ARENA_MAX=2`,
        );
      }
    }
  });

  it('answer commands from guilds on both shards, with every job run by the worker and billed once', async () => {
    const records: InteractionRecord[] = [];
    for (const [index, guild] of GUILDS.entries())
      for (const take of [0, 1])
        records.push(
          standin.slash(
            { ...user(index * 10 + take), guildId: guild.id, channelId: guild.channels[0] },
            'imagine',
            { prompt: `a harbour on shard ${index}, take ${take}` },
          ),
        );
    const results = await Promise.all(
      records.map((record) =>
        standin.waitFor(() => {
          const message = standin.original(record);
          return message && message.attachments.length > 0 && !message.deleted ? message : undefined;
        }, 'a result'),
      ),
    );
    assert.equal(results.length, 4);
    assert.ok(
      records.every((record) => !record.missedAck),
      'every command acknowledged within 3 s',
    );
    assert.equal(sandbox.billed.length, 4, 'each job billed once');
    // The gateway shards took the commands, each its own guild's; only the worker ran them.
    const queued = [...manager.output().matchAll(/"shards":\[(\d)\].*"msg":"job queued"/g)].map((m) => m[1]);
    assert.deepEqual(queued.sort(), ['0', '0', '1', '1']);
    assert.doesNotMatch(manager.output(), /"msg":"job running"/);
    assert.equal((worker.output().match(/"msg":"job running"/g) ?? []).length, 4);

    // 🔄 on a result from the guild on shard 1: that shard takes the click, the worker makes it.
    const source = results[2]!;
    const reroll = /"custom_id":"(sdxl:reroll:[^"]+)"/.exec(JSON.stringify(source.components))?.[1];
    assert.ok(reroll, 'the result has a 🔄 button');
    const click = standin.clickButton(
      { ...user(10), guildId: GUILDS[1]!.id, channelId: GUILDS[1]!.channels[0] },
      source,
      reroll,
    );
    await standin.waitFor(() => {
      const followUps = [click.originalMessageId, ...click.followupIds].map(
        (id) => id && standin.message(id),
      );
      return followUps.some((message) => message && message.attachments.length > 0);
    }, 'the 🔄 result');
    assert.equal(sandbox.billed.length, 5);
  });

  it('post in the channel when the job outlives its interaction token, from the worker that never joined the gateway', async () => {
    const guild = GUILDS[0]!;
    const channelId = guild.channels[0]!;
    sandbox.configure({ latencyMs: 1_500 });
    try {
      const record = standin.slash({ ...user(5), guildId: guild.id, channelId }, 'imagine', {
        prompt: 'a lighthouse after dark',
      });
      await standin.waitFor(() => record.callbacks.length > 0, 'the acknowledgement');
      standin.expireToken(record);
      const posted: StandinMessage = await standin.waitFor(
        () =>
          standin.messages.find(
            (message) =>
              message.channelId === channelId &&
              !message.interactionToken &&
              message.attachments.length > 0 &&
              JSON.stringify(message.components).includes(`<@${user(5).userId}>`),
          ),
        'the result posted in the channel',
      );
      assert.ok(posted.attachments.length > 0);
      await printed(worker, /"posted":"posted","msg":"job done"/, 30_000);
      // The old reply links to it, in its guild (not as a direct message: the worker has no guild cache).
      const reply = await standin.waitFor(
        () => standin.original(record)?.content.includes('posted in the channel') && standin.original(record),
        'the old reply to link to the result',
      );
      assert.ok(
        reply.content.endsWith(`https://discord.com/channels/${guild.id}/${channelId}/${posted.id}`),
        reply.content,
      );
    } finally {
      sandbox.configure({ latencyMs: 300 });
    }
  });

  it('have a gateway show a waiting job its place and take it out of line on ❌ Cancel; the worker never sends it', async () => {
    sandbox.configure({ latencyMs: 2_000 });
    try {
      const [first, second] = GUILDS as [(typeof GUILDS)[0], (typeof GUILDS)[0]];
      const running = (worker.output().match(/"msg":"job running"/g) ?? []).length;
      const billed = sandbox.billed.length;
      // Two images fill BOT_MAX_IN_FLIGHT: the next job waits in line.
      const busy = standin.slash(
        { ...user(30), guildId: first.id, channelId: first.channels[0] },
        'imagine',
        {
          prompt: 'a crowded quay',
          samples: 2,
        },
      );
      await printed(worker, new RegExp(`("msg":"job running"[^]*){${running + 1}}`), 30_000);
      const requester = { ...user(31), guildId: second.id, channelId: second.channels[0] };
      const waiting = standin.slash(requester, 'imagine', { prompt: 'an empty pier' });
      const shown = await standin.waitFor(() => {
        const message = standin.original(waiting);
        return message && /queued, position \*\*1\*\*/.test(message.content) ? message : undefined;
      }, 'the waiting job to show its place');
      // With when it should start, estimated from the jobs the worker finished: the gateway made none.
      assert.match(shown.content, /It should start <t:\d+:R> \(estimated from the last jobs\)/);
      const cancel = /"custom_id":"(sdxl:cancel:[^"]+)"/.exec(JSON.stringify(shown.components))?.[1];
      assert.ok(cancel, 'a waiting job has ❌ Cancel');
      standin.clickButton(requester, shown, cancel);
      await standin.waitFor(
        () =>
          /cancelled before it started; nothing was billed/.test(standin.original(waiting)?.content ?? ''),
        'the job to say it was cancelled',
      );
      await standin.waitFor(() => (standin.original(busy)?.attachments.length ?? 0) > 0, 'the first result');
      assert.equal(sandbox.billed.length, billed + 1, 'the cancelled job was never sent');
      assert.equal((worker.output().match(/"msg":"job running"/g) ?? []).length, running + 1);
    } finally {
      sandbox.configure({ latencyMs: 300 });
    }
  });

  it('refuse a token Discord does not take, as a worker and as shards, in one line naming DISCORD_TOKEN', async () => {
    for (const [script, role] of [
      [MAIN, 'worker'],
      [SHARDS, 'gateway'],
    ] as const) {
      const refused = startProcess(script, {
        ...env,
        DISCORD_TOKEN: 'not-the-bot-token-31415',
        BOT_ROLE: role,
        LOG_LEVEL: 'silent',
      });
      others.push(refused);
      assert.equal(await refused.exited, 2);
      assert.match(refused.output(), /^Could not start: DISCORD_TOKEN: Discord refused the token/m);
      assert.doesNotMatch(refused.output(), /^\s+at /m, 'no stack trace');
    }
  });

  it('stop every shard when the manager gets SIGTERM, leaving no process behind', async () => {
    const pids = [...manager.output().matchAll(/"pid":(\d+),"msg":"shard started"/g)].map((match) =>
      Number(match[1]),
    );
    assert.ok(pids.every(alive));
    manager.child.kill('SIGTERM');
    assert.equal(await manager.exited, 0);
    assert.deepEqual(pids.filter(alive), [], 'no shard outlived its manager');
    assert.equal((manager.output().match(/"msg":"stopped"/g) ?? []).length, 2, 'each shard stopped cleanly');
    // A gateway keeps nothing of a job once a worker has taken it: each shard stops holding no job.
    assert.deepEqual(
      [...manager.output().matchAll(/"jobs":(\d+),"msg":"stopping: finishing the jobs in flight"/g)].map(
        (match) => Number(match[1]),
      ),
      [0, 0],
    );
    worker.child.kill('SIGTERM');
    assert.equal(await worker.exited, 0);
  });

  it('have a gateway with no worker on its Redis say so in the log, once, while the jobs wait', async () => {
    // A line of its own (another prefix), so no later worker runs the jobs it leaves waiting.
    const gateway = startProcess(MAIN, {
      ...env,
      BOT_ROLE: 'gateway',
      BOT_REDIS_PREFIX: `test-${randomUUID()}`,
    });
    others.push(gateway);
    await printed(gateway, /"msg":"logged in to Discord"/);
    const guild = GUILDS[0]!;
    const records = [41, 42].map((index) =>
      standin.slash({ ...user(index), guildId: guild.id, channelId: guild.channels[0] }, 'imagine', {
        prompt: 'a quiet dock',
      }),
    );
    await printed(gateway, /"msg":"no process runs jobs on this Redis: start one with BOT_ROLE=worker/);
    await standin.waitFor(
      () => records.every((record) => record.callbacks.length > 0),
      'the acknowledgements',
    );
    await printed(gateway, /("msg":"job queued"[^]*){2}/);
    assert.equal((gateway.output().match(/no process runs jobs/g) ?? []).length, 1);
    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exited, 0);
  });

  it('have a worker killed while it runs a job leave it to another worker, which resumes it, billed once', async () => {
    // Short claims so the job moves on within seconds of the kill (30 s + 15 s by default).
    const quick = { ...env, BOT_JOB_LOCK_MS: '3000', BOT_STALLED_CHECK_MS: '1000' };
    const gateway = startProcess(MAIN, { ...quick, BOT_ROLE: 'gateway' });
    const workers = [
      startProcess(MAIN, { ...quick, BOT_ROLE: 'worker' }),
      startProcess(MAIN, { ...quick, BOT_ROLE: 'worker' }),
    ];
    others.push(gateway, ...workers);
    sandbox.configure({ latencyMs: 4_000 });
    try {
      await Promise.all([
        printed(gateway, /"msg":"logged in to Discord"/),
        ...workers.map((started) => printed(started, /"msg":"worker ready/)),
      ]);
      const guild = GUILDS[1]!;
      const billed = sandbox.billed.length;
      const record = standin.slash(
        { ...user(50), guildId: guild.id, channelId: guild.channels[0] },
        'imagine',
        {
          prompt: 'a lighthouse in a gale',
        },
      );
      // Killed once the sandbox has its request (billed from then on, its id stored) and still works on it.
      const running = await Promise.race(
        workers.map((started) => printed(started, /"msg":"job running"/).then(() => started)),
      );
      const jobId = /"jobId":"(\w+)","msg":"job running"/.exec(running.output())![1];
      const redisClient = new Redis(redis.url);
      try {
        const deadline = Date.now() + 30_000;
        while (!(await redisClient.hget(`${env.BOT_REDIS_PREFIX}:job:${jobId}`, 'requestId'))) {
          assert.ok(Date.now() < deadline, 'the job was submitted within 30 s');
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      } finally {
        redisClient.disconnect();
      }
      assert.equal(sandbox.billed.length, billed, 'killed while the sandbox works on it');
      running.child.kill('SIGKILL');
      await running.exited;
      const result = await standin.waitFor(
        () => (standin.original(record)?.attachments.length ?? 0) > 0 && standin.original(record),
        'the result, from the other worker',
      );
      assert.ok(result);
      const survivor = workers.find((started) => started !== running)!;
      assert.match(survivor.output(), /"msg":"resuming a submitted job"/);
      assert.equal(sandbox.billed.length, billed + 1, 'billed once: resumed, not sent again');
      for (const started of [gateway, survivor]) started.child.kill('SIGTERM');
      assert.deepEqual(await Promise.all([gateway.exited, survivor.exited]), [0, 0]);
    } finally {
      sandbox.configure({ latencyMs: 300 });
    }
  });

  it('start a shard that crashed again, and stop every shard when the manager is killed outright (SIGKILL)', async () => {
    const again = startProcess(SHARDS, { ...env, BOT_ROLE: 'gateway', BOT_SHARDS: '2' });
    others.push(again);
    const started = () =>
      [...again.output().matchAll(/"pid":(\d+),"msg":"shard started"/g)].map((match) => Number(match[1]));
    try {
      await printed(again, /"msg":"every shard is ready"/);
      const [crashed] = started();
      process.kill(crashed!, 'SIGKILL');
      await printed(
        again,
        /"shard":0,"code":null,"signal":"SIGKILL","msg":"shard exited; starting it again"/,
      );
      await printed(again, /("msg":"shard ready"[^]*){3}/);
      const pids = started().slice(1);
      assert.equal(pids.length, 2);
      assert.ok(!pids.includes(crashed!));
      await standin.waitForGateway(30_000, 2);
      again.child.kill('SIGKILL');
      await again.exited;
      const deadline = Date.now() + 30_000;
      while (pids.some(alive) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(pids.filter(alive), [], 'no shard outlived its manager');
      assert.equal((again.output().match(/"signal":"parent gone"/g) ?? []).length, 2);
    } finally {
      if (again.child.exitCode === null) again.child.kill('SIGKILL');
    }
  });
});

describe('refusals name the variable, the value and what is allowed', () => {
  const base = {
    DISCORD_TOKEN: BOT_TOKEN,
    // A sandbox address on this machine: no key needed, and nothing is called before the refusal.
    SDXL_BASE_URL: 'http://127.0.0.1:9/v1',
    LOG_LEVEL: 'silent',
  };
  const refused = async (script: string, env: Record<string, string>) => {
    const started = startProcess(script, { ...base, ...env });
    const code = await started.exited;
    assert.doesNotMatch(started.output(), /^\s+at /m, 'no stack trace');
    assert.ok(!started.output().includes(BOT_TOKEN), 'the token is never printed');
    return { code, output: started.output() };
  };

  it('shards without REDIS_URL, a shard count that is not one, a worker as a shard', async () => {
    const noRedis = await refused(SHARDS, { BOT_SHARDS: '2' });
    assert.equal(noRedis.code, 2);
    assert.match(noRedis.output, /^Configuration error: REDIS_URL: required to run shards/);
    assert.equal(noRedis.output.trim().split('\n').length, 2, 'one line, and where to read about variables');
    const count = await refused(SHARDS, { BOT_SHARDS: 'lots', REDIS_URL: 'redis://127.0.0.1:9' });
    assert.equal(count.code, 2);
    assert.match(count.output, /BOT_SHARDS: "lots" is not allowed; allowed: auto .* or a whole number/);
    const asWorker = await refused(SHARDS, { BOT_ROLE: 'worker', REDIS_URL: 'redis://127.0.0.1:9' });
    assert.equal(asWorker.code, 2);
    assert.match(asWorker.output, /BOT_ROLE: "worker" is not allowed for shards/);
  });

  it('a role that is not one, and a worker or gateway role without REDIS_URL', async () => {
    const unknown = await refused(MAIN, { BOT_ROLE: 'janitor' });
    assert.equal(unknown.code, 2);
    assert.match(unknown.output, /BOT_ROLE: "janitor" is not allowed; allowed: all, gateway, worker/);
    for (const role of ['worker', 'gateway']) {
      const alone = await refused(MAIN, { BOT_ROLE: role });
      assert.equal(alone.code, 2);
      assert.match(alone.output, new RegExp(`REDIS_URL: required with BOT_ROLE=${role}`));
    }
  });
});
