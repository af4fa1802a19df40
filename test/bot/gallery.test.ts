import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { alice, bob, buttonIds, buttonLabels, startWorld, type World } from './world.ts';

type Component = Record<string, unknown> & { type: number };

describe('results in Discord’s media gallery (Components V2)', () => {
  let world: World;
  before(async () => {
    world = await startWorld({ BOT_MEDIA_GALLERY: 'true', BOT_SPOILER: 'true' });
  });
  after(async () => {
    await world.close();
  });

  it('shows the images natively with the prompt as alt text, spoilered, and the buttons still work', async () => {
    const result = await world.result(
      world.imagine(alice, { prompt: 'four lanterns on a pier', samples: 4 }),
    );
    assert.equal(result.flags & (1 << 15), 1 << 15, 'IS_COMPONENTS_V2');
    assert.equal(result.content, '');
    assert.deepEqual(result.embeds, []);
    const components = result.components as Component[];
    assert.deepEqual(
      components.map((component) => component.type),
      [10, 12, 10, 1, 1, 1],
      'heading, gallery, seed line, then the U, V and 🔄 ✏️ ℹ️ 🗑 rows',
    );
    assert.match(String(components[0]!.content), /\*\*four lanterns on a pier\*\* — <@800000000000000001>/);
    assert.match(String(components[2]!.content), /Seed `\d+` · 4 images · credits left: /);
    // No composed grid: the gallery lays the four out itself.
    assert.equal(result.attachments.length, 4);
    const items = components[1]!.items as { media: { url: string }; description: string; spoiler: boolean }[];
    assert.deepEqual(
      items.map((item) => item.media.url),
      result.attachments.map((attachment) => `attachment://${attachment.filename}`),
    );
    assert.ok(result.attachments.every((attachment) => attachment.filename.startsWith('SPOILER_')));
    items.forEach((item, index) => {
      assert.equal(item.description, `four lanterns on a pier (${index + 1} of 4)`);
      assert.equal(item.spoiler, true);
    });
    assert.deepEqual(buttonLabels(result).slice(0, 8), ['U1', 'U2', 'U3', 'U4', 'V1', 'V2', 'V3', 'V4']);

    // V3 in an action row of a V2 message: a new variation, itself a gallery.
    const v3 = buttonIds(result)[6]!;
    const variation = await world.result(world.standin.clickButton(bob, result, v3));
    assert.match(String((variation.components as Component[])[0]!.content), /^\*\*Variation of image 3\*\*/);
    assert.equal(variation.flags & (1 << 15), 1 << 15);
    // U2 posts that image full size, as before.
    const full = await world.result(world.standin.clickButton(bob, result, buttonIds(result)[1]!));
    assert.equal(full.attachments.length, 1);
    assert.deepEqual(buttonLabels(full), ['Upscale 2x', 'Upscale 4x', 'Vary (Subtle)', 'Vary (Strong)']);

    // An upscale is posted in the gallery too, with its seed line and the buttons to go on.
    const upscale = full.components
      .flatMap((row) => (row.components ?? []) as { label?: string; custom_id?: string }[])
      .find((candidate) => candidate.label === 'Upscale 2x')!.custom_id!;
    const upscaled = await world.result(world.standin.clickButton(bob, full, upscale));
    assert.equal(upscaled.flags & (1 << 15), 1 << 15, 'IS_COMPONENTS_V2');
    assert.equal(upscaled.content, '');
    const parts = upscaled.components as Component[];
    assert.deepEqual(
      parts.map((component) => component.type),
      [10, 12, 10, 1, 1],
      'heading, gallery, seed line, the image row, then ℹ️ 🗑',
    );
    assert.match(String(parts[0]!.content), /^\*\*Upscaled 2x\*\* — \*\*four lanterns on a pier\*\*/);
    assert.match(String(parts[2]!.content), /Seed `\d+` · 2048×2048 · credits left: /);
    const item = (parts[1]!.items as { media: { url: string }; description: string; spoiler: boolean }[])[0]!;
    assert.equal(item.media.url, `attachment://${upscaled.attachments[0]!.filename}`);
    assert.equal(item.description, 'four lanterns on a pier');
    assert.equal(item.spoiler, true);
    assert.deepEqual(buttonLabels(upscaled), [
      'Upscale 2x',
      'Vary (Subtle)',
      'Vary (Strong)',
      'Parameters',
      'Delete',
    ]);
  });

  it('a one-image result is a gallery of one with its image row', async () => {
    const result = await world.result(world.imagine(alice, { prompt: 'a single lantern' }));
    const gallery = (result.components as Component[]).find((component) => component.type === 12)!;
    assert.equal((gallery.items as unknown[]).length, 1);
    assert.equal((gallery.items as { description: string }[])[0]!.description, 'a single lantern');
    assert.deepEqual(buttonLabels(result).slice(0, 4), [
      'Upscale 2x',
      'Upscale 4x',
      'Vary (Subtle)',
      'Vary (Strong)',
    ]);
  });
});
