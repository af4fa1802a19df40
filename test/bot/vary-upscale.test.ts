import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { formatCredits } from '../../bot/src/credits.ts';
import {
  API_KEY,
  ARTIST_ROLE,
  BOT_TOKEN,
  alice,
  bob,
  button,
  buttonIds,
  buttonLabels,
  startWorld,
  type World,
} from './world.ts';

type Body = Record<string, unknown>;

/** The bodies the sandbox received on a model's async (v2) endpoint, in order: the bot submits every job there. */
function posts(world: World, slug: string): Body[] {
  return world.sandbox.requests
    .filter((request) => request.method === 'POST' && request.path.startsWith(`/v2/${slug}`))
    .map((request) => request.body as Body);
}

function billed(world: World, slug: string): number {
  return world.sandbox.billed.filter((call) => call.slug === slug).length;
}

/** The button of a message with this label. */
function assertNoSecrets(world: World): void {
  const everything = world.logs.join('') + world.everythingShown();
  assert.ok(!everything.includes(API_KEY), 'the API key is in no message and no log line');
  assert.ok(!everything.includes(BOT_TOKEN), 'the bot token is in no message and no log line');
}

/** Whether the sandbox's marker for an elided string stands for the base64 of these bytes. */
function carries(marker: unknown, bytes: Buffer): boolean {
  const match = /sha256:([0-9a-f]{64})/.exec(String(marker));
  if (!match) return false;
  const base64 = bytes.toString('base64');
  return [base64, `data:image/jpeg;base64,${base64}`].some(
    (text) => createHash('sha256').update(text, 'utf8').digest('hex') === match[1],
  );
}

describe('V1–V4 and the image row (Upscale 2x / 4x, Vary Subtle / Strong)', () => {
  let world: World;
  before(async () => {
    world = await startWorld();
  });
  after(async () => {
    assertNoSecrets(world);
    await world.close();
  });

  it('V2 varies image 2 through sdxl-img2img with the same prompt and settings and a new seed', async () => {
    const grid = await world.result(
      world.imagine(alice, {
        prompt: 'a harbour at noon --no boats',
        samples: 2,
        steps: 30,
        guidance: 9,
        seed: 555,
      }),
    );
    assert.deepEqual(buttonLabels(grid).slice(0, 4), ['U1', 'U2', 'V1', 'V2']);
    const second = grid.attachments.find((attachment) => attachment.filename.endsWith('-2.jpg'))!;
    const before = billed(world, 'sdxl-img2img');

    const variation = await world.result(world.standin.clickButton(alice, grid, button(grid, 'V2')));
    assert.notEqual(variation.id, grid.id, 'a new message');
    // V2's own heading: not that of Vary (Strong), though both vary at 0.75.
    assert.match(variation.content, /^\*\*Variation of image 2\*\* — \*\*a harbour at noon\*\* — <@\d+>/);
    assert.doesNotMatch(variation.content, /Vary \(Strong\)/);
    // The 2x2 layout shows the prompt once: in the heading, not again in the embed.
    const shown = variation.content + JSON.stringify(variation.embeds);
    assert.equal(shown.split('a harbour at noon').length - 1, 1, 'the prompt appears once');
    const sent = posts(world, 'sdxl-img2img').at(-1)!;
    assert.ok(sent, 'a POST /v2/sdxl-img2img');
    assert.equal(billed(world, 'sdxl-img2img'), before + 1, 'one billed img2img call');
    assert.ok(carries(sent.image, second.bytes), 'the source is image 2 as stored');
    assert.equal(sent.prompt, 'a harbour at noon');
    assert.equal(sent.negative_prompt, 'boats');
    assert.equal(sent.samples, 2);
    assert.equal(sent.num_inference_steps, 30);
    assert.equal(sent.guidance_scale, 9);
    assert.equal(sent.strength, 0.75);
    assert.notEqual(sent.seed, 555, 'a new seed');
    // Its own result, with its own buttons.
    assert.equal(variation.attachments.length, 3, 'two images and the grid');
    assert.deepEqual(buttonLabels(variation).slice(0, 4), ['U1', 'U2', 'V1', 'V2']);
    assert.ok(buttonIds(variation).every((id) => !id.includes(grid.id)));

    // ℹ️ on the variation names what it is; 🔄 varies the same image again.
    const info = await world.privateReply(
      world.standin.clickButton(alice, variation, button(variation, 'Parameters')),
    );
    assert.match(info.content, /Variation of image 2 of job `\w+` \(sdxl-img2img, strength 0\.75\)/);
    const again = await world.result(
      world.standin.clickButton(alice, variation, button(variation, 'New seed')),
    );
    assert.match(again.content, /Variation of image 2/);
    assert.equal(billed(world, 'sdxl-img2img'), before + 2);
  });

  it('U1 posts the image with its row; Upscale 4x posts it 4 times the size through esrgan', async () => {
    const grid = await world.result(world.imagine(alice, { prompt: 'a mountain hut', samples: 2 }));
    const full = await world.result(world.standin.clickButton(bob, grid, button(grid, 'U1')));
    assert.deepEqual(buttonLabels(full), ['Upscale 2x', 'Upscale 4x', 'Vary (Subtle)', 'Vary (Strong)']);
    const source = await sharp(full.attachments[0]!.bytes).metadata();

    const upscaled = await world.result(world.standin.clickButton(bob, full, button(full, 'Upscale 4x')));
    assert.equal(upscaled.attachments.length, 1);
    const meta = await sharp(upscaled.attachments[0]!.bytes).metadata();
    assert.deepEqual([meta.width, meta.height], [source.width! * 4, source.height! * 4]);
    assert.match(upscaled.content, /Upscaled 4x/);
    assert.doesNotMatch(upscaled.content, /Re-encoded/, 'under the limit, sent as esrgan made it');
    assert.equal(posts(world, 'esrgan').at(-1)?.scale, 4);
    assert.equal(billed(world, 'esrgan'), 1);
    assert.ok(
      world.sandbox.requests.some((request) => request.path.includes('upload-asset')),
      'the source went up as an asset first',
    );
    // 4096 pixels a side: no further upscale, but it can be varied like any result.
    assert.deepEqual(buttonLabels(upscaled), ['Vary (Subtle)', 'Vary (Strong)', 'Parameters', 'Delete']);

    const twice = await world.result(world.standin.clickButton(bob, full, button(full, 'Upscale 2x')));
    const meta2 = await sharp(twice.attachments[0]!.bytes).metadata();
    assert.equal(meta2.width, source.width! * 2);
  });

  it('an upscale is a result to go on from: its seed and credits, Vary, and a further upscale while the size allows', async () => {
    const grid = await world.result(world.imagine(bob, { prompt: 'a lighthouse at dusk', samples: 2 }));
    const full = await world.result(world.standin.clickButton(bob, grid, button(grid, 'U2')));
    const seed = /seed `(\d+)`/.exec(full.content)![1]!;
    const doubled = await world.result(world.standin.clickButton(bob, full, button(full, 'Upscale 2x')));
    const size = await sharp(doubled.attachments[0]!.bytes).metadata();
    assert.deepEqual([size.width, size.height], [2048, 2048]);
    // The seed it came from, its size and the credits left, as every result says.
    assert.match(
      doubled.content,
      new RegExp(
        `Seed \`${seed}\` · 2048×2048 · credits left: ${formatCredits(world.sandbox.credits).replace('.', '\\.')}`,
      ),
    );
    // 2048 pixels: Upscale 2x makes 4096, the largest the bot makes; 4x would make 8192.
    assert.deepEqual(buttonLabels(doubled), [
      'Upscale 2x',
      'Vary (Subtle)',
      'Vary (Strong)',
      'Parameters',
      'Delete',
    ]);

    const again = await world.result(world.standin.clickButton(bob, doubled, button(doubled, 'Upscale 2x')));
    const size2 = await sharp(again.attachments[0]!.bytes).metadata();
    assert.deepEqual([size2.width, size2.height], [4096, 4096]);
    assert.equal(posts(world, 'esrgan').at(-1)?.scale, 2);
    assert.deepEqual(buttonLabels(again), ['Vary (Subtle)', 'Vary (Strong)', 'Parameters', 'Delete']);

    // Vary (Subtle) of the upscale: sdxl-img2img of the upscaled image as stored.
    const before = billed(world, 'sdxl-img2img');
    const subtle = await world.result(
      world.standin.clickButton(bob, doubled, button(doubled, 'Vary (Subtle)')),
    );
    assert.match(subtle.content, /Vary \(Subtle\) of image 1/);
    assert.equal(billed(world, 'sdxl-img2img'), before + 1);
    const sent = posts(world, 'sdxl-img2img').at(-1)!;
    assert.equal(sent.strength, 0.35);
    assert.ok(carries(sent.image, doubled.attachments[0]!.bytes), 'the source is the 2x upscale');
  });

  it('Vary (Subtle) and Vary (Strong) send a low and a high strength', async () => {
    const grid = await world.result(world.imagine(alice, { prompt: 'a quiet library', samples: 2 }));
    const full = await world.result(world.standin.clickButton(alice, grid, button(grid, 'U2')));
    const subtle = await world.result(world.standin.clickButton(alice, full, button(full, 'Vary (Subtle)')));
    assert.match(subtle.content, /Vary \(Subtle\) of image 2/);
    assert.equal(posts(world, 'sdxl-img2img').at(-1)?.strength, 0.35);
    const strong = await world.result(world.standin.clickButton(alice, full, button(full, 'Vary (Strong)')));
    assert.match(strong.content, /^\*\*Vary \(Strong\) of image 2\*\*/);
    assert.equal(posts(world, 'sdxl-img2img').at(-1)?.strength, 0.75);
    assert.ok(
      carries(
        posts(world, 'sdxl-img2img').at(-1)?.image,
        grid.attachments.find((a) => a.filename.endsWith('-2.jpg'))!.bytes,
      ),
    );
  });

  it('a one-image result carries the image row itself', async () => {
    const single = await world.result(world.imagine(alice, { prompt: 'one pebble' }));
    assert.deepEqual(buttonLabels(single).slice(0, 4), [
      'Upscale 2x',
      'Upscale 4x',
      'Vary (Subtle)',
      'Vary (Strong)',
    ]);
  });
});

describe('an upscale over the attachment limit', () => {
  it('is re-encoded as JPEG to fit, keeps its size in pixels, and says so', async () => {
    const world = await startWorld();
    try {
      const grid = await world.result(
        world.imagine(alice, { prompt: 'a dense jungle', samples: 2, seed: 31337 }),
      );
      const full = await world.result(world.standin.clickButton(alice, grid, button(grid, 'U1')));
      // esrgan is deterministic: the first upscale gives its size, then the limit drops below it.
      const first = await world.result(world.standin.clickButton(alice, full, button(full, 'Upscale 4x')));
      const size = first.attachments[0]!.size;
      const limit = Math.floor(size * 0.6);
      world.standin.setAttachmentSizeLimit(limit);
      const upscaled = await world.result(world.standin.clickButton(alice, full, button(full, 'Upscale 4x')));
      const attachment = upscaled.attachments[0]!;
      assert.ok(attachment.size <= limit, `${attachment.size} fits ${limit}`);
      const meta = await sharp(attachment.bytes).metadata();
      assert.deepEqual([meta.width, meta.height, meta.format], [4096, 4096, 'jpeg']);
      assert.match(
        upscaled.content,
        /Re-encoded as JPEG at quality \d+ to fit the \d+\.\d MB upload limit here \(the upscale was \d+\.\d MB\); same size in pixels/,
      );
      assertNoSecrets(world);
    } finally {
      await world.close();
    }
  });
});

describe('V and the image row follow the /imagine rules', () => {
  let world: World;
  before(async () => {
    world = await startWorld({ BOT_ALLOWED_ROLES: ARTIST_ROLE });
  });
  after(async () => {
    assertNoSecrets(world);
    await world.close();
  });
  const artist = { ...alice, roles: [ARTIST_ROLE] };

  it('refuses a click by someone without the role, privately, and sends nothing', async () => {
    const grid = await world.result(world.imagine(artist, { prompt: 'three owls', samples: 2 }));
    const full = await world.result(world.standin.clickButton(artist, grid, button(grid, 'U1')));
    const requests = world.sandbox.requests.length;
    for (const [message, label] of [
      [grid, 'V1'],
      [full, 'Upscale 4x'],
      [full, 'Vary (Subtle)'],
    ] as const) {
      const click = world.standin.clickButton(bob, message, button(message, label));
      const reply = await world.privateReply(click);
      assert.match(reply.content, /need one of these roles/, `${label} refused as /imagine is`);
      const posted = [click.originalMessageId, ...click.followupIds]
        .map((id) => id && world.standin.message(id))
        .filter((shown) => shown && !shown.deleted && !shown.ephemeral);
      assert.deepEqual(posted, [], `${label}: nothing public`);
    }
    assert.equal(world.sandbox.requests.length, requests, 'nothing sent to the image service');
  });
});
