// The editor's validators, as the built package ships them: each field that refuses a value says
// which field, the value and what is allowed (Node-RED shows that string as the field's tooltip; the
// browser test sees one on screen). The editor script runs here in a VM with just the piece of RED
// it calls at load time, so every field of both nodes is covered in milliseconds.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { runInNewContext } from 'node:vm';
import { before, describe, it } from 'node:test';
import { REQUEST_FIELDS } from '@sdxl-kit/client/core';

type Validate = (this: Record<string, unknown> | void, value: unknown, opt: object) => true | string;
type Definitions = Record<string, { defaults: Record<string, { value: unknown; validate?: Validate }> }>;

async function editorDefinitions(file: string): Promise<Definitions> {
  const html = await readFile(new URL(`../../../nodes/node-red/dist/${file}`, import.meta.url), 'utf8');
  const script = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(html)?.[1];
  assert.ok(script, `${file} has an editor script`);
  const definitions: Definitions = {};
  runInNewContext(script, {
    RED: {
      nodes: {
        registerType: (type: string, definition: Definitions[string]) => (definitions[type] = definition),
      },
    },
  });
  return definitions;
}

function validator(definitions: Definitions, type: string, property: string): Validate {
  const validate = definitions[type]?.defaults[property]?.validate;
  assert.ok(validate, `${type}.${property} has a validator`);
  // Node-RED only takes a returned string as the reason when the validator declares (value, opt).
  assert.equal(validate.length, 2, `${type}.${property}'s validator takes (value, opt)`);
  return validate;
}

describe('the Node-RED editor says why it refuses a value', () => {
  let definitions: Definitions;
  before(async () => {
    definitions = {
      ...(await editorDefinitions('sdxl.html')),
      ...(await editorDefinitions('sdxl-config.html')),
    };
  });

  it('names the field, the value and the allowed range for every bounded field of the sdxl node', () => {
    const bounded = REQUEST_FIELDS.filter((field) => field.min !== undefined && field.max !== undefined);
    assert.ok(bounded.length >= 5);
    // With the refiner off, which lets the noise fraction reach its maximum (see the next test).
    const node = { refiner: 'false' };
    for (const field of bounded) {
      const validate = validator(definitions, 'sdxl', field.name);
      assert.equal(validate.call(node, '', {}), true, `${field.name} may be left empty`);
      assert.equal(validate.call(node, String(field.min), {}), true);
      assert.equal(validate.call(node, String(field.max), {}), true);
      const tooHigh = String(Number(field.max) + 1);
      const refusal = validate.call(node, tooHigh, {});
      assert.equal(typeof refusal, 'string', `${field.name} refuses ${tooHigh}`);
      assert.match(String(refusal), new RegExp(`: "${tooHigh}" is not allowed; allowed: `));
      assert.ok(String(refusal).endsWith(`allowed: ${field.allowed}`), String(refusal));
    }
    assert.equal(
      validator(definitions, 'sdxl', 'steps')('20.5', {}),
      'Steps: "20.5" is not allowed; allowed: a whole number from 20 to 100',
    );
    assert.equal(
      validator(definitions, 'sdxl', 'refiner')('maybe', {}),
      'Refiner: "maybe" is not allowed; allowed: true or false',
    );
  });

  it('refuses a noise fraction of 1 unless the refiner is explicitly off, as the API does', () => {
    const validate = validator(definitions, 'sdxl', 'highNoiseFraction');
    // Node-RED calls a validator with the node as `this`.
    for (const refiner of ['', 'true', undefined]) {
      assert.equal(
        validate.call({ refiner }, '1', {}),
        'Noise fraction: "1" is not allowed; allowed: below 1 while the refiner is on',
        `refiner ${String(refiner)}`,
      );
      assert.equal(validate.call({ refiner }, '0.99', {}), true);
    }
    assert.equal(validate.call({ refiner: 'false' }, '1', {}), true, 'the refiner is off');
    assert.equal(validate.call({ refiner: false }, '1', {}), true, 'the refiner is off');
    assert.equal(validate.call({ refiner: '' }, '', {}), true, 'empty is the API default');
    assert.match(
      String(validate.call({ refiner: 'false' }, '1.5', {})),
      /^Noise fraction: "1\.5" is not allowed/,
    );
  });

  it("names the field, the value and what is allowed for the account's settings", () => {
    const cases: [string, string, RegExp][] = [
      [
        'baseUrl',
        'ftp://example.com',
        /^Base URL: "ftp:\/\/example\.com" is not allowed; allowed: an http\(s\) URL$/,
      ],
      ['requestsPerMinute', '0', /^Requests\/min: "0" is not allowed; allowed: a whole number, 1 or more/],
      ['maxInFlight', '33', /^In flight: "33" is not allowed; allowed: a whole number from 1 to 32$/],
      [
        'lowCreditsThreshold',
        '-1',
        /^Low credits: "-1" is not allowed; allowed: a number of credits, 0 or more$/,
      ],
      [
        'timeout',
        '601',
        /^Timeout \(s\): "601" is not allowed; allowed: a number of seconds above 0, up to 600$/,
      ],
      [
        'budget',
        '-0.5',
        /^Budget: "-0\.5" is not allowed; allowed: a number of credits, 0 or more \(empty: no budget\)$/,
      ],
      ['budgetWindow', 'week', /^Budget per: "week" is not allowed; allowed: hour or day$/],
    ];
    for (const [property, bad, message] of cases) {
      const validate = validator(definitions, 'sdxl-config', property);
      assert.match(String(validate(bad, {})), message);
      assert.equal(validate('', {}), true, `${property} may be left empty`);
    }
    assert.equal(validator(definitions, 'sdxl-config', 'maxInFlight')('4', {}), true);
    assert.equal(validator(definitions, 'sdxl-config', 'budget')('0.1', {}), true);
    assert.equal(
      validator(definitions, 'sdxl-config', 'budget')('0', {}),
      true,
      'a budget of 0 sends nothing',
    );
    assert.equal(validator(definitions, 'sdxl-config', 'budgetWindow')('hour', {}), true);
  });
});
