import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { InteractionRecord } from '../../bot/test-support/discord-standin/server.ts';
import { skipWithoutRedis } from '../support/redis.ts';
import {
  eventually,
  metricValue,
  operatorGet,
  operatorPort,
  startCluster,
  user,
  type BotProcess,
  type Cluster,
} from './cluster.ts';
import { button, buttonIds, CHANNEL, GUILD } from './world.ts';

/**
 * Copies of the bot logged in as the same shard, as `npm start` N times runs them: Discord (here the
 * stand-in, delivering to every session) gives every interaction to every copy.
 */

/** Log lines at error level or above (pino: error 50, fatal 60), from every copy that ran. */
function errorLines(cluster: Cluster): string[] {
  return cluster.bots.flatMap((bot) =>
    bot
      .output()
      .split('\n')
      .filter((line) => /"level":(50|60)/.test(line)),
  );
}

/** Interactions not answered exactly once: each went to every copy, one answered, none was refused. */
function notAnsweredOnce(records: InteractionRecord[], copies: number): string[] {
  return records.flatMap((record) =>
    record.deliveredTo === copies && record.callbacks.length === 1 && record.refusedCallbacks === 0
      ? []
      : [
          `interaction ${record.id} (type ${record.type}): delivered to ${record.deliveredTo}, ${record.callbacks.length} answers, ${record.refusedCallbacks} refused`,
        ],
  );
}

/** The original reply once its content matches. */
function showing(cluster: Cluster, record: InteractionRecord, pattern: RegExp, what: string) {
  return cluster.standin.waitFor(() => {
    const message = cluster.standin.original(record);
    return message && pattern.test(message.content) ? message : undefined;
  }, what);
}

const count = (bot: BotProcess, msg: string) =>
  (bot.output().match(new RegExp(`"msg":"${msg}"`, 'g')) ?? []).length;

/** Every command and click a member can make on a result, through copies that all receive each one. */
async function everyInteraction(cluster: Cluster): Promise<InteractionRecord[]> {
  const records: InteractionRecord[] = [];
  const track = (record: InteractionRecord) => (records.push(record), record);
  const commands = Array.from({ length: 6 }, (_, index) =>
    track(cluster.imagine(user(500 + index), { prompt: `a kite, take ${index}`, samples: 2 })),
  );
  const outcomes = await Promise.all(commands.map((record) => cluster.outcome(record)));
  assert.deepEqual(outcomes, Array(6).fill('result'), 'every /imagine posted its result');
  const member = user(500);
  const grid = cluster.standin.original(commands[0]!)!;
  const clicks = ['U1', 'V2', 'New seed'].map((label) =>
    track(cluster.standin.clickButton(member, grid, button(grid, label))),
  );
  assert.deepEqual(
    await Promise.all(clicks.map((record) => cluster.outcome(record))),
    ['result', 'result', 'result'],
    'U1, V2 and New seed each posted their result',
  );
  const full = cluster.standin.original(clicks[0]!)!;
  const upscale = track(cluster.standin.clickButton(member, full, button(full, 'Upscale 2x')));
  const subtle = track(cluster.standin.clickButton(member, full, button(full, 'Vary (Subtle)')));
  assert.equal(await cluster.outcome(upscale), 'result');
  assert.equal(await cluster.outcome(subtle), 'result');
  const info = track(cluster.standin.clickButton(member, grid, button(grid, 'Parameters')));
  assert.match(await cluster.outcome(info), /seed/i, 'ℹ️ answered privately');
  const edit = track(cluster.standin.clickButton(member, grid, button(grid, 'Edit prompt')));
  const modal = await cluster.standin.waitFor(
    () => edit.callbacks.find((callback) => callback.type === 9),
    'the edit form',
  );
  const edited = track(
    cluster.standin.submitModal(member, String(modal.data?.custom_id), { prompt: 'a red kite' }, grid),
  );
  assert.equal(await cluster.outcome(edited), 'result', 'the edited prompt posted its result');
  const settings = track(
    cluster.standin.slash({ ...member, guildId: GUILD, channelId: CHANNEL }, 'settings', { steps: 30 }),
  );
  assert.match(await cluster.outcome(settings), /steps/i, '/settings answered privately');
  const choices = await cluster.standin.autocomplete(member, 'imagine', 'scheduler', { prompt: 'x' });
  assert.ok(choices.length > 0, 'autocomplete answered');
  records.push(
    [...cluster.standin.interactions.values()].find(
      (record) => record.type === 4 && !records.includes(record),
    )!,
  );
  const other = cluster.standin.original(commands[1]!)!;
  const remove = track(cluster.standin.clickButton(user(501), other, button(other, 'Delete')));
  await cluster.standin.waitFor(() => other.deleted, 'the deleted result');
  await cluster.standin.waitFor(() => remove.callbacks.length > 0, 'the delete click answered');
  return records;
}

describe('two copies of the bot, each receiving every interaction', { skip: skipWithoutRedis }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(
      { BOT_REQUESTS_PER_MINUTE: '600', BOT_MAX_IN_FLIGHT: '4', BOT_USER_QUEUE_LIMIT: '5' },
      { latencyMs: 200 },
      { delivery: 'every-session' },
    );
  });
  after(() => cluster?.close());

  it('answer every command and click once, bill each job once, and log nothing at error level', async () => {
    const records = await everyInteraction(cluster);
    assert.deepEqual(notAnsweredOnce(records, 2), [], 'every interaction answered once');
    // 6 commands, U1 (no call), V2, New seed, Upscale 2x, Vary (Subtle), the edited prompt.
    assert.equal(cluster.sandbox.billed.length, 11, 'each job billed once');
    assert.deepEqual(
      cluster.bots.map((bot) => count(bot, 'answered by another copy') > 0),
      [true, true],
      'each copy left some interactions to the other',
    );
    assert.deepEqual(errorLines(cluster), []);
  });

  it('cancels a waiting job through either copy, and the copy that answers says what really happened', async () => {
    cluster.sandbox.configure({ latencyMs: 5_000 });
    try {
      // Four images at once: the first job (four images) runs, the others wait behind it, one by one.
      const running = cluster.imagine(user(600), { prompt: 'a tall ship', samples: 4 });
      await showing(cluster, running, /making/, 'the first job to start');
      const late = cluster.imagine(user(620), { prompt: 'a rowing boat', samples: 4 });
      const queued = await showing(cluster, late, /queued, position/, 'a job waiting in line');
      const lateCancel = buttonIds(queued)[0]!;
      const waiting = [0, 1].map((index) =>
        cluster.imagine(user(610 + index), { prompt: `a dinghy, take ${index}`, samples: 4 }),
      );
      const clicks: InteractionRecord[] = [];
      for (const [index, record] of waiting.entries()) {
        const message = await showing(cluster, record, /queued, position/, 'a job waiting in line');
        // The other copy is stopped while the click goes out, so this copy claims it: each copy cancels one.
        const paused = cluster.bots[1 - index]!;
        paused.child.kill('SIGSTOP');
        try {
          const click = cluster.standin.clickButton(user(610 + index), message, buttonIds(message)[0]!);
          clicks.push(click);
          await showing(cluster, record, /cancelled/, 'the cancelled message');
        } finally {
          paused.child.kill('SIGCONT');
        }
      }
      for (const [index, record] of waiting.entries()) {
        const message = cluster.standin.original(record)!;
        assert.match(message.content, /cancelled before it started; nothing was billed/);
        assert.deepEqual(message.components, [], 'no Cancel button left');
        // The copy logs the cancel once the message says so.
        await eventually(
          () =>
            cluster.bots[index]!.output().includes(
              `"by":"${user(610 + index).userId}","msg":"job cancelled"`,
            ),
          `copy ${index} to cancel job ${index}`,
        );
      }
      // A job's old ❌ from when it waited, clicked once it started: whichever copy claims it says so.
      await showing(cluster, late, /making/, 'the job to start');
      const tooLate = cluster.standin.clickButton(user(620), queued, lateCancel);
      clicks.push(tooLate);
      assert.match(await cluster.outcome(tooLate), /already been sent to the image service/);
      assert.equal(await cluster.outcome(running, 30_000), 'result');
      assert.equal(await cluster.outcome(late, 30_000), 'result');
      assert.deepEqual(notAnsweredOnce(clicks, 2), [], 'every click answered once');
      const prompts = cluster.sandbox.billed.map((call) => String(call.prompt ?? ''));
      assert.ok(!prompts.some((prompt) => prompt.startsWith('a dinghy')), 'nothing cancelled was billed');
      assert.deepEqual(errorLines(cluster), []);
    } finally {
      cluster.sandbox.configure({ latencyMs: 200 });
    }
  });
});

describe('three copies of the bot, each receiving every interaction', { skip: skipWithoutRedis }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(
      { BOT_REQUESTS_PER_MINUTE: '600', BOT_MAX_IN_FLIGHT: '4', BOT_USER_QUEUE_LIMIT: '5' },
      { latencyMs: 200 },
      { copies: 3, delivery: 'every-session' },
    );
  });
  after(() => cluster?.close());

  it('answer every command and click once, bill each job once, and log nothing at error level', async () => {
    const records = await everyInteraction(cluster);
    assert.deepEqual(notAnsweredOnce(records, 3), [], 'every interaction answered once');
    assert.equal(cluster.sandbox.billed.length, 11, 'each job billed once');
    assert.deepEqual(errorLines(cluster), []);
  });
});

describe('a rolling restart of two copies while members type', { skip: skipWithoutRedis }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(
      {
        BOT_REQUESTS_PER_MINUTE: '600',
        BOT_MAX_IN_FLIGHT: '4',
        BOT_USER_QUEUE_LIMIT: '5',
        // Each copy serves health and metrics on a free port of its own.
        BOT_HTTP_PORT: '0',
      },
      { latencyMs: 300 },
      { delivery: 'every-session' },
    );
  });
  after(() => cluster?.close());

  it('loses no command: each copy restarted in turn, every command answered once and posted; health says when to route', async () => {
    const records: InteractionRecord[] = [];
    let typed = 0;
    // Members type at their own pace, about three commands a second, through both restarts.
    const typing = setInterval(() => {
      records.push(cluster.imagine(user(700 + (typed % 40)), { prompt: `a lantern, take ${typed}` }));
      typed++;
    }, 350);
    const scrapes: string[] = [];
    try {
      const copies = [...cluster.bots];
      const ports = await Promise.all(copies.map((bot) => operatorPort(bot)));
      for (const index of [0, 1]) {
        const old = copies[index]!;
        // Commands are arriving when this copy is told to stop.
        const typedBefore = records.length;
        await eventually(() => records.length >= typedBefore + 4, 'members typing');
        for (const port of ports) {
          const metrics = await operatorGet(port, '/metrics');
          assert.equal(metrics?.status, 200);
          assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
          scrapes.push(metrics.body);
        }
        assert.deepEqual(await health(ports[index]!), 'ready');
        old.child.kill('SIGTERM');
        // From the signal until it exits, the stopping copy never says it is ready again.
        const said: string[] = [];
        while (old.child.exitCode === null) {
          const status = await health(ports[index]!);
          if (status && said.at(-1) !== status) said.push(status);
        }
        assert.equal(await old.exited, 0, 'the copy stopped cleanly');
        assert.ok(said.includes('draining'), `the stopping copy said it was draining: ${said.join(', ')}`);
        assert.deepEqual(said.slice(said.indexOf('draining')), ['draining'], 'and nothing else after');
        const fresh = cluster.spawnBot();
        cluster.bots.push(fresh);
        copies[index] = fresh;
        ports[index] = await operatorPort(fresh);
        await eventually(
          async () => (await health(ports[index]!)) === 'ready',
          'the new copy to be ready',
          60_000,
        );
      }
      const after = records.length;
      await eventually(() => records.length >= after + 4, 'members typing after the restarts');
    } finally {
      clearInterval(typing);
    }
    // A command that ends without an answer is named with what its member saw.
    const outcomes = await Promise.all(
      records.map((record) =>
        cluster
          .outcome(record, 120_000)
          .catch(
            () =>
              `no result: ${record.callbacks.length} answers, ${record.refusedCallbacks} refused, showing "${cluster.standin.original(record)?.content.slice(0, 80) ?? '(nothing)'}"`,
          ),
      ),
    );
    assert.deepEqual(
      outcomes.flatMap((outcome, index) => (outcome === 'result' ? [] : [`command ${index}: ${outcome}`])),
      [],
      'every command typed during the restarts posted its result',
    );
    assert.deepEqual(
      records.flatMap((record, index) =>
        record.callbacks.length === 1 && record.refusedCallbacks === 0 ? [] : [`command ${index}`],
      ),
      [],
      'every command answered once',
    );
    const prompts = cluster.sandbox.billed.map((call) => String(call.prompt ?? ''));
    assert.equal(prompts.length, records.length, 'each command billed once');
    assert.equal(new Set(prompts).size, records.length);
    // Every scrape, from each copy while members typed: no job failed, no 429 from the image service.
    for (const text of scrapes) {
      assert.ok(metricValue(text, 'sdxl_bot_jobs_finished_total') !== undefined, 'finished jobs counted');
      assert.equal(metricValue(text, 'sdxl_bot_jobs_failed_total') ?? 0, 0);
      assert.equal(metricValue(text, 'sdxl_bot_rate_limited_total', 'source="segmind"'), 0);
      assert.ok(metricValue(text, 'sdxl_bot_jobs_waiting') !== undefined);
    }
    assert.ok(
      scrapes.some((text) => (metricValue(text, 'sdxl_bot_jobs_finished_total') ?? 0) > 0),
      'the copies had finished jobs when scraped',
    );
    assert.deepEqual(errorLines(cluster), []);
  });
});

/** What a copy's health check says, or undefined when nothing answers (it exited). */
async function health(port: number): Promise<string | undefined> {
  const answer = await operatorGet(port, '/health');
  if (!answer) return undefined;
  const { status } = JSON.parse(answer.body) as { status: string };
  assert.equal(answer.status, status === 'ready' ? 200 : 503, `HTTP status for ${status}`);
  return status;
}
