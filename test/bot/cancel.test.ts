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

  it("plays the line forward: images in flight, each waiting job's size, the pace; a bounded window of recent jobs", () => {
    const recent = new RecentJobs();
    for (let n = 0; n < 100; n++) recent.add({ ms: n < 80 ? 60_000 : 1_000, images: 1 });
    assert.equal(recent.list.length, RECENT_JOBS, 'only the last jobs are kept');
    const pace = { imageCapacity: 4, perWindow: 100, windowMs: 60_000 };
    const now = 1_000_000;
    const line = (
      waiting: number[],
      images: number,
      running: { images: number; startedAt?: number }[] = [{ images: 1, startedAt: now }],
    ) => ({
      running,
      waiting,
      images,
    });
    assert.equal(estimateStartMs(line([], 1), [], pace, now), undefined, 'no data, no estimate');
    // After a one-image job, three four-image jobs: each waits for the whole capacity, one after the other.
    const mixed = [
      { ms: 2_000, images: 1 },
      { ms: 8_000, images: 4 },
    ];
    assert.equal(estimateStartMs(line([], 4), mixed, pace, now), 2_000);
    assert.equal(estimateStartMs(line([4], 4), mixed, pace, now), 10_000);
    assert.equal(estimateStartMs(line([4, 4], 4), mixed, pace, now), 18_000);
    // One-image jobs behind a four-image one start together once it ends; a four-image job waits for both.
    assert.equal(estimateStartMs(line([4, 1], 1), mixed, pace, now), 10_000);
    assert.equal(estimateStartMs(line([4, 1, 1], 4), mixed, pace, now), 12_000);
    // A running job started 1.5 s ago has 0.5 s left; one whose start is unknown is taken half done.
    assert.equal(
      estimateStartMs(line([], 4, [{ images: 1, startedAt: now - 1_500 }]), mixed, pace, now),
      500,
    );
    assert.equal(estimateStartMs(line([], 4, [{ images: 4 }]), mixed, pace, now), 4_000);
    // Five starts a minute: the eleventh waits two windows whatever the capacity.
    const wide = { imageCapacity: 100, perWindow: 5, windowMs: 60_000 };
    assert.equal(estimateStartMs(line(Array(10).fill(1), 1, []), recent.list, wide, now), 120_000);
  });

  it('tells a mix of 1- and 4-image jobs when each starts, within 25% of when it does', async () => {
    // Long jobs, so that what a loaded machine adds to each (its share of the 25%) stays small.
    const world = await startWorld({ BOT_MAX_IN_FLIGHT: '4' }, { latencyMs: 4_000 });
    try {
      // Something to go on: how long a one-image and a four-image job take here (the first job after
      // the start is slower; the estimate's median leaves it out).
      for (const samples of [1, 4, 1, 1]) {
        await world.result(world.imagine(alice, { prompt: `warm up ${samples}`, samples }));
      }

      const fifth = { userId: '800000000000000005', username: 'fifth' };
      const jobs = [
        { actor: alice, prompt: 'runs first', samples: 1 },
        { actor: bob, prompt: 'four behind one', samples: 4 },
        { actor: moderator, prompt: 'one behind four', samples: 1 },
        { actor: manager, prompt: 'another one', samples: 1 },
        { actor: fifth, prompt: 'four behind two ones', samples: 4 },
      ].map((job) => ({
        ...job,
        record: world.imagine(job.actor, { prompt: job.prompt, samples: job.samples }),
      }));
      for (const job of jobs) await world.result(job.record, 60_000);

      for (const job of jobs.slice(1)) {
        // The real start: when its request reached the image service.
        const submit = world.sandbox.requests.find(
          (request) =>
            request.method === 'POST' &&
            (request.body as { prompt?: string } | undefined)?.prompt === job.prompt,
        );
        assert.ok(submit, `${job.prompt} was sent`);
        const waited = submit.receivedAt - job.record.dispatchedAt;
        const estimates = world.standin
          .original(job.record)!
          .history.map((state) => /<t:(\d+):R>/.exec(state.content)?.[1])
          .filter((seconds): seconds is string => seconds !== undefined)
          .map(Number);
        assert.ok(estimates.length > 0, `${job.prompt} was told when it should start`);
        for (const seconds of estimates) {
          // Discord shows whole seconds (rounded up): the estimate lies in the second before.
          const low = seconds * 1000 - 1000;
          const high = seconds * 1000;
          const off = Math.max(0, low - submit.receivedAt, submit.receivedAt - high);
          assert.ok(
            off <= waited * 0.25,
            `${job.prompt}: told <t:${seconds}:R>, started ${off} ms outside it after waiting ${waited} ms`,
          );
        }
      }
    } finally {
      await world.close();
    }
  });
});
