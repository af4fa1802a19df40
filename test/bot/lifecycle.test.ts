import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { API_KEY, BOT_TOKEN, alice, bob, buttonIds, manager, moderator, startWorld } from './world.ts';

describe('restarts, deadlines, shutdown and limits', () => {
  it('buttons keep working after the bot restarts; an unknown job says it expired', async () => {
    const world = await startWorld();
    try {
      const message = await world.result(world.imagine(alice, { prompt: 'a windmill', samples: 2, seed: 5 }));
      await world.restart();
      const ids = buttonIds(message);
      const u1 = await world.result(world.standin.clickButton(bob, message, ids[0]!));
      assert.match(u1.content, /U1/);
      const info = await world.info(bob, message);
      assert.match(info.content, /a windmill/);
      const reroll = await world.result(
        world.standin.clickButton(
          alice,
          message,
          ids.find((id) => id.includes(':reroll:'))!,
        ),
      );
      assert.match(reroll.content, /a windmill/);
      const expired = await world.privateReply(
        world.standin.clickButton(alice, message, 'sdxl:info:0123456789abcdef'),
      );
      assert.match(expired.content, /expired/);
      const expiredU = await world.privateReply(
        world.standin.clickButton(alice, message, 'sdxl:upscale:0123456789abcdef:0'),
      );
      assert.match(expiredU.content, /expired/);
      const expiredDelete = await world.privateReply(
        world.standin.clickButton(alice, message, 'sdxl:delete:0123456789abcdef'),
      );
      assert.match(expiredDelete.content, /expired/);
    } finally {
      await world.close();
    }
  });

  it('at the deadline a waiting job is stopped and told; a submitted one is billed, so it is seen through and posted', async () => {
    const world = await startWorld(
      { BOT_JOB_DEADLINE_MS: '1000', BOT_MAX_IN_FLIGHT: '1' },
      { latencyMs: 2500 },
    );
    try {
      const running = world.imagine(alice, { prompt: 'slow one' });
      const waiting = world.imagine(bob, { prompt: 'slow two' });
      const stopped = await world.standin.waitFor(() => {
        const original = world.standin.original(waiting);
        return original && /15-minute window/.test(original.content) ? original : undefined;
      }, 'the deadline message');
      assert.equal(stopped.attachments.length, 0);
      const posted = await world.result(running);
      assert.match(posted.content, /slow one/);
      assert.deepEqual(
        world.sandbox.billed.map((call) => call.prompt),
        ['slow one'],
        'the submitted job billed once, the stopped one never',
      );
    } finally {
      await world.close();
    }
  });

  it('on stop (SIGTERM) running jobs finish and waiting jobs are told', async () => {
    const world = await startWorld({ BOT_MAX_IN_FLIGHT: '1' }, { latencyMs: 800 });
    try {
      const running = world.imagine(alice, { prompt: 'finishing' });
      await world.standin.waitFor(() => world.standin.original(running)?.history.length, 'the job to start');
      const waiting = world.imagine(bob, { prompt: 'never started' });
      await world.standin.waitFor(() => world.standin.original(waiting)?.history.length, 'the job queued');
      await world.bot.stop();
      assert.ok(world.standin.original(running)!.attachments.length > 0, 'the running job finished');
      assert.match(world.standin.original(waiting)!.content, /restarting; your job had not started/);
      // close() stops again: harmless
      world.bot.stop = async () => {};
    } finally {
      await world.close();
    }
  });

  it('attachments respect the size limit the interaction gives', async () => {
    // The sandbox's JPEGs are about 35 KB: under this limit they must be re-encoded to be sent at all.
    const limit = 20_000;
    const world = await startWorld({}, {}, { attachmentSizeLimit: limit });
    try {
      const message = await world.result(world.imagine(alice, { prompt: 'a detailed forest', samples: 2 }));
      assert.ok(message.attachments.length >= 2);
      for (const attachment of message.attachments)
        assert.ok(attachment.size <= limit, `${attachment.filename} fits`);
    } finally {
      await world.close();
    }
  });

  it('a refused key is reported without leaking it or the bot token', async () => {
    const world = await startWorld({ SDXL_API_KEY: `${API_KEY}-wrong` });
    try {
      const record = world.imagine(alice, { prompt: 'anything' });
      const message = await world.standin.waitFor(() => {
        const original = world.standin.original(record);
        return original && /refused the bot/.test(original.content) ? original : undefined;
      }, 'the unauthorized message');
      assert.equal(message.attachments.length, 0);
    } finally {
      await world.close();
    }
    const everything = world.logs.join('') + world.everythingShown();
    assert.ok(!everything.includes(API_KEY), 'no key');
    assert.ok(!everything.includes(BOT_TOKEN), 'no token');
  });
});

describe('configuration in force', () => {
  it('spoilers results, needs no hosted key with a sandbox, and refuses other servers', async () => {
    // No SDXL_API_KEY: the bot sends the sandbox's default key.
    const world = await startWorld({ SDXL_API_KEY: '', BOT_SPOILER: 'true' }, { apiKey: 'sandbox-key' });
    try {
      const message = await world.result(world.imagine(alice, { prompt: 'a secret garden', samples: 2 }));
      assert.ok(message.attachments.every((attachment) => attachment.filename.startsWith('SPOILER_')));
      assert.equal((message.embeds[0] as { image?: unknown }).image, undefined, 'no unspoilered preview');
    } finally {
      await world.close();
    }
    const elsewhere = await startWorld({ BOT_ALLOWED_GUILDS: '123456789012345678' });
    try {
      const reply = await elsewhere.privateReply(elsewhere.imagine(alice, { prompt: 'a cat' }));
      assert.match(reply.content, /not enabled in this server/);
    } finally {
      await elsewhere.close();
    }
  });
});

describe('jobs waiting for the per-minute pace', () => {
  it('leave the line saying they start soon, so no two waiting jobs show the same place', async () => {
    const world = await startWorld(
      { BOT_REQUESTS_PER_MINUTE: '2', BOT_RATE_WINDOW_MS: '60000', BOT_MAX_IN_FLIGHT: '2' },
      { latencyMs: 300 },
    );
    try {
      const records = [alice, bob, moderator, manager].map((actor, n) =>
        world.imagine(actor, { prompt: `job ${n}` }),
      );
      for (const record of records.slice(0, 2)) await world.result(record);
      // Both starts of this window are spent: the other two leave the line and wait for the pace.
      for (const record of records.slice(2)) {
        await world.standin.waitFor(
          () =>
            /starting soon: the bot starts at most 2 jobs a minute/.test(
              world.standin.original(record)?.content ?? '',
            ),
          'the pace message',
        );
      }
    } finally {
      await world.close();
    }
  });

  it('are stopped at the deadline and told', async () => {
    const world = await startWorld({
      BOT_REQUESTS_PER_MINUTE: '1',
      BOT_MAX_IN_FLIGHT: '2',
      BOT_JOB_DEADLINE_MS: '1500',
    });
    try {
      const first = await world.result(world.imagine(alice, { prompt: 'uses the only start this minute' }));
      assert.ok(
        !first.history.some((state) => /starting soon/.test(state.content)),
        'a job that started at once was never said to be waiting for the pace',
      );
      const paced = world.imagine(bob, { prompt: 'has to wait a minute' });
      const message = await world.standin.waitFor(() => {
        const original = world.standin.original(paced);
        return original && /15-minute window/.test(original.content) ? original : undefined;
      }, 'the deadline message');
      assert.ok(message.history.some((state) => /starts at most 1 jobs a minute/.test(state.content)));
      assert.equal(world.sandbox.requests.filter((request) => request.method === 'POST').length, 1);
    } finally {
      await world.close();
    }
  });

  it('are stopped at the deadline and told even when the store fails, leaving nothing unhandled', async () => {
    const world = await startWorld({
      BOT_REQUESTS_PER_MINUTE: '1',
      BOT_MAX_IN_FLIGHT: '2',
      BOT_JOB_DEADLINE_MS: '1500',
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await world.result(world.imagine(alice, { prompt: 'uses the only start this minute' }));
      const paced = world.imagine(bob, { prompt: 'has to wait a minute' });
      await world.standin.waitFor(
        () => /starting soon/.test(world.standin.original(paced)?.content ?? ''),
        'the pace message',
      );
      // The disk fails under the bot: every store write throws from here on.
      await world.bot.context.store.close();
      await world.standin.waitFor(
        () => /15-minute window/.test(world.standin.original(paced)?.content ?? ''),
        'the deadline message',
      );
      // The bot logs the store failure once Discord has confirmed the edit: poll the log, not the stand-in.
      for (let tries = 0; !world.logs.some((line) => /could not stop the job/.test(line)); tries++) {
        assert.ok(tries < 500, 'the store failure is logged');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await world.close();
    }
  });

  it('are handed back and told on stop', async () => {
    const world = await startWorld({ BOT_REQUESTS_PER_MINUTE: '1', BOT_MAX_IN_FLIGHT: '2' });
    try {
      await world.result(world.imagine(alice, { prompt: 'uses the only start this minute' }));
      const paced = world.imagine(bob, { prompt: 'has to wait a minute' });
      await world.standin.waitFor(() => world.standin.original(paced)?.history.length, 'the pace message');
      await world.bot.stop();
      assert.match(world.standin.original(paced)!.content, /restarting; your job had not started/);
      world.bot.stop = async () => {};
    } finally {
      await world.close();
    }
  });
});
