import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import {
  API_KEY,
  BOT_TOKEN,
  alice,
  bob,
  buttonIds,
  buttonLabels,
  moderator,
  startWorld,
  type World,
} from './world.ts';
import { BOT_MODES } from './implementations.ts';

for (const mode of BOT_MODES)
  describe(`/imagine through a real discord.js client (${mode.name})`, { skip: mode.skip }, () => {
    let world: World;
    before(async () => {
      world = await startWorld(await mode.env());
    });
    after(async () => {
      await world.close();
      const everything = world.logs.join('') + world.everythingShown();
      assert.ok(world.logs.length > 0);
      assert.ok(!everything.includes(API_KEY), 'the API key is in no message and no log line');
      assert.ok(!everything.includes(BOT_TOKEN), 'the bot token is in no message and no log line');
    });

    it('acknowledges at once, then posts the images, the grid, prompt, seed, credits and buttons', async () => {
      const record = world.imagine(alice, {
        prompt: 'a lighthouse at dusk --no fog, people --seed 1234',
        samples: 4,
      });
      const message = await world.result(record);
      assert.equal(record.callbacks[0]?.type, 5, 'deferReply is the first answer');
      assert.equal(message.ephemeral, false);
      assert.match(message.content, /a lighthouse at dusk/);
      assert.doesNotMatch(message.content, /--no|--seed/);
      const names = message.attachments.map((attachment) => attachment.filename);
      assert.equal(names.length, 5, 'four images and the grid');
      assert.ok(names.some((name) => name.includes('grid')));
      const grid = message.attachments.find((attachment) => attachment.filename.includes('grid'))!;
      const meta = await sharp(grid.bytes).metadata();
      assert.deepEqual([meta.width, meta.height], [1024, 1024]);
      const embed = message.embeds[0] as {
        image?: { url: string };
        fields: { name: string; value: string }[];
      };
      assert.equal(embed.image?.url, `attachment://${grid.filename}`);
      assert.equal(embed.fields.find((field) => field.name === 'Seed')?.value, '`1234`');
      assert.match(embed.fields.find((field) => field.name === 'Credits left')?.value ?? '', /^\d/);
      assert.deepEqual(buttonLabels(message), [
        'U1',
        'U2',
        'U3',
        'U4',
        'V1',
        'V2',
        'V3',
        'V4',
        'New seed',
        'Edit prompt',
        'Parameters',
        'Delete',
      ]);
      const sent = world.sandbox.requests.find((request) => request.method === 'POST')?.body as Record<
        string,
        unknown
      >;
      assert.equal(sent.seed, 1234);
      assert.equal(sent.negative_prompt, 'fog, people');
      assert.equal(sent.samples, 4);
    });

    it('U2 posts that image full size; ℹ️ shows the parameters to the clicker only', async () => {
      const message = await world.result(
        world.imagine(alice, { prompt: 'two foxes', samples: 2, seed: 77, guidance: 9.5 }),
      );
      const ids = buttonIds(message);
      const u2 = world.standin.clickButton(bob, message, ids[1]!);
      const full = await world.result(u2);
      assert.equal(full.attachments.length, 1);
      const meta = await sharp(full.attachments[0]!.bytes).metadata();
      assert.equal(meta.width, 1024);
      assert.match(full.content, /U2/);

      const reply = await world.info(bob, message);
      assert.match(reply.content, /prompt: "two foxes"/);
      assert.match(reply.content, /seed: 77/);
      // Every parameter sent, defaults included, under the option names /imagine shows, to make it again.
      const sent = world.sandbox.requests.filter((request) => request.method === 'POST').at(-1)!
        .body as Record<string, unknown>;
      for (const [option, wire] of [
        ['negative_prompt', 'negative_prompt'],
        ['style', 'style'],
        ['scheduler', 'scheduler'],
        ['samples', 'samples'],
        ['steps', 'num_inference_steps'],
        ['guidance', 'guidance_scale'],
        ['refiner', 'refiner'],
        ['high_noise_fraction', 'high_noise_fraction'],
        ['refiner_strength', 'strength'],
        ['width', 'img_width'],
        ['height', 'img_height'],
      ]) {
        const value = sent[wire!];
        assert.ok(value !== undefined, `the request sent ${wire}`);
        const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
        assert.ok(reply.content.includes(`\n${option}: ${shown}\n`), `ℹ️ shows ${option}: ${shown}`);
      }
      assert.doesNotMatch(reply.content, /guidanceScale|negativePrompt/);
    });

    it('🔄 runs again with a new seed; ✏️ edits the prompt and keeps the seed and settings', async () => {
      const first = await world.result(world.imagine(alice, { prompt: 'a red car', steps: 30, seed: 4242 }));
      const reroll = world.standin.clickButton(
        alice,
        first,
        buttonIds(first).find((id) => id.includes(':reroll:'))!,
      );
      const second = await world.result(reroll);
      const seedOf = (message: typeof first) =>
        (message.embeds[0] as { fields: { name: string; value: string }[] }).fields.find(
          (field) => field.name === 'Seed',
        )?.value;
      assert.notEqual(seedOf(second), '`4242`');

      const edit = world.standin.clickButton(
        alice,
        first,
        buttonIds(first).find((id) => id.includes(':edit:'))!,
      );
      const modal = await world.standin.waitFor(() => edit.callbacks[0], 'the modal');
      assert.equal(modal.type, 9);
      const modalId = String(modal.data?.custom_id);
      const submitted = world.standin.submitModal(alice, modalId, { prompt: 'a blue car' }, first);
      const third = await world.result(submitted);
      assert.match(third.content, /a blue car/);
      assert.equal(seedOf(third), '`4242`');
      const last = world.sandbox.requests.filter((request) => request.method === 'POST').at(-1)
        ?.body as Record<string, unknown>;
      assert.equal(last.num_inference_steps, 30);
      assert.equal(last.prompt, 'a blue car');
    });

    it('🗑 deletes for the requester or a moderator, and refuses anyone else privately', async () => {
      const message = await world.result(world.imagine(alice, { prompt: 'a tidy desk' }));
      const deleteId = buttonIds(message).find((id) => id.includes(':delete:'))!;
      const refused = world.standin.clickButton(bob, message, deleteId);
      const reply = await world.privateReply(refused);
      assert.match(reply.content, /Only the person who asked/);
      assert.equal(message.deleted, false);
      world.standin.clickButton(moderator, message, deleteId);
      await world.standin.waitFor(() => message.deleted, 'the result deleted');

      const own = await world.result(world.imagine(alice, { prompt: 'another desk' }));
      world.standin.clickButton(
        alice,
        own,
        buttonIds(own).find((id) => id.includes(':delete:'))!,
      );
      await world.standin.waitFor(() => own.deleted, 'the result deleted by its owner');
    });

    it('🗑 clicked twice at once: the result is deleted and neither click is told something went wrong', async () => {
      const message = await world.result(world.imagine(alice, { prompt: 'deleted twice' }));
      const remove = buttonIds(message).find((id) => id.includes(':delete:'))!;
      const logged = world.logs.length;
      const clicks = [alice, moderator].map((actor) => world.standin.clickButton(actor, message, remove));
      const jobId = remove.split(':')[2]!;
      // The bot logs after Discord has answered: poll the log, not the stand-in.
      const handled = () =>
        world.logs.slice(logged).filter((line) => /result deleted|interaction failed/.test(line));
      for (let tries = 0; handled().length < 2; tries++) {
        assert.ok(tries < 500, 'both clicks handled');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(handled().every((line) => line.includes('result deleted') && line.includes(jobId)));
      assert.ok(message.deleted);
      for (const click of clicks) assert.deepEqual(click.followupIds, [], 'no "something went wrong"');
    });

    it('suggests known schedulers and lets other values through', async () => {
      const choices = await world.standin.autocomplete(alice, 'imagine', 'scheduler', { prompt: 'x' });
      assert.ok(choices.some((choice) => choice.value === 'UniPC'));
      const typed = await world.standin.autocomplete(alice, 'imagine', 'style', {});
      assert.ok(typed.some((choice) => choice.value === 'base'));
      const own = await world.standin.autocomplete(alice, 'imagine', 'style', { style: 'my-style' });
      assert.ok(
        own.some((choice) => choice.value === 'my-style'),
        'typed text is offered too',
      );
    });

    it('answers typed text longer than a Discord choice can carry (Discord would refuse the whole answer)', async () => {
      const choices = await world.standin.autocomplete(alice, 'imagine', 'style', { style: 'x'.repeat(150) });
      assert.deepEqual(choices, [], 'answered, with nothing too long to offer');
    });
  });
