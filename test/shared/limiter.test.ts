import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestLimiter } from '@sdxl-kit/client/core';

/** A virtual clock: sleeping moves time forward instead of waiting, and every wait is recorded. */
function virtualClock() {
  let time = 0;
  const waits: number[] = [];
  return {
    waits,
    now: () => time,
    sleep: async (ms: number, signal?: AbortSignal) => {
      if (signal?.aborted) throw new Error('aborted');
      waits.push(ms);
      await Promise.resolve();
      time += ms;
    },
  };
}

describe('request limiter', () => {
  it('starts no more than requestsPerMinute in any window, waiting the rest out in order', async () => {
    const clock = virtualClock();
    const limiter = new RequestLimiter({ requestsPerMinute: 5, maxInFlight: 10, ...clock });
    const starts: Array<[index: number, time: number]> = [];
    await Promise.all(
      Array.from({ length: 12 }, (_, index) =>
        limiter.run(async () => void starts.push([index, clock.now()])),
      ),
    );
    assert.deepEqual(
      starts.map(([index]) => index),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
      'first come, first served',
    );
    const times = starts.map(([, time]) => time);
    for (let i = 5; i < times.length; i++) {
      assert.ok(
        times[i]! - times[i - 5]! >= 60_000,
        `request ${i} started ${times[i]! - times[i - 5]!} ms after request ${i - 5}`,
      );
    }
    assert.deepEqual(times.slice(0, 5), [0, 0, 0, 0, 0]);
    assert.ok(clock.waits.length > 0, 'the limiter waited');
  });

  it('keeps requests in flight at or under maxInFlight', async () => {
    const clock = virtualClock();
    const limiter = new RequestLimiter({ maxInFlight: 2, ...clock });
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 7 }, () =>
        limiter.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((resolve) => setImmediate(resolve));
          running--;
        }),
      ),
    );
    assert.equal(peak, 2);
    assert.equal(limiter.inFlight, 0);
    assert.equal(limiter.queued, 0);
  });

  it('drops a queued request when its caller aborts, and serves the rest', async () => {
    const clock = virtualClock();
    const limiter = new RequestLimiter({ maxInFlight: 1, ...clock });
    let release!: () => void;
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const first = limiter.run(
      () =>
        new Promise<string>((resolve) => {
          release = () => resolve('first');
          started();
        }),
    );
    const controller = new AbortController();
    const second = limiter.run(async () => 'second', controller.signal);
    const third = limiter.run(async () => 'third');
    assert.equal(limiter.queued, 2);
    controller.abort();
    await assert.rejects(second, { code: 'aborted' });
    assert.equal(limiter.queued, 1);
    await running;
    release();
    assert.equal(await first, 'first');
    assert.equal(await third, 'third');
  });

  it("lets a caller abort while its turn waits behind another request's rate wait", async () => {
    const clock = virtualClock();
    const limiter = new RequestLimiter({ maxInFlight: 3, requestsPerMinute: 1, ...clock });
    const events: string[] = [];
    const controller = new AbortController();
    const runs = [
      limiter.run(async () => void events.push('a started')),
      limiter.run(async () => void events.push('b started')),
      limiter
        .run(async () => void events.push('c started'), controller.signal)
        .catch((error: { code?: string }) => void events.push(`c ${error.code}`)),
    ];
    controller.abort();
    await Promise.all(runs);
    assert.deepEqual(
      events.filter((event) => event !== 'a started'),
      ['c aborted', 'b started'],
      'c gave up at once instead of after the minute b waited for',
    );
  });

  it('serves a request marked first ahead of those already waiting (a retry keeps its place)', async () => {
    const clock = virtualClock();
    const limiter = new RequestLimiter({ maxInFlight: 1, requestsPerMinute: 1, ...clock });
    const order: string[] = [];
    const task = (name: string) => async () => void order.push(name);
    await Promise.all([
      limiter.run(task('a')),
      limiter.run(task('b')),
      limiter.run(task('c')),
      limiter.run(task('retry of a'), undefined, { first: true }),
    ]);
    assert.deepEqual(order, ['a', 'retry of a', 'b', 'c']);
    const later = clock.now();
    assert.ok(later >= 3 * 60_000, `still one per minute: ${later} ms for four`);
  });

  it('holds every request until a rate-limit reset it was told of', async () => {
    const clock = virtualClock();
    const limiter = new RequestLimiter({ ...clock });
    limiter.pauseUntil(9000);
    await limiter.run(async () => undefined);
    assert.equal(clock.now(), 9000);
  });

  it('refuses nonsense settings', () => {
    const clock = virtualClock();
    assert.throws(() => new RequestLimiter({ requestsPerMinute: 0, ...clock }), /requestsPerMinute/);
    assert.throws(() => new RequestLimiter({ maxInFlight: 0, ...clock }), /maxInFlight/);
  });
});
