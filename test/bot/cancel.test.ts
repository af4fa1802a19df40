import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InteractionRecord } from '../../bot/test-support/discord-standin/server.ts';
import { estimateStartMs, RECENT_JOBS, RecentJobs } from '../../bot/src/jobs/estimate.ts';
import { alice, bob, buttonIds, buttonLabels, manager, moderator, startWorld, type World } from './world.ts';

const carol = { userId: '800000000000000005', username: 'carol' };

/** The original reply once its content matches. */
function showing(world: World, record: InteractionRecord, pattern: RegExp, what: string) {
  return world.standin.waitFor(() => {
    const message = world.standin.original(record);
    return message && pattern.test(message.content) ? message : undefined;
  }, what);
}

describe('❌ Cancel under a waiting job', () => {
  it('the requester or a moderator takes it out of line, nothing billed; anyone else is refused privately; a job already sent cannot be cancelled', async () => {
    // One image at a time, each taking 1.5 s at the image service: the jobs behind wait in line.
    const world = await startWorld({ BOT_MAX_IN_FLIGHT: '1' }, { latencyMs: 1500 });
    try {
      const running = world.imagine(alice, { prompt: 'first in line' });
      await showing(world, running, /making/, 'the first job to start');
      const bobs = world.imagine(bob, { prompt: 'bob waits' });
      const alices = world.imagine(alice, { prompt: 'alice waits' });
      const bobsSecond = world.imagine(bob, { prompt: 'bob waits again' });
      const waiting = await showing(world, bobs, /queued, position \*\*1\*\*/, "bob's place in line");
      assert.deepEqual(buttonLabels(waiting), ['Cancel']);
      const cancel = buttonIds(waiting)[0]!;
      assert.ok(
        !buttonIds(world.standin.original(running)!).length,
        'a job out of line shows no Cancel button',
      );

      const refused = await world.privateReply(world.standin.clickButton(carol, waiting, cancel));
      assert.match(refused.content, /Only the person who asked for this job, or a moderator, can cancel it/);
      assert.match(world.standin.original(bobs)!.content, /queued/, 'still in line');

      world.standin.clickButton(moderator, waiting, cancel);
      const cancelled = await showing(world, bobs, /cancelled/, 'the cancelled message');
      assert.match(
        cancelled.content,
        /cancelled by <@800000000000000003> before it started; nothing was billed/,
      );
      assert.deepEqual(cancelled.components, [], 'no button left');

      const second = await showing(world, bobsSecond, /queued, position/, "bob's second job in line");
      world.standin.clickButton(bob, second, buttonIds(second)[0]!);
      const own = await showing(world, bobsSecond, /cancelled/, 'the cancelled message');
      assert.match(own.content, /bob waits again\*\* \u2014 cancelled before it started/);

      // Alice's second job leaves the line once the first is done: then it is sent and goes on.
      const queued = await showing(world, alices, /queued, position/, "alice's second job in line");
      const late = buttonIds(queued)[0]!;
      await showing(world, alices, /making/, "alice's second job to start");
      const tooLate = await world.privateReply(world.standin.clickButton(alice, queued, late));
      assert.match(
        tooLate.content,
        /already been sent to the image service, so it can no longer be cancelled/,
      );
      await world.result(alices);

      assert.deepEqual(
        world.sandbox.billed.map((call) => call.prompt),
        ['first in line', 'alice waits'],
        'only the jobs that ran were billed',
      );
      // A cancelled job's images do not count against the daily quota.
      const stored = await world.bot.context.store.get(/sdxl:cancel:(\w+)/.exec(cancel)![1]!);
      assert.equal(stored?.status, 'failed');
      assert.equal(stored?.error, 'cancelled');
    } finally {
      await world.close();
    }
  });
});

describe('the start estimate of a waiting job', () => {
  it('is left out until a job has finished, then shown from the durations of recent jobs', async () => {
    const world = await startWorld({ BOT_MAX_IN_FLIGHT: '1' }, { latencyMs: 800 });
    try {
      const first = world.imagine(alice, { prompt: 'nothing to go on yet' });
      const second = world.imagine(bob, { prompt: 'waits behind it' });
      const before = await showing(world, second, /queued, position/, 'the first place in line');
      assert.doesNotMatch(before.content, /<t:\d+:R>/, 'no estimate before any job finished');
      await world.result(first);
      await world.result(second);

      const asked = Date.now();
      const records = [alice, bob, moderator, manager].map((actor, n) =>
        world.imagine(actor, { prompt: `line ${n}` }),
      );
      const third = await showing(world, records[2]!, /<t:\d+:R>/, 'an estimate for the job at place 2');
      const startsAt = Number(/<t:(\d+):R>/.exec(third.content)![1]) * 1000;
      // Two jobs ahead, each about the 0.8 s the last ones took: it should start in a few seconds.
      assert.ok(startsAt > asked && startsAt < asked + 30_000, `${startsAt - asked} ms from the command`);
      for (const record of records) await world.result(record);
    } finally {
      await world.close();
    }
  });

  it('keeps a bounded window of recent jobs and reads capacity and pace', () => {
    const recent = new RecentJobs();
    for (let n = 0; n < 100; n++) recent.add({ ms: n < 80 ? 60_000 : 1_000, images: 1 });
    assert.equal(recent.list.length, RECENT_JOBS, 'only the last jobs are kept');
    const pace = { imageCapacity: 4, perWindow: 100, windowMs: 60_000 };
    assert.equal(estimateStartMs(1, [], pace), undefined, 'no data, no estimate');
    // The last 20 took 1 s each: four run at once, so place 5 waits two rounds less half of one.
    assert.equal(estimateStartMs(5, recent.list, pace), 1_500);
    // Four-image jobs take the whole capacity: one round each.
    assert.equal(estimateStartMs(2, [{ ms: 10_000, images: 4 }], pace), 15_000);
    // Five starts a minute: the eleventh waits two windows whatever the capacity.
    assert.equal(estimateStartMs(11, recent.list, { ...pace, perWindow: 5 }), 120_000);
  });
});
