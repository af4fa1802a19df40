import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConnectionError, RedisStartWindow, RequestLimiter, nodeSleep } from '@sdxl-kit/client';
import { Redis } from 'ioredis';
import { skipWithoutRedis, startRedis, type TestRedis } from '../support/redis.ts';

const KEY = 'SG_shared_pace_secret_4242';
const PASSWORD = 'redis-secret-pw-7e3';
const BASE = 'https://api.segmind.com/v1';

/** Start times of `count` calls through `limiter`, in ms since epoch. */
async function starts(limiter: RequestLimiter, count: number): Promise<number[]> {
  const times: number[] = [];
  await Promise.all(
    Array.from({ length: count }, () => limiter.run(async () => void times.push(Date.now()))),
  );
  return times;
}

/** The most starts that fall inside any stretch of `windowMs`. */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j < sorted.length && (sorted[j] as number) - (sorted[i] as number) < windowMs) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

describe('a start window shared through Redis', { skip: skipWithoutRedis }, () => {
  let redis: TestRedis;
  const connections: Redis[] = [];
  const connect = () => {
    const connection = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    connection.on('error', () => undefined);
    connections.push(connection);
    return connection;
  };
  // Two processes of one account, each with its own connection and limiter, as two cron machines.
  const limiter = (options: { windowMs: number; prefix: string; requestsPerMinute?: number }) =>
    new RequestLimiter({
      requestsPerMinute: options.requestsPerMinute ?? 3,
      maxInFlight: 10,
      windowMs: options.windowMs,
      sleep: nodeSleep,
      window: new RedisStartWindow(connect(), {
        requestsPerMinute: options.requestsPerMinute ?? 3,
        windowMs: options.windowMs,
        apiKey: KEY,
        baseUrl: BASE,
        prefix: options.prefix,
      }),
    });

  before(async () => {
    redis = await startRedis({ password: PASSWORD });
  });
  after(async () => {
    for (const connection of connections) connection.disconnect();
    await redis?.close();
  });

  it('keeps two limiters of one account to one pace: never more starts in a window than the rate', async () => {
    const windowMs = 400;
    const [a, b] = [limiter({ windowMs, prefix: 'pace-1:' }), limiter({ windowMs, prefix: 'pace-1:' })];
    const [fromA, fromB] = await Promise.all([starts(a!, 5), starts(b!, 5)]);
    assert.equal(busiestWindow([...fromA, ...fromB], windowMs), 3);
    // Both took turns: neither got the whole window to itself.
    assert.ok(fromA.length === 5 && fromB.length === 5);

    // Without the shared window, each counts only its own starts: together they double the rate.
    const local = () =>
      new RequestLimiter({ requestsPerMinute: 3, maxInFlight: 10, windowMs, sleep: nodeSleep });
    const [ownA, ownB] = await Promise.all([starts(local(), 5), starts(local(), 5)]);
    assert.ok(busiestWindow([...ownA, ...ownB], windowMs) >= 6);
  });

  it('holds the other processes too when one is told by a 429 to wait', async () => {
    const windowMs = 60_000;
    const [a, b] = [
      limiter({ windowMs, prefix: 'pace-2:', requestsPerMinute: 100 }),
      limiter({ windowMs, prefix: 'pace-2:', requestsPerMinute: 100 }),
    ];
    const told = Date.now();
    a!.pauseUntil(told + 700);
    // The pause is shared as a key with its own expiry; give the fire-and-forget write its moment.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const [started] = await starts(b!, 1);
    assert.ok(started! >= told + 600, `started ${started! - told} ms after the pause was told`);
  });

  it('stores only a hash of the account, never the key', async () => {
    await starts(limiter({ windowMs: 1000, prefix: 'pace-3:' }), 1);
    const keys = await connect().keys('*');
    assert.ok(
      keys.some((name) => name.startsWith('pace-3:pace:')),
      keys.join(', '),
    );
    const dump =
      JSON.stringify(keys) +
      JSON.stringify(
        await Promise.all(keys.filter((k) => k.endsWith(':starts')).map((k) => connect().zrange(k, 0, '-1'))),
      );
    assert.ok(!dump.includes(KEY), dump);
  });

  it('fails a call with nothing sent, naming the shared pace without its password, when Redis is gone', async () => {
    const paced = limiter({ windowMs: 1000, prefix: 'pace-4:' });
    await redis.stop();
    try {
      let ran = false;
      const error = await paced
        .run(async () => void (ran = true))
        .then(
          () => undefined,
          (failure: unknown) => failure,
        );
      assert.ok(error instanceof ConnectionError, String(error));
      assert.equal(error.sent, false);
      assert.equal(ran, false);
      assert.match(error.message, /shared pace .*could not be reached.*Nothing was sent/);
      assert.ok(!error.message.includes(PASSWORD) && !(error.stack ?? '').includes(PASSWORD));
    } finally {
      await redis.restart();
    }
    // Back when Redis is: the same limiter paces again.
    await assert.doesNotReject(paced.run(async () => undefined));
  });
});
