// A server budget held across two bot processes on one Redis: a burst never spends past it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { skipWithoutRedis } from '../support/redis.ts';
import { startCluster, user, type Cluster } from './cluster.ts';
import { ADMIN_CHANNEL, CHANNEL, GUILD, manager } from './world.ts';

describe('a server budget across two bot processes on one Redis', { skip: skipWithoutRedis }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(
      {
        // Ten images at the published 0.00798 (the sandbox bills 0.008): 0.08 credits a day.
        BOT_BUDGET_SERVER_DAY: '0.08',
        BOT_REQUESTS_PER_MINUTE: '100',
        BOT_MAX_IN_FLIGHT: '4',
      },
      { latencyMs: 200 },
    );
  });
  after(() => cluster?.close());

  it('a burst of 50 commands: at most 10 images billed, every refusal private and naming the budget, one 80% and one 100% notice, spent as billed', async () => {
    const records = Array.from({ length: 50 }, (_, index) =>
      cluster.imagine(user(index), { prompt: `a lantern, take ${index}` }),
    );
    const outcomes = await Promise.all(records.map((record) => cluster.outcome(record, 60_000)));
    const results = outcomes.filter((outcome) => outcome === 'result').length;
    assert.equal(results, 10, 'ten jobs fit the budget');
    assert.equal(cluster.sandbox.billed.length, 10, 'ten images billed, no more');
    records.forEach((record, index) => {
      if (outcomes[index] === 'result') return;
      assert.match(
        outcomes[index]!,
        /does not fit this server’s daily budget: [\d.]+ of 0\.08 credits spent.*It resets <t:\d+:R>\. Nothing was queued or billed\./,
      );
      const shown = [record.originalMessageId, ...record.followupIds]
        .map((id) => id && cluster.standin.message(id))
        .filter((message) => message && !message.deleted && !message.ephemeral);
      assert.deepEqual(shown, [], `refusal ${index} showed nothing public`);
    });
    const admin = () => cluster.standin.messages.filter((message) => message.channelId === ADMIN_CHANNEL);
    // Both notices, in either order: the process that claims the 80% notice may still be posting it
    // when another, refused a job, claims and posts the used-up one.
    await cluster.standin.waitFor(
      () =>
        admin().some((message) => /used up/.test(message.content)) &&
        admin().some((message) => /is \d+% spent:/.test(message.content)),
      'the 80% and the budget-full notices',
    );
    assert.equal(
      admin().filter((message) => /is \d+% spent:/.test(message.content)).length,
      1,
      'one 80% notice',
    );
    assert.equal(admin().filter((message) => /used up/.test(message.content)).length, 1, 'one 100% notice');
    // The stand-in hands the commands to the two processes in turn: each kept to the holds of both,
    // else each could have let ten through.
    const handled = cluster.bots.map(
      (bot) => (bot.output().match(/"msg":"job queued"|"code":"budget"[^\n]*"msg":"refused"/g) ?? []).length,
    );
    assert.ok(handled.every((count) => count > 0) && handled[0]! + handled[1]! === 50, `shares ${handled}`);

    const report = cluster.standin.slash(
      { guildId: GUILD, channelId: CHANNEL, ...manager },
      'sdxl-admin',
      {},
      'budget',
    );
    const reply = await cluster.outcome(report);
    const spent = Number(
      /\*\*This server’s daily budget\*\*: ([\d.]+) of 0\.08 credits spent/.exec(reply)?.[1],
    );
    const billed =
      Math.round(cluster.sandbox.billed.reduce((total, call) => total + call.cost, 0) * 1e6) / 1e6;
    assert.equal(spent, billed, `the spent the bot reports (${reply})`);
  });
});
