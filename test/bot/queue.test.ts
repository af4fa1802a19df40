import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { DiscordAPIError } from 'discord.js';
import { createLogger } from '../../bot/src/logger.ts';
import type { QueueTicket } from '../../bot/src/queue/types.ts';
import { eventually, QUEUES } from './implementations.ts';

function gatedWorker() {
  const started: string[] = [];
  const release = new Map<string, () => void>();
  const worker = (ticket: QueueTicket) =>
    new Promise<void>((resolve) => {
      started.push(ticket.jobId);
      release.set(ticket.jobId, resolve);
    });
  return { started, release, worker };
}

/** Long enough for a job that wrongly starts to have started, on either implementation. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

for (const kind of QUEUES) {
  describe(kind.name, { skip: kind.skip }, () => {
    it('runs jobs in order, as many images at once as the capacity allows, and tells waiting jobs their new positions', async () => {
      const { queue, close } = await kind.make({ imageCapacity: 2, limit: 100, windowMs: 60_000 });
      const { started, release, worker } = gatedWorker();
      const moves: { jobId: string; position: number }[][] = [];
      queue.start(worker, (moved) => moves.push(moved));
      const results = [];
      for (const jobId of ['a', 'b', 'c', 'd']) {
        results.push(await queue.enqueue({ jobId, userId: jobId, images: 1 }, { perUserLimit: 1 }));
      }
      assert.deepEqual(
        results.map((result) => (result.accepted ? result.position : -1)),
        [0, 0, 1, 2],
      );
      await eventually(() => started.length === 2, 'two jobs to start');
      await settle();
      assert.deepEqual(started, ['a', 'b']);
      assert.deepEqual(await queue.stats(), { waiting: 2, running: 2, runningImages: 2, imageCapacity: 2 });
      release.get('a')!();
      await eventually(() => started.length === 3, 'the third job to start');
      assert.deepEqual(started, ['a', 'b', 'c']);
      await eventually(() => moves.at(-1)?.[0]?.position === 1, 'd to hear it moved up');
      assert.deepEqual(moves.at(-1), [{ jobId: 'd', position: 1 }]);
      assert.equal(await queue.position('d'), 1);
      assert.equal(await queue.cancel('d'), true);
      assert.equal(await queue.position('d'), undefined);
      release.get('b')!();
      release.get('c')!();
      await eventually(async () => (await queue.stats()).running === 0, 'the queue to empty');
      await queue.idle();
      await close();
    });

    it('tells what stands before a waiting job: the images running, since when, and those ahead of it', async () => {
      const { queue, close } = await kind.make({ imageCapacity: 4, limit: 100, windowMs: 60_000 });
      const { started, release, worker } = gatedWorker();
      queue.start(worker, () => {});
      const before = Date.now();
      for (const [jobId, images] of [
        ['one', 1],
        ['four', 4],
        ['another', 1],
      ] as const) {
        await queue.enqueue({ jobId, userId: jobId, images }, { perUserLimit: 1 });
      }
      await eventually(() => started.length === 1, 'the one-image job to start');
      assert.equal(await queue.ahead('one'), undefined, 'a running job waits for nothing');
      const ahead = await queue.ahead('another');
      assert.deepEqual(
        { ...ahead, running: ahead?.running.map((job) => job.images) },
        {
          running: [1],
          waiting: [4],
          images: 1,
        },
      );
      const since = ahead!.running[0]!.startedAt!;
      assert.ok(since >= before - 1_000 && since <= Date.now(), `started at ${since}`);
      // Let every job run to its end, whichever order the queue starts them in.
      const ended = new Set<string>();
      await eventually(() => {
        for (const jobId of started) {
          if (ended.has(jobId)) continue;
          ended.add(jobId);
          release.get(jobId)!();
        }
        return ended.size === 3;
      }, 'every job to run');
      await eventually(async () => (await queue.stats()).running === 0, 'the queue to empty');
      await close();
    });

    it('shows a position only while the job waits, and starts it only once that edit has landed', async () => {
      const { queue, close } = await kind.make({ imageCapacity: 1, limit: 100, windowMs: 60_000 });
      const { started, release, worker } = gatedWorker();
      queue.start(worker, () => {});
      await queue.enqueue({ jobId: 'a', userId: 'a', images: 1 }, { perUserLimit: 1 });
      await queue.enqueue({ jobId: 'b', userId: 'b', images: 1 }, { perUserLimit: 1 });
      await eventually(() => started.length === 1, 'a to start');
      const events: string[] = [];
      // b's position edit is in flight when a ends and b's turn comes.
      let land!: () => void;
      const edit = queue.whileWaiting('b', async () => {
        events.push('edit sent');
        await new Promise<void>((resolve) => (land = resolve));
        events.push('edit landed');
      });
      await eventually(() => events.length === 1, 'the edit to be sent');
      release.get('a')!();
      await settle();
      assert.deepEqual(started, ['a'], 'b waits for its position edit');
      land();
      assert.equal(await edit, true);
      await eventually(() => started.length === 2, 'b to start');
      events.push('started');
      assert.deepEqual(events, ['edit sent', 'edit landed', 'started']);
      // Started: no position edit may begin any more, nor for a job that is unknown.
      let shown = false;
      assert.equal(await queue.whileWaiting('b', async () => void (shown = true)), false);
      assert.equal(await queue.whileWaiting('nobody', async () => void (shown = true)), false);
      assert.equal(shown, false);
      release.get('b')!();
      await eventually(async () => (await queue.stats()).running === 0, 'the queue to empty');
      await queue.idle();
      await close();
    });

    it('refuses past the per-user limit, counting queued and running jobs', async () => {
      const { queue, close } = await kind.make({ imageCapacity: 1, limit: 100, windowMs: 60_000 });
      const { started, release, worker } = gatedWorker();
      queue.start(worker, () => {});
      await queue.enqueue({ jobId: '1', userId: 'u', images: 1 }, { perUserLimit: 2 });
      await queue.enqueue({ jobId: '2', userId: 'u', images: 1 }, { perUserLimit: 2 });
      assert.deepEqual(await queue.enqueue({ jobId: '3', userId: 'u', images: 1 }, { perUserLimit: 2 }), {
        accepted: false,
        reason: 'user_limit',
        userJobs: 2,
      });
      assert.equal(
        (await queue.enqueue({ jobId: '4', userId: 'v', images: 1 }, { perUserLimit: 2 })).accepted,
        true,
      );
      await eventually(() => started.length === 1, 'the first job to start');
      const notStarted = await queue.stop();
      // A shared queue keeps its waiting jobs for the other processes and hands none back.
      assert.deepEqual(
        notStarted.map((ticket) => ticket.jobId),
        queue.shared ? [] : ['2', '4'],
      );
      // A command taken just before the stop: a shared queue puts it in line for the other processes.
      assert.deepEqual(
        await queue.enqueue({ jobId: '5', userId: 'w', images: 1 }, { perUserLimit: 2 }),
        queue.shared ? { accepted: true, position: 3 } : { accepted: false, reason: 'closed' },
      );
      release.get('1')!();
      await queue.idle();
      await settle();
      assert.deepEqual(started, ['1'], 'a stopped queue starts nothing more here');
      await close();
    });

    it('paces starts with the rate limiter; a job waiting for it can be cancelled or handed back on stop', async () => {
      const { queue, limiter, close } = await kind.make({ imageCapacity: 3, limit: 1, windowMs: 60_000 });
      const { started, release, worker } = gatedWorker();
      queue.start(worker, () => {});
      await queue.enqueue({ jobId: 'first', userId: 'a', images: 1 }, { perUserLimit: 5 });
      await queue.enqueue({ jobId: 'paced', userId: 'a', images: 1 }, { perUserLimit: 5 });
      await queue.enqueue({ jobId: 'also-paced', userId: 'a', images: 1 }, { perUserLimit: 5 });
      await eventually(() => started.length === 1, 'the first job to start');
      await settle();
      assert.deepEqual(started, ['first'], 'one start per window');
      assert.equal(await limiter.used(), 1);
      assert.equal(await queue.cancel('paced'), true);
      const handedBack = await queue.stop();
      assert.deepEqual(
        handedBack.map((ticket) => ticket.jobId),
        queue.shared ? [] : ['also-paced'],
      );
      release.get('first')!();
      await queue.idle();
      assert.deepEqual(started, ['first'], 'the cancelled and the handed-back jobs never started');
      await close();
    });

    it('counts images, not jobs: a 4-image job takes the whole capacity, a larger one runs alone', async () => {
      const { queue, close } = await kind.make({ imageCapacity: 4, limit: 100, windowMs: 60_000 });
      const { started, release, worker } = gatedWorker();
      queue.start(worker, () => {});
      await queue.enqueue({ jobId: 'four', userId: 'a', images: 4 }, { perUserLimit: 9 });
      await queue.enqueue({ jobId: 'one', userId: 'b', images: 1 }, { perUserLimit: 9 });
      await queue.enqueue({ jobId: 'two', userId: 'c', images: 2 }, { perUserLimit: 9 });
      await eventually(() => started.length === 1, 'the first job to start');
      await settle();
      assert.deepEqual(started, ['four']);
      release.get('four')!();
      await eventually(() => started.length === 3, 'the two smaller jobs to start');
      // Both fit at once, so they start together (in whichever order the workers ask).
      assert.deepEqual([started[0], ...started.slice(1).sort()], ['four', 'one', 'two']);
      release.get('one')!();
      release.get('two')!();
      await eventually(async () => (await queue.stats()).running === 0, 'the queue to empty');
      await close();

      const small = await kind.make({ imageCapacity: 2, limit: 100, windowMs: 60_000 });
      const second = gatedWorker();
      small.queue.start(second.worker, () => {});
      await small.queue.enqueue({ jobId: 'big', userId: 'a', images: 4 }, { perUserLimit: 9 });
      await eventually(() => second.started.length === 1, 'the big job to start');
      assert.deepEqual(second.started, ['big'], 'a job larger than the capacity still runs, alone');
      second.release.get('big')!();
      await eventually(async () => (await small.queue.stats()).running === 0, 'the queue to empty');
      await small.close();
    });

    it('starts the first in line when BullMQ hands out the one behind it first (two processes queued them in one order and added them in the other)', async () => {
      const made = await kind.make({ imageCapacity: 1, limit: 100, windowMs: 60_000 });
      const { queue, close } = made;
      const { started, release, worker } = gatedWorker();
      await queue.enqueue({ jobId: 'first', userId: 'a', images: 1 }, { perUserLimit: 9 });
      await queue.enqueue({ jobId: 'second', userId: 'b', images: 1 }, { perUserLimit: 9 });
      if (made.redis) {
        // What the race leaves: BullMQ's order the other way round (same priority, 'second' added first).
        const prioritized = `${made.prefix}:bull:generate:prioritized`;
        const score = Number(await made.redis.zscore(prioritized, 'jsecond'));
        await made.redis.zadd(prioritized, score + 1, 'jfirst');
      }
      queue.start(worker, () => {});
      await eventually(() => started.length === 1, 'the first in line to start');
      assert.deepEqual(started, ['first']);
      release.get('first')!();
      await eventually(() => started.length === 2, 'the second to start');
      release.get('second')!();
      await eventually(async () => (await queue.stats()).running === 0, 'the queue to empty');
      await close();
    });

    it('keeps a large job its turn: a small one behind it waits even when it alone would fit', async () => {
      const { queue, close } = await kind.make({ imageCapacity: 4, limit: 100, windowMs: 60_000 });
      const { started, release, worker } = gatedWorker();
      queue.start(worker, () => {});
      await queue.enqueue({ jobId: 'first', userId: 'a', images: 1 }, { perUserLimit: 9 });
      await eventually(() => started.length === 1, 'the first job to start');
      await queue.enqueue({ jobId: 'four', userId: 'b', images: 4 }, { perUserLimit: 9 });
      await queue.enqueue({ jobId: 'one', userId: 'c', images: 1 }, { perUserLimit: 9 });
      assert.equal(await queue.position('one'), 2, 'told it waits behind the large job');
      // Three images are free, enough for 'one' alone; a worker that took it would starve 'four'.
      await settle();
      await settle();
      assert.deepEqual(started, ['first']);
      release.get('first')!();
      await eventually(() => started.length === 2, 'the large job to start');
      await settle();
      assert.deepEqual(started, ['first', 'four'], 'the small job waits until the large one is done');
      release.get('four')!();
      await eventually(() => started.length === 3, 'the small job to start');
      release.get('one')!();
      await eventually(async () => (await queue.stats()).running === 0, 'the queue to empty');
      await close();
    });
  });
}

describe('the logger', () => {
  it('redacts secrets by path and by value, and interaction tokens in Discord URLs', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ secrets: ['bot-token-123456', 'api-key-abcdef'] }, sink);
    logger.info({ token: 'anything', config: { sdxlApiKey: 'x' } }, 'login with bot-token-123456');
    const error = new Error(
      'Unknown Message at https://discord.com/api/v10/webhooks/123456789012345678/aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4/messages/@original',
    );
    logger.error({ err: error, header: 'api-key-abcdef' }, 'failed');
    const text = lines.join('');
    for (const secret of [
      'bot-token-123456',
      'api-key-abcdef',
      'aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4',
      '"x"',
    ]) {
      assert.ok(!text.includes(secret), `${secret} is redacted`);
    }
    assert.match(text, /webhooks\/123456789012345678\/\[redacted\]/);
    assert.match(text, /"token":"\[redacted\]"/);
  });

  it('logs a failed Discord upload by its code and route, not by the image bytes it carried', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({}, sink);
    const image = Buffer.alloc(300_000, 0xab);
    const error = new DiscordAPIError(
      { code: 50027, message: 'Invalid Webhook Token' },
      50027,
      401,
      'PATCH',
      'https://discord.com/api/v10/webhooks/123456789012345678/aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4/messages/@original',
      { files: [{ name: 'sdxl-1.jpg', data: image }], body: { content: 'a prompt' } },
    );
    logger.warn({ err: error }, 'job failed');
    const text = lines.join('');
    // Checked by size first: a failing deep comparison with the bytes would take minutes to diff.
    assert.ok(text.length < 10_000, `one short line, not ${text.length} characters`);
    const entry = JSON.parse(text) as { err: Record<string, unknown> };
    assert.equal(entry.err.code, 50027);
    assert.equal(entry.err.message, 'Invalid Webhook Token');
    assert.ok(!('requestBody' in entry.err), 'the uploaded files are not logged');
  });
});
