import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  InvalidRequestError,
  KNOWN_SCHEDULERS,
  MAX_SEED,
  REQUEST_FIELDS,
  parseRequest,
  randomSeed,
  toWireRequest,
} from '@sdxl-kit/client/core';

describe('request schema: defaults and the wire mapping', () => {
  it('fills every default of the contract and maps each option to its snake_case name', () => {
    const wire = toWireRequest({ ...parseRequest({ prompt: 'a fox' }), seed: 42 });
    assert.deepEqual(wire, {
      prompt: 'a fox',
      negative_prompt: '',
      style: 'base',
      samples: 1,
      scheduler: 'UniPC',
      num_inference_steps: 25,
      guidance_scale: 7.5,
      strength: 0.2,
      high_noise_fraction: 0.8,
      seed: 42,
      img_width: 1024,
      img_height: 1024,
      refiner: true,
      base64: false,
    });
  });

  const mapping: Array<[option: string, value: unknown, wire: string]> = [
    ['negativePrompt', 'blurry', 'negative_prompt'],
    ['style', 'cinematic', 'style'],
    ['samples', 2, 'samples'],
    ['scheduler', 'Euler a', 'scheduler'],
    ['steps', 40, 'num_inference_steps'],
    ['guidanceScale', 12.5, 'guidance_scale'],
    ['strength', 0.5, 'strength'],
    ['highNoiseFraction', 0.6, 'high_noise_fraction'],
    ['seed', 123, 'seed'],
    ['width', 1024, 'img_width'],
    ['height', 1024, 'img_height'],
    ['refiner', false, 'refiner'],
    ['base64', true, 'base64'],
  ];
  for (const [option, value, wire] of mapping) {
    it(`sends ${option} as ${wire}`, () => {
      const request = parseRequest({ prompt: 'p', [option]: value });
      assert.equal(toWireRequest(request)[wire], value);
    });
  }

  it('asks for base64 whenever several samples are wanted, so one billed call returns them all', () => {
    assert.equal(toWireRequest(parseRequest({ prompt: 'p', samples: 4 })).base64, true);
    assert.equal(toWireRequest(parseRequest({ prompt: 'p', samples: 1 })).base64, false);
  });

  it('describes every wire field of the contract once', () => {
    const wires = REQUEST_FIELDS.map((field) => field.wire).sort();
    assert.deepEqual(wires, [
      'base64',
      'guidance_scale',
      'high_noise_fraction',
      'img_height',
      'img_width',
      'negative_prompt',
      'num_inference_steps',
      'prompt',
      'refiner',
      'samples',
      'scheduler',
      'seed',
      'strength',
      'style',
    ]);
  });

  it('passes unknown style and scheduler names through for the server to judge', () => {
    const request = parseRequest({ prompt: 'p', style: 'neon-punk', scheduler: 'DPM++ 2M Karras' });
    assert.equal(request.style, 'neon-punk');
    assert.equal(request.scheduler, 'DPM++ 2M Karras');
    assert.ok(KNOWN_SCHEDULERS.includes('UniPC'));
  });
});

/** A value as a test name shows it: strings quoted with their escapes, so control characters stay visible. */
const shown = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value) : String(value));

describe('request schema: bounds', () => {
  const cases: Array<[field: string, good: unknown[], bad: unknown[], allowed: RegExp]> = [
    ['samples', [1, 4], [0, 5, 2.5, '2'], /whole number from 1 to 4/],
    ['steps', [20, 100], [19, 101, 25.5], /whole number from 20 to 100/],
    ['guidanceScale', [1, 25, 7.25], [0.99, 25.01, Number.NaN, Infinity], /number from 1 to 25/],
    ['strength', [0.1, 1], [0.09, 1.01, -1], /number from 0.1 to 1/],
    ['highNoiseFraction', [0, 0.99], [-0.01, 1.01], /number from 0 to 1/],
    ['seed', [-1, 0, MAX_SEED], [-2, MAX_SEED + 1, 1.5], /-1 to 999999999999999/],
    ['width', [1024], [512, 2048, 1023], /one of 1024/],
    ['height', [1024], [768], /one of 1024/],
    ['style', ['base', 'anything'], ['', '   ', 3], /non-empty text/],
    ['scheduler', ['UniPC', 'custom'], ['', null], /non-empty text/],
    [
      'prompt',
      ['a cat', 'two\nlines\tand a tab', 'ünïcode 猫'],
      ['', '\u0000a\u0000', 'a\u0007b'],
      /without control/,
    ],
    ['negativePrompt', ['', 'blurry'], ['\u0000', 'x\u001b[31m'], /text without control characters/],
    ['refiner', [true, false], ['yes', 1], /true or false/],
  ];
  for (const [field, good, bad, allowed] of cases) {
    it(`${field}: accepts ${good.map(shown).join(', ')}`, () => {
      for (const value of good) {
        const options = field === 'highNoiseFraction' ? { refiner: false } : {};
        assert.doesNotThrow(
          () => parseRequest({ prompt: 'p', ...options, [field]: value }),
          `${field}=${value}`,
        );
      }
    });
    it(`${field}: refuses ${bad.map(shown).join(', ')} naming the field, the value and what is allowed`, () => {
      for (const value of bad) {
        const error = captureInvalid({ prompt: 'p', [field]: value });
        const entry = error.fields.find((f) => f.field === field);
        assert.ok(entry, `no entry for ${field}=${String(value)}: ${error.message}`);
        assert.match(entry.allowed, allowed);
        assert.match(error.message, new RegExp(`${field}`));
        assert.equal(error.code, 'invalid_request');
      }
    });
  }

  it('refuses a missing or blank prompt', () => {
    assert.match(captureInvalid({}).message, /prompt is required/);
    assert.match(captureInvalid({ prompt: '  ' }).message, /prompt: " {2}" is not allowed/);
  });

  it('refuses the refiner with a high noise fraction of 1, saying why', () => {
    const error = captureInvalid({ prompt: 'p', highNoiseFraction: 1 });
    assert.match(error.message, /highNoiseFraction: 1 leaves the refiner no steps/);
    assert.doesNotThrow(() => parseRequest({ prompt: 'p', highNoiseFraction: 1, refiner: false }));
  });

  it('refuses unknown options by name, so a typo does not silently cost a call', () => {
    const error = captureInvalid({ prompt: 'p', negative_prompt: 'x', apiKey: 'SG_secretvalue123' });
    assert.match(error.message, /negative_prompt: not a known option/);
    assert.ok(!JSON.stringify(error).includes('SG_secretvalue123'), 'an unknown key’s value is not echoed');
  });

  it('keeps every invalid field in one error', () => {
    const error = captureInvalid({ prompt: 'p', steps: 5, samples: 9 });
    assert.deepEqual(error.fields.map((f) => f.field).sort(), ['samples', 'steps']);
    assert.match(error.message, /steps: 5 is not allowed; allowed: a whole number from 20 to 100/);
  });
});

describe('request schema: properties', () => {
  it('any input becomes an in-range request or an InvalidRequestError naming a field, never anything else', () => {
    const names = REQUEST_FIELDS.map((field) => field.name);
    const value = fc.oneof(
      fc.integer({ min: -10, max: 200 }),
      fc.double({ min: -5, max: 1.2e15, noNaN: false }),
      fc.string({ maxLength: 8 }),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.constant(1024),
      fc.constant(MAX_SEED + 1),
      fc.array(fc.integer(), { maxLength: 2 }),
    );
    const input = fc.oneof(
      fc.dictionary(fc.constantFrom(...names, 'bogus'), value, { maxKeys: 8 }),
      fc.record({ prompt: fc.string({ maxLength: 5 }) }, { requiredKeys: [] }),
      value,
    );
    fc.assert(
      fc.property(input, (candidate) => {
        let request;
        try {
          request = parseRequest(candidate);
        } catch (error) {
          assert.ok(error instanceof InvalidRequestError, `threw ${String(error)}`);
          assert.ok(error.fields.length > 0);
          for (const field of error.fields) {
            assert.ok(field.field && field.message.includes(field.field), field.message);
          }
          return;
        }
        for (const spec of REQUEST_FIELDS) {
          const actual = request[spec.name];
          if (spec.min !== undefined) assert.ok((actual as number) >= spec.min, `${spec.name}=${actual}`);
          if (spec.max !== undefined) assert.ok((actual as number) <= spec.max, `${spec.name}=${actual}`);
          if (spec.kind === 'integer') assert.ok(Number.isInteger(actual), `${spec.name}=${actual}`);
        }
        assert.ok(request.prompt.trim().length > 0);
        assert.ok(!(request.refiner && request.highNoiseFraction >= 1));
      }),
      { numRuns: 2000 },
    );
  });

  it('draws seeds across the whole allowed range', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (r) => {
        const seed = randomSeed(() => r);
        return Number.isSafeInteger(seed) && seed >= 0 && seed <= MAX_SEED;
      }),
    );
  });
});

function captureInvalid(input: unknown): InvalidRequestError {
  try {
    parseRequest(input);
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  assert.fail(`accepted ${JSON.stringify(input)}`);
}
