import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { AttachmentRef, InteractionRecord } from '../../bot/test-support/discord-standin/server.ts';
import {
  API_KEY,
  BOT_TOKEN,
  CHANNEL,
  GUILD,
  alice,
  buttonIds,
  buttonLabels,
  startWorld,
  type World,
} from './world.ts';

type Body = Record<string, unknown>;

function img2imgPosts(world: World): Body[] {
  return world.sandbox.requests
    .filter((request) => request.method === 'POST' && request.path.startsWith('/v2/sdxl-img2img'))
    .map((request) => request.body as Body);
}

/** Whether the sandbox's marker for an elided string stands for the base64 of these bytes. */
function carries(marker: unknown, bytes: Buffer): boolean {
  const match = /sha256:([0-9a-f]{64})/.exec(String(marker));
  return Boolean(
    match && createHash('sha256').update(bytes.toString('base64'), 'utf8').digest('hex') === match[1],
  );
}

/** A photo-like PNG: noise, so it is a real image of some size, not a flat colour. */
async function png(width: number, height: number): Promise<Buffer> {
  return sharp({
    create: {
      width,
      height,
      channels: 3,
      background: { r: 90, g: 140, b: 200 },
      noise: { type: 'gaussian', mean: 128, sigma: 40 },
    },
  })
    .png()
    .toBuffer();
}

function slash(world: World, options: Record<string, string | number | boolean | AttachmentRef>) {
  return world.standin.slash({ ...alice, guildId: GUILD, channelId: CHANNEL }, 'imagine', options);
}

/** Nothing public is left of the interaction: no result and no "is thinking…". */
function nothingPublic(world: World, record: InteractionRecord): boolean {
  return [record.originalMessageId, ...record.followupIds]
    .map((id) => (id ? world.standin.message(id) : undefined))
    .every((message) => !message || message.deleted || message.ephemeral);
}

describe('/imagine with an image attached', () => {
  let world: World;
  let photo: Buffer;
  before(async () => {
    world = await startWorld();
    photo = await png(320, 240);
  });
  after(async () => {
    await world.close();
  });

  it('varies the attached image through sdxl-img2img at the strength given, and 🔄 varies it again', async () => {
    const file = world.standin.upload({ filename: 'harbour.png', bytes: photo, contentType: 'image/png' });
    const billedBefore = world.sandbox.billed.length;
    const result = await world.result(
      slash(world, { prompt: 'the harbour at dusk', image: file, strength: 0.6, samples: 2, steps: 30 }),
    );
    assert.match(result.content, /Variation \(strength 0\.6\) of `harbour\.png`/);
    assert.match(result.content, /the harbour at dusk/);
    const sent = img2imgPosts(world).at(-1)!;
    assert.ok(carries(sent.image, photo), 'the attached bytes are what was varied');
    assert.equal(sent.prompt, 'the harbour at dusk');
    assert.equal(sent.strength, 0.6);
    assert.equal(sent.samples, 2);
    assert.equal(sent.num_inference_steps, 30);
    assert.equal(world.sandbox.billed.length, billedBefore + 1, 'one billed call');
    assert.equal(world.sandbox.billed.at(-1)?.slug, 'sdxl-img2img');
    assert.deepEqual(buttonLabels(result).slice(0, 4), ['U1', 'U2', 'V1', 'V2']);

    // The file came from Discord's CDN with nothing of the bot's: no token, no key, no authorization.
    const downloads = world.standin.cdn.filter((record) => record.path.includes(file.attachmentId));
    assert.equal(downloads.length, 1);
    const headers = JSON.stringify(downloads[0]!.headers);
    assert.equal(downloads[0]!.headers.authorization, undefined);
    assert.ok(!headers.includes(BOT_TOKEN) && !headers.includes(API_KEY));
    assert.ok(!/x-api-key/i.test(headers));

    // ℹ️ says what it is; 🔄 varies the same stored image with a new seed, no new download.
    const info = await world.info(alice, result);
    assert.match(
      info.content,
      /Variation \(strength 0\.6\) of `harbour\.png`, attached by the requester \(sdxl-img2img\)/,
    );
    const again = await world.result(
      world.standin.clickButton(
        alice,
        result,
        buttonIds(result).find((id) => id.includes(':reroll:'))!,
      ),
    );
    assert.match(again.content, /Variation \(strength 0\.6\) of `harbour\.png`/);
    assert.ok(carries(img2imgPosts(world).at(-1)!.image, photo));
    assert.notEqual(img2imgPosts(world).at(-1)!.seed, sent.seed);
    assert.equal(world.standin.cdn.length, 1, 'the image was downloaded once');
  });

  it('varies at 0.75 when no strength is given', async () => {
    const file = world.standin.upload({
      filename: 'a.jpg',
      bytes: await sharp(photo).jpeg().toBuffer(),
      contentType: 'image/jpeg',
    });
    const result = await world.result(slash(world, { prompt: 'a boat', image: file }));
    assert.match(result.content, /Variation \(strength 0\.75\) of `a\.jpg`/);
    assert.equal(img2imgPosts(world).at(-1)!.strength, 0.75);
  });

  it('refuses bad input privately, naming it, before anything is queued or billed', async () => {
    const notAnImage = Buffer.from('these are my holiday notes, not a picture at all\n'.repeat(20));
    const tall = await png(5000, 16);
    const cases: { options: Record<string, string | number | boolean | AttachmentRef>; says: RegExp }[] = [
      {
        // Discord guesses the type from the name: the bytes are what count.
        options: {
          prompt: 'x',
          image: world.standin.upload({ filename: 'cat.png', bytes: notAnImage, contentType: 'image/png' }),
        },
        says: /`image`: "cat\.png" is not a JPEG, PNG or WebP image \(980 bytes of something else\); allowed: a JPEG, PNG or WebP image up to 10 MB and 4096 pixels a side\./,
      },
      {
        options: {
          prompt: 'x',
          image: world.standin.upload({
            filename: 'notes.txt',
            bytes: notAnImage,
            contentType: 'text/plain; charset=utf-8',
          }),
        },
        says: /`image`: "notes\.txt" is text\/plain, not an image; allowed: a JPEG, PNG/,
      },
      {
        options: {
          prompt: 'x',
          image: world.standin.upload({ filename: 'huge.png', bytes: photo, size: 12 * 1024 * 1024 }),
        },
        says: /`image`: "huge\.png" is 12\.0 MB; allowed: a JPEG, PNG or WebP image up to 10 MB/,
      },
      {
        // Discord said it was small; the download stops one byte past the limit all the same.
        options: {
          prompt: 'x',
          image: world.standin.upload({
            filename: 'liar.png',
            bytes: Buffer.concat([photo, Buffer.alloc(10 * 1024 * 1024)]),
            size: 1000,
          }),
        },
        says: /`image`: "liar\.png" is more than 10\.0 MB/,
      },
      {
        options: { prompt: 'x', image: world.standin.upload({ filename: 'tall.png', bytes: tall }) },
        says: /`image`: "tall\.png" is 5000x16 pixels; allowed: .*4096 pixels a side/,
      },
      {
        options: {
          prompt: 'x',
          image: world.standin.upload({ filename: 'ok.png', bytes: photo }),
          strength: 1.5,
        },
        says: /`strength`: 1\.5 is not allowed; allowed: a number from 0 to 1\./,
      },
      {
        options: { prompt: 'x', strength: 0.5 },
        says: /`strength`: 0\.5 applies to an attached `image` only/,
      },
      {
        options: {
          prompt: 'x',
          image: world.standin.upload({ filename: 'ok.png', bytes: photo }),
          style: 'base',
          refiner: false,
        },
        says: /`style`, `refiner`: not used when an `image` is attached/,
      },
    ];
    const requests = world.sandbox.requests.length;
    const billed = world.sandbox.billed.length;
    for (const { options, says } of cases) {
      const record = slash(world, options);
      const reply = await world.privateReply(record);
      assert.match(reply.content, says);
      assert.ok(nothingPublic(world, record), `nothing public is left for ${String(says)}`);
    }
    assert.equal(world.sandbox.requests.length, requests, 'nothing reached the image service');
    assert.equal(world.sandbox.billed.length, billed, 'nothing billed');
  });
});

describe('✏️ with a file upload', () => {
  let world: World;
  let photo: Buffer;
  before(async () => {
    world = await startWorld();
    photo = await png(256, 256);
  });
  after(async () => {
    await world.close();
  });

  /** Clicks ✏️ and returns the modal the bot showed. */
  async function openEdit(message: Awaited<ReturnType<World['result']>>) {
    const click = world.standin.clickButton(
      alice,
      message,
      buttonIds(message).find((id) => id.includes(':edit:'))!,
    );
    const shown = await world.standin.waitFor(
      () => click.callbacks.find((callback) => callback.type === 9),
      'the modal',
    );
    return shown.data as { custom_id: string; components: Record<string, unknown>[] };
  }

  it('opens a form with the prompt and an optional image upload, and an uploaded image is varied with the same seed', async () => {
    const first = await world.result(world.imagine(alice, { prompt: 'a lighthouse', seed: 4321, steps: 28 }));
    const modal = await openEdit(first);
    // Discord's layout: each field inside a Label; the upload (type 19) takes 0 or 1 file.
    assert.deepEqual(
      modal.components.map((label) => [label.type, (label.component as { type: number }).type]),
      [
        [18, 4],
        [18, 19],
      ],
    );
    const upload = modal.components[1]!.component as {
      required?: boolean;
      min_values?: number;
      max_values?: number;
    };
    assert.deepEqual([upload.required, upload.min_values, upload.max_values], [false, 0, 1]);
    assert.equal((modal.components[0]!.component as { value?: string }).value, 'a lighthouse');

    const file = world.standin.upload({ filename: 'sketch.png', bytes: photo });
    const billed = world.sandbox.billed.length;
    const edited = await world.result(
      world.standin.submitModal(
        alice,
        modal.custom_id,
        { prompt: 'a lighthouse in a storm', image: [file] },
        first,
      ),
    );
    assert.match(edited.content, /Variation \(strength 0\.75\) of `sketch\.png`/);
    assert.match(edited.content, /a lighthouse in a storm/);
    const sent = img2imgPosts(world).at(-1)!;
    assert.ok(carries(sent.image, photo), 'the uploaded file is the source');
    assert.equal(sent.seed, 4321, 'the same seed');
    assert.equal(sent.num_inference_steps, 28, 'the same settings');
    assert.equal(world.sandbox.billed.length, billed + 1);

    // ✏️ on that result without a file keeps varying the uploaded image.
    const again = await openEdit(edited);
    const kept = await world.result(
      world.standin.submitModal(alice, again.custom_id, { prompt: 'a lighthouse at night' }, edited),
    );
    assert.match(kept.content, /Variation \(strength 0\.75\) of `sketch\.png`/);
    assert.ok(carries(img2imgPosts(world).at(-1)!.image, photo));
    assert.equal(img2imgPosts(world).at(-1)!.prompt, 'a lighthouse at night');
  });

  it('refuses an uploaded file that is not an image, privately, with nothing billed', async () => {
    const first = await world.result(world.imagine(alice, { prompt: 'a cabin' }));
    const modal = await openEdit(first);
    const file = world.standin.upload({
      filename: 'photo.webp',
      bytes: Buffer.from('%PDF-1.7 not a picture'),
      contentType: 'image/webp',
    });
    const requests = world.sandbox.requests.length;
    const record = world.standin.submitModal(
      alice,
      modal.custom_id,
      { prompt: 'a cabin', image: [file] },
      first,
    );
    const reply = await world.privateReply(record);
    assert.match(reply.content, /`image`: "photo\.webp" is not a JPEG, PNG or WebP image/);
    assert.ok(nothingPublic(world, record));
    assert.equal(world.sandbox.requests.length, requests, 'nothing sent to the image service');
  });
});
