import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { TextChannel } from 'discord.js';
import { CHANNEL, GUILD, alice, bob, buttonIds, startWorld, type World } from './world.ts';

/** Waits (bounded) for the bot to be done with every interaction: no job live, nothing left to release. */
async function settled(world: World, done: () => boolean, what: string): Promise<void> {
  for (let tries = 0; tries < 250; tries++) {
    if (world.bot.context.imagine.liveCount === 0 && done()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The discord.js rate-limit handlers still kept for the stand-in's interaction tokens. */
function handlersOfInteractions(world: World): string[] {
  const tokens = [...world.standin.interactions.values()].map((record) => record.token);
  return [...world.bot.client.rest.handlers.keys()].filter((key) =>
    tokens.some((token) => key.endsWith(`/${token}`)),
  );
}

describe('memory: nothing kept per job once it has ended', () => {
  it('no rate-limit handler stays for the interaction of a finished job, a button click or a refusal', async () => {
    const world = await startWorld();
    try {
      const first = await world.result(world.imagine(alice, { prompt: 'a lighthouse', samples: 2 }));
      await world.result(world.imagine(bob, { prompt: 'a harbour' }));
      // A button answered with an upload, and one answered privately.
      await world.result(world.standin.clickButton(bob, first, buttonIds(first)[0]!));
      await world.info(alice, first);
      // A refusal after the public "is thinking…" (an expired result's U1).
      await world.privateReply(world.standin.clickButton(alice, first, 'sdxl:upscale:0123456789abcdef:0'));
      await settled(world, () => handlersOfInteractions(world).length === 0, 'the handlers to be released');
      assert.deepEqual(handlersOfInteractions(world), []);
    } finally {
      await world.close();
    }
  });

  it('the Discord client caches no messages, users or members of past jobs', async () => {
    const world = await startWorld();
    try {
      await world.result(world.imagine(alice, { prompt: 'a red kite', samples: 2 }));
      await world.result(world.imagine(bob, { prompt: 'a blue kite' }));
      await settled(world, () => true, 'the jobs to end');
      const client = world.bot.client;
      assert.deepEqual([...client.users.cache.keys()], [client.user!.id]);
      const guild = client.guilds.cache.get(GUILD)!;
      assert.deepEqual(
        [...guild.members.cache.keys()].filter((id) => id !== client.user!.id),
        [],
      );
      const channel = client.channels.cache.get(CHANNEL) as TextChannel;
      assert.equal(channel.messages.cache.size, 0);
    } finally {
      await world.close();
    }
  });
});
