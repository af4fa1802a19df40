import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectImageType, extractImages, parseDecimal, readMetadata } from '@sdxl-kit/client/core';

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3, 0xff, 0xd9]);
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const WEBP = Buffer.concat([Buffer.from('RIFF'), Buffer.from([0, 0, 0, 0]), Buffer.from('WEBPVP8 ')]);

const json = (body: unknown, status = 200) => ({
  status,
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(JSON.stringify(body)),
});

describe('reading images from answers', () => {
  it('recognises JPEG, PNG and WebP by their bytes, and nothing else', () => {
    assert.equal(detectImageType(JPEG), 'image/jpeg');
    assert.equal(detectImageType(PNG), 'image/png');
    assert.equal(detectImageType(WEBP), 'image/webp');
    assert.equal(detectImageType(Buffer.from('<html>')), undefined);
    assert.equal(detectImageType(Buffer.alloc(0)), undefined);
  });

  const shapes: Array<[name: string, body: unknown, count: number]> = [
    ['image as a string', { image: JPEG.toString('base64') }, 1],
    ['image as an array', { image: [JPEG.toString('base64'), PNG.toString('base64')] }, 2],
    ['images as an array', { images: [JPEG.toString('base64'), WEBP.toString('base64')] }, 2],
    ['a data URL', { image: `data:image/jpeg;base64,${JPEG.toString('base64')}` }, 1],
    ['base64 wrapped over lines', { image: JPEG.toString('base64').replace(/(.{4})/g, '$1\n') }, 1],
  ];
  for (const [name, body, count] of shapes) {
    it(`reads base64 JSON with ${name}`, () => {
      const images = extractImages(json(body));
      assert.equal(images.length, count);
      assert.ok(images.every((image) => image.mimeType && image.bytes.length > 0));
    });
  }

  const broken: Array<[name: string, response: Parameters<typeof extractImages>[0], message: RegExp]> = [
    ['JSON with no image', json({ status: 'success' }), /holds no image/],
    [
      'base64 that is not an image',
      json({ image: Buffer.from('hello world').toString('base64') }),
      /not a JPEG/,
    ],
    ['text that is not base64', json({ image: '!!!! not base64 ????' }), /not valid base64/],
    ['a number for an image', json({ image: 5 }), /not a base64 string/],
    ['an empty body', { status: 200, headers: {}, body: Buffer.alloc(0) }, /empty body/],
    ['a JPEG cut off before its end', { status: 200, headers: {}, body: JPEG.subarray(0, 8) }, /cut off/],
  ];
  for (const [name, response, message] of broken) {
    it(`refuses ${name} as a bad response`, () => {
      assert.throws(
        () => extractImages(response),
        (error: { code: string; message: string }) => {
          assert.equal(error.code, 'bad_response');
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }
});

describe('reading headers', () => {
  it('parses credits as decimals, never truncating', () => {
    assert.equal(parseDecimal('0.0184921035'), 0.0184921035);
    assert.equal(parseDecimal(' 12 '), 12);
    assert.equal(parseDecimal('1e-3'), 0.001);
    assert.equal(parseDecimal('12abc'), undefined);
    assert.equal(parseDecimal(''), undefined);
    assert.equal(parseDecimal(undefined), undefined);
  });

  it('reads what is present and leaves out what is not', () => {
    assert.deepEqual(
      readMetadata({
        'x-remaining-credits': '9.992',
        'x-cost': '0.008',
        'x-seed-value': '123456789012',
        'x-request-id': 'abc',
        'x-generation-time': '6.34',
      }),
      { remainingCredits: 9.992, cost: 0.008, seed: 123456789012, requestId: 'abc', generationTime: 6.34 },
    );
    assert.deepEqual(readMetadata({ 'x-remaining-credits': 'n/a' }), {});
  });
});
