import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import ExifReader from 'exifreader';
import { embedText, parametersText, withParameters, type ModelImage } from '@sdxl-kit/client/core';
import { pngImage } from '../support/images.ts';
import { assertSameImageData, parametersIn, readParameters } from '../support/parameters.ts';

const txt2img = {
  model: 'sdxl1.0-txt2img',
  requestId: 'req-42',
  seed: 1234,
  request: {
    prompt: 'a panda astronaut, in a neon bar',
    negativePrompt: 'blurry',
    style: 'base',
    samples: 1,
    scheduler: 'UniPC',
    steps: 30,
    guidanceScale: 7.5,
    strength: 0.2,
    highNoiseFraction: 0.8,
    seed: 1234,
    width: 1024,
    height: 1024,
    refiner: true,
    base64: false,
  },
};

const image = async (width = 64, height = 48): Promise<ModelImage> => ({
  bytes: await pngImage(width, height),
  mimeType: 'image/png',
  index: 0,
  seed: 1234,
});

describe('generation parameters text', () => {
  it("is AUTOMATIC1111's layout: prompt, negative prompt, then its fields and ours", async () => {
    assert.equal(
      parametersText(txt2img, await image()),
      [
        'a panda astronaut, in a neon bar',
        'Negative prompt: blurry',
        'Steps: 30, Sampler: UniPC, CFG scale: 7.5, Seed: 1234, Size: 64x48, Model: sdxl1.0-txt2img, ' +
          'Style: base, Denoising strength: 0.2, High noise fraction: 0.8, Refiner: yes, Request id: req-42',
      ].join('\n'),
    );
  });

  it('quotes a value holding a comma or colon, leaves out an empty negative prompt, numbers the batch', async () => {
    const text = parametersText(
      {
        model: 'sdxl-img2img',
        request: { prompt: 'p', negativePrompt: '', samples: 2, scheduler: 'DPM++ 2M, Karras', steps: 20 },
      },
      { ...(await image()), index: 1, seed: 9 },
      { 'Source image': 'photos/cat: 1.png' },
    );
    assert.equal(
      text,
      'p\nSteps: 20, Sampler: "DPM++ 2M, Karras", Seed: 9, Size: 64x48, Model: sdxl-img2img, Batch size: 2, Batch pos: 1, Source image: "photos/cat: 1.png"',
    );
  });
});

describe('parameters written into image files (read back with exifreader)', () => {
  const text = parametersText(txt2img, { bytes: Buffer.alloc(0), index: 0, seed: 1234 });
  const unicode = `${text}\nüñï 🐼 “quotes” & <tags>`;
  const source = sharp({ create: { width: 40, height: 30, channels: 4, background: '#c83c1e80' } });
  const files: [string, () => Promise<Buffer>, 'image/png' | 'image/jpeg' | 'image/webp'][] = [
    ['PNG', () => source.clone().png().toBuffer(), 'image/png'],
    ['JPEG', () => source.clone().jpeg().toBuffer(), 'image/jpeg'],
    ['lossy WebP', () => source.clone().webp().toBuffer(), 'image/webp'],
    ['lossless WebP with alpha', () => source.clone().webp({ lossless: true }).toBuffer(), 'image/webp'],
    [
      'extended WebP (with an ICC profile)',
      () => source.clone().webp().keepIccProfile().toBuffer(),
      'image/webp',
    ],
  ];
  for (const [name, make, mimeType] of files) {
    for (const [which, written] of [
      ['Latin-1 text', text],
      ['Unicode text', unicode],
    ] as const) {
      it(`${name}: ${which} reads back whole, and the image data is unchanged`, async () => {
        const original = await make();
        const output = embedText(original, mimeType, written);
        assert.equal(parametersIn(output), written);
        await assertSameImageData(original, output);
        const size = await sharp(output).metadata();
        assert.deepEqual([size.width, size.height, size.hasAlpha], [40, 30, mimeType !== 'image/jpeg']);
      });
    }
  }

  it('PNG: Latin-1 text goes in tEXt, other text in iTXt, as Pillow writes them for AUTOMATIC1111', async () => {
    const original = await pngImage(8, 8);
    assert.ok(
      embedText(original, 'image/png', 'café').includes(Buffer.from('tEXtparameters\0café', 'latin1')),
    );
    const unicode = embedText(original, 'image/png', '熊猫');
    const at = unicode.indexOf(Buffer.from('iTXtparameters\0\0\0\0\0熊猫'));
    assert.ok(at > 0);
    // Its CRC is the one zlib computes over type and data (libpng would reject a wrong one).
    const length = unicode.readUInt32BE(at - 4);
    assert.equal(unicode.readUInt32BE(at + 4 + length), crc32(unicode.subarray(at, at + 4 + length)));
  });

  it('PNG: writing again replaces the parameters, it does not add a second set', async () => {
    const twice = embedText(embedText(await pngImage(8, 8), 'image/png', 'first'), 'image/png', 'second');
    assert.equal(readParameters(twice).png, 'second');
    assert.equal(twice.toString('latin1').split('tEXtparameters').length, 2);
  });

  it('JPEG: EXIF the file already has is kept (the text then goes in XMP only)', async () => {
    const original = await sharp({ create: { width: 16, height: 16, channels: 3, background: 'red' } })
      .jpeg()
      .withExif({ IFD0: { Artist: 'somebody' } })
      .toBuffer();
    const output = embedText(original, 'image/jpeg', text);
    const tags = ExifReader.load(output, { expanded: true });
    assert.equal(tags.exif?.Artist?.description, 'somebody');
    assert.equal(readParameters(output).xmp, text);
    await assertSameImageData(original, output);
  });

  it('a file whose structure is broken comes back as it was', () => {
    for (const [bytes, mimeType] of [
      [Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), 'image/png'],
      [Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0xff, 0xff]), 'image/jpeg'],
      [Buffer.from('RIFF\0\0\0\0WEBPVP8 \xff\0\0\0', 'latin1'), 'image/webp'],
    ] as const) {
      assert.equal(embedText(bytes, mimeType, text), bytes);
    }
  });

  it('withParameters writes each image its own seed and place; switched off, the bytes are untouched', async () => {
    const images = [await image(), { ...(await image()), index: 1, seed: 99 }];
    const result = { ...txt2img, request: { ...txt2img.request, samples: 2 } };
    const embedded = withParameters(result, images);
    assert.match(parametersIn(embedded[1]!.bytes)!, /Seed: 99, .*Batch size: 2, Batch pos: 1/);
    assert.match(parametersIn(embedded[0]!.bytes)!, /Seed: 1234, .*Batch pos: 0/);
    const off = withParameters(result, images, { enabled: false });
    assert.deepEqual(
      off.map((each) => each.bytes),
      images.map((each) => each.bytes),
    );
    assert.equal(parametersIn(off[0]!.bytes), undefined);
  });
});
