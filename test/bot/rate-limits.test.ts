import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REST, Routes } from 'discord.js';
import type { RateLimitSettings } from '../../bot/test-support/discord-standin/rate-limits.ts';
import { startDiscordStandin } from '../../bot/test-support/discord-standin/server.ts';
import { alice, BOT_TOKEN, CHANNEL, GUILD, startWorld, type World } from './world.ts';

/** A stand-in with one guild and channel, enforcing these of Discord's limits (the others at Discord's figures). */
function limitedStandin(rateLimits: Partial<RateLimitSettings>) {
  return startDiscordStandin({ token: BOT_TOKEN, guilds: [{ id: GUILD, channels: [CHANNEL] }], rateLimits });
}

describe('the Discord stand-in with Discord’s rate limits', () => {
  it('answers a request over a bucket 429 with Discord’s headers and body, and discord.js waits them out', async () => {
    const standin = await limitedStandin({ channelMessages: { limit: 5, windowMs: 600 } });
    try {
      const post = () =>
        fetch(`${standin.apiUrl}/v10/channels/${CHANNEL}/messages`, {
          method: 'POST',
          headers: { authorization: `Bot ${BOT_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ content: 'hello' }),
        });
      const answers = [];
      for (let n = 0; n < 6; n++) answers.push(await post());
      assert.deepEqual(
        answers.map((answer) => answer.status),
        [200, 200, 200, 200, 200, 429],
      );
      assert.equal(answers[0]!.headers.get('x-ratelimit-limit'), '5');
      assert.equal(answers[0]!.headers.get('x-ratelimit-remaining'), '4');
      assert.equal(answers[4]!.headers.get('x-ratelimit-remaining'), '0');
      assert.equal(answers[0]!.headers.get('x-ratelimit-bucket'), 'channel-messages');
      const refused = answers[5]!;
      assert.equal(refused.headers.get('x-ratelimit-scope'), 'user');
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      const body = (await refused.json()) as { retry_after: number; global: boolean; message: string };
      assert.equal(body.global, false);
      assert.ok(body.retry_after > 0 && body.retry_after <= 0.6, `retry_after ${body.retry_after}`);
      assert.equal(standin.rateLimits?.hits.length, 1);
      assert.equal(standin.messages.length, 5, 'the refused message was not created');

      // discord.js reads the headers and paces itself: twelve messages at once, all posted, none refused
      // beyond what it could not know before its first answer.
      const rest = new REST({ api: standin.apiUrl }).setToken(BOT_TOKEN);
      await new Promise((resolve) => setTimeout(resolve, 700));
      const before = standin.rateLimits!.hits.length;
      await Promise.all(
        Array.from({ length: 12 }, (_, n) =>
          rest.post(Routes.channelMessages(CHANNEL), { body: { content: `paced ${n}` } }),
        ),
      );
      assert.equal(standin.messages.filter((message) => message.content.startsWith('paced')).length, 12);
      assert.ok(standin.rateLimits!.hits.length - before <= 1, 'discord.js kept to the bucket it was told');
    } finally {
      await standin.close();
    }
  });

  it('counts the bot-token requests against the global limit, but not an interaction’s webhook', async () => {
    const standin = await limitedStandin({ global: { limit: 3, windowMs: 60_000 } });
    try {
      const me = () =>
        fetch(`${standin.apiUrl}/v10/users/@me`, { headers: { authorization: `Bot ${BOT_TOKEN}` } });
      const statuses = [];
      for (let n = 0; n < 4; n++) statuses.push((await me()).status);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const hit = standin.rateLimits!.hits[0]!;
      assert.equal(hit.scope, 'global');
      const global = await me();
      assert.equal(global.headers.get('x-ratelimit-global'), 'true');
      assert.equal(((await global.json()) as { global: boolean }).global, true);
    } finally {
      await standin.close();
    }
  });
});

describe('the bot under Discord’s rate limits', () => {
  it('draws no 429 from 35 simultaneous commands in one channel, more results than Discord lets webhooks post there in a minute: every result posted through its own interaction', async () => {
    let world: World | undefined;
    try {
      world = await startWorld(
        { BOT_MAX_IN_FLIGHT: '4', BOT_USER_QUEUE_LIMIT: '3' },
        { latencyMs: 150 },
        // What is measured is the 429s; on a loaded machine 35 acknowledgements may take longer than
        // Discord's 3 seconds, which would end commands before their results (bench:bot times them).
        { rateLimits: true, ackDeadlineMs: 60_000 },
      );
      const actors = Array.from({ length: 35 }, (_, n) => ({
        ...alice,
        userId: String(800_000_000_000_000_100n + BigInt(n)),
      }));
      const records = actors.map((actor, n) => world!.imagine(actor, { prompt: `at once ${n}` }));
      // Wherever a result lands (its reply, or a message of its own), every one is posted; a result
      // refused with a 429 is posted only once discord.js has waited it out.
      const results = () =>
        world!.standin.messages.filter((message) => !message.deleted && message.attachments.length > 0);
      await world.standin.waitFor(() => results().length >= 35, 'every result posted', 150_000);
      assert.deepEqual(
        records.map((record) => results().some((message) => message.interactionToken === record.token)),
        records.map(() => true),
        'each command’s result, through its own interaction',
      );
      assert.equal(world.sandbox.billed.length, 35);
      assert.deepEqual(world.standin.rateLimits!.hits, [], 'no request drew a 429');
    } finally {
      await world?.close();
    }
  });
});
