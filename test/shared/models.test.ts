// The model declarations: what every front-end reads. Each model must describe itself fully, and a
// field whose default the contract does not know must stay out of the body unless set.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  InvalidRequestError,
  MODELS,
  UNKNOWN_DEFAULT,
  describeDefault,
  esrgan,
  findModel,
  modelFor,
  parseModelRequest,
  sdxlImg2Img,
  sdxlInpaint,
  toModelWire,
} from '@sdxl-kit/client';
import { maskImage, pngImage } from '../support/images.ts';

function refusal(run: () => unknown): InvalidRequestError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof InvalidRequestError, String(error));
    return error;
  }
  assert.fail('expected an InvalidRequestError');
}

describe('model declarations', () => {
  it('declares the four required models and the two welcome ones, each slug once', () => {
    const slugs = MODELS.map((model) => model.slug);
    assert.deepEqual([...slugs].sort(), [
      'esrgan',
      'sdxl-controlnet',
      'sdxl-img2img',
      'sdxl-inpaint',
      'sdxl1.0-txt2img',
      'ssd-1b',
    ]);
    assert.equal(findModel('esrgan'), esrgan);
    assert.equal(modelFor('vary'), sdxlImg2Img);
    assert.equal(modelFor('generate').slug, 'sdxl1.0-txt2img');
  });

  for (const model of MODELS) {
    it(`${model.slug}: every field has a label, words for what is allowed and a description; names and wire names are unique`, () => {
      assert.ok(model.title && model.summary && model.sources.length > 0);
      assert.ok(model.typicalSeconds > 0 && (model.price?.credits ?? 0) > 0);
      assert.equal(new Set(model.fields.map((field) => field.name)).size, model.fields.length);
      assert.equal(new Set(model.fields.map((field) => field.wire)).size, model.fields.length);
      for (const field of model.fields) {
        assert.ok(field.label && field.allowed && field.description, `${model.slug}.${field.name}`);
        if (field.min !== undefined && field.default !== undefined && typeof field.default === 'number') {
          assert.ok(field.default >= field.min, `${model.slug}.${field.name} default below min`);
        }
        if (field.values && field.default !== undefined && !field.open) {
          assert.ok(
            field.values.includes(field.default as never),
            `${model.slug}.${field.name} default not allowed`,
          );
        }
      }
    });
  }

  it('shows "unknown" for a default the contract does not know, and sends no such field unless set', async () => {
    const steps = sdxlImg2Img.fields.find((field) => field.name === 'steps')!;
    assert.equal(steps.default, undefined);
    assert.equal(describeDefault(steps), UNKNOWN_DEFAULT);
    const image = await pngImage(64, 48);
    const request = parseModelRequest(sdxlImg2Img, { image, prompt: 'a fox' });
    const wire = toModelWire(request, { image: 'BASE64' });
    // Only what the contract documents a default for is filled in: samples (1).
    assert.deepEqual(Object.keys(wire).sort(), ['image', 'prompt', 'samples']);
    const set = toModelWire(
      parseModelRequest(sdxlImg2Img, { image, prompt: 'a fox', steps: 30, strength: 0.4 }),
      {
        image: 'BASE64',
      },
    );
    assert.equal(set.num_inference_steps, 30);
    assert.equal(set.strength, 0.4);
  });

  it('esrgan: documented defaults are sent; scale takes 2, 4, 8 as numbers or text and refuses 3 naming what is allowed', async () => {
    const image = await pngImage(32, 32);
    const wire = toModelWire(parseModelRequest(esrgan, { image }), { image: 'https://x.test/a.png' });
    assert.deepEqual(wire, { image: 'https://x.test/a.png', scale: 2, output_format: 'jpeg', quality: 95 });
    assert.equal(parseModelRequest(esrgan, { image, scale: '4' }).values.scale, 4);
    const error = refusal(() => parseModelRequest(esrgan, { image, scale: 3 }));
    assert.equal(error.fields[0]?.field, 'scale');
    assert.match(error.message, /scale: 3 is not allowed; allowed: 2, 4 or 8/);
    assert.match(
      refusal(() => parseModelRequest(esrgan, { image, outputFormat: 'gif' })).message,
      /outputFormat: "gif".*jpeg, png or webp/,
    );
    assert.match(
      refusal(() => parseModelRequest(esrgan, { image, quality: 101 })).message,
      /quality: 101.*10 to 100/,
    );
  });

  it('reads an image from bytes, a data: URL and base64 alike, and passes an http(s) URL through', async () => {
    const bytes = await pngImage(20, 10);
    const forms = [bytes, `data:image/png;base64,${bytes.toString('base64')}`, bytes.toString('base64')];
    for (const form of forms) {
      const image = parseModelRequest(esrgan, { image: form }).values.image as {
        kind: string;
        width: number;
        height: number;
      };
      assert.deepEqual([image.kind, image.width, image.height], ['bytes', 20, 10]);
    }
    const url = parseModelRequest(esrgan, { image: 'https://images.example/cat.jpg' }).values.image;
    assert.deepEqual(url, { kind: 'url', url: 'https://images.example/cat.jpg' });
  });

  it('refuses what is not an image, naming the field and what is allowed, without echoing the bytes', () => {
    const text = Buffer.from('hello, this is a text file\n'.repeat(20));
    const error = refusal(() => parseModelRequest(esrgan, { image: text }));
    assert.equal(error.fields[0]?.field, 'image');
    assert.match(error.message, /image: \d+ bytes is not a JPEG, PNG or WebP image/);
    assert.ok(!error.message.includes('hello'));
    assert.match(
      refusal(() => parseModelRequest(esrgan, { image: './cat.png' })).message,
      /a file path\? read the file first/,
    );
    assert.match(refusal(() => parseModelRequest(esrgan, {})).message, /image is required/);
    // A PNG signature with its header cut off cannot be measured: refused, not sent.
    const cut = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0]);
    assert.match(refusal(() => parseModelRequest(esrgan, { image: cut })).message, /size cannot be read/);
  });

  it('inpaint: a mask of another size is refused, naming both sizes', async () => {
    const image = await pngImage(64, 64);
    const mask = await maskImage(32, 64, [0, 0, 8, 8]);
    const error = refusal(() => parseModelRequest(sdxlInpaint, { image, mask, prompt: 'a hat' }));
    assert.deepEqual(
      error.fields.map((field) => field.field),
      ['mask'],
    );
    assert.match(
      error.message,
      /mask: a 32x64 PNG is not allowed; allowed: a mask of the image's size, 64x64/,
    );
    const same = await maskImage(64, 64, [0, 0, 8, 8]);
    assert.doesNotThrow(() => parseModelRequest(sdxlInpaint, { image, mask: same, prompt: 'a hat' }));
  });

  it('sends fields the declaration lacks by their API name under extra, and refuses one that shadows a declared field', async () => {
    const image = await pngImage(16, 16);
    const request = parseModelRequest(esrgan, { image, extra: { face_enhance: true, tile: 256 } });
    assert.deepEqual(toModelWire(request, { image: 'u' }), {
      image: 'u',
      scale: 2,
      output_format: 'jpeg',
      quality: 95,
      face_enhance: true,
      tile: 256,
    });
    const shadow = refusal(() => parseModelRequest(esrgan, { image, extra: { scale: 3 } }));
    assert.match(
      shadow.message,
      /extra\.scale: not allowed; allowed: not a declared field: set the option scale instead/,
    );
    const unknown = refusal(() => parseModelRequest(esrgan, { image, faceEnhance: true }));
    assert.match(unknown.message, /faceEnhance: not a known option.*under "extra"/);
  });
});
