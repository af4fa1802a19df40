import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { OptionValue } from '../../bot/test-support/discord-standin/server.ts';
import { BOT_MODES } from './implementations.ts';
import { CHANNEL, GUILD, alice, bob, buttonIds, startWorld, type World } from './world.ts';

type Body = Record<string, unknown>;

/** The body of the last txt2img call the sandbox received. */
function lastTxt2Img(world: World): Body {
  return world.sandbox.requests
    .filter((request) => request.method === 'POST' && /^\/v[12]\/sdxl1\.0-txt2img/.test(request.path))
    .at(-1)!.body as Body;
}

// Settings live in the job store: SQLite for the embedded bot, Redis with REDIS_URL; the restart
// below starts a new bot on the same store, so on Redis they come back from Redis alone.
for (const mode of BOT_MODES)
  describe(`/settings: each member’s defaults (${mode.name})`, { skip: mode.skip }, () => {
    let world: World;
    let env: Record<string, string>;
    before(async () => {
      env = await mode.env();
      world = await startWorld(env);
    });
    after(async () => {
      await world.close();
    });

    const settings = (actor: typeof alice, options: Record<string, OptionValue> = {}) =>
      world.privateReply(
        world.standin.slash({ ...actor, guildId: GUILD, channelId: CHANNEL }, 'settings', options),
      );

    it('are saved, survive a restart, apply under the options typed, and keep results private when asked', async () => {
      const saved = await settings(alice, {
        negative_prompt: 'blurry',
        steps: 30,
        guidance: 9,
        scheduler: 'DDIM',
        suffix: 'oil painting',
        private: true,
      });
      assert.match(saved.content, /Saved\. Your \/imagine defaults/);
      assert.match(saved.content, /negative_prompt: "blurry"/);
      assert.match(saved.content, /steps: 30/);
      assert.match(saved.content, /suffix: "oil painting"/);
      assert.match(saved.content, /results: only you see them/);
      if (env.REDIS_URL) {
        // On Redis they are held there, where every process of the bot reads them.
        const redis = new Redis(env.REDIS_URL);
        try {
          const hashes = (await redis.keys(`${env.BOT_REDIS_PREFIX}*settings`)).sort();
          const held = await Promise.all(
            hashes.map((key) => redis.hget(key, `member-settings:${alice.userId}`)),
          );
          assert.match(held.join(' '), /"suffix":"oil painting"/);
        } finally {
          redis.disconnect();
        }
      }

      await world.restart();

      const shown = await settings(alice);
      assert.match(shown.content, /^\*\*Your \/imagine defaults\*\*/, 'shown, not saved again');
      assert.match(shown.content, /steps: 30/);

      const result = await world.result(world.imagine(alice, { prompt: 'a fox --no rain', guidance: 12 }));
      assert.ok(result.ephemeral, 'the result only alice sees');
      const sent = lastTxt2Img(world);
      assert.equal(sent.prompt, 'a fox, oil painting', 'the suffix after the prompt, after its flags');
      assert.equal(sent.negative_prompt, 'blurry, rain', '--no adds to the default negative prompt');
      assert.equal(sent.num_inference_steps, 30);
      assert.equal(sent.scheduler, 'DDIM');
      assert.equal(sent.guidance_scale, 12, 'the typed option wins');

      // ℹ️ shows the parameters sent and the clicker's defaults.
      const info = await world.info(alice, result);
      assert.match(
        info.content,
        /\*\*Your \/settings\*\* \(applied under what you type in \/imagine\): .*steps: 30/,
      );

      // U1 under her private grid posts the image to her alone, as the grid was.
      const grid = await world.result(world.imagine(alice, { prompt: 'two foxes', samples: 2 }));
      assert.ok(grid.ephemeral);
      const u1 = await world.result(world.standin.clickButton(alice, grid, buttonIds(grid)[0]!));
      assert.match(u1.content, /U1/);
      assert.ok(u1.ephemeral, 'U1 of a private result stays private');

      // Bob has none of them, and his result is public.
      const bobs = await world.result(world.imagine(bob, { prompt: 'a fox' }));
      assert.ok(!bobs.ephemeral);
      assert.equal(lastTxt2Img(world).prompt, 'a fox');
      assert.equal(lastTxt2Img(world).num_inference_steps, 25);
    });

    it('refuses a value /imagine would refuse, naming the option, value and range, and keeps the old ones', async () => {
      const refused = await settings(alice, { steps: 5 });
      assert.match(refused.content, /`steps`: 5 is not allowed; allowed: a whole number from 20 to 100\./);
      const guidance = await settings(alice, { guidance: 40 });
      assert.match(guidance.content, /`guidance`: 40 is not allowed; allowed: a number from 1 to 25\./);
      const suffix = await settings(alice, { suffix: 'line\u0007bell' });
      assert.match(
        suffix.content,
        /`suffix`: "line\\u0007bell" is not allowed; allowed: text without control characters/,
      );
      assert.match((await settings(alice)).content, /steps: 30/, 'unchanged');
    });

    it('clears one default or all of them', async () => {
      const one = await settings(alice, { clear: 'suffix' });
      assert.doesNotMatch(one.content, /suffix/);
      assert.match(one.content, /steps: 30/);
      const all = await settings(alice, { clear: 'all' });
      assert.match(all.content, /Cleared\. You have no defaults/);
      const result = await world.result(world.imagine(alice, { prompt: 'a hare' }));
      assert.ok(!result.ephemeral);
      assert.equal(lastTxt2Img(world).prompt, 'a hare');
      assert.equal(lastTxt2Img(world).num_inference_steps, 25);
    });
  });
