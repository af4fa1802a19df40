import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CliWorld } from './harness.ts';

describe('sdxl imagine --prompts: the file', () => {
  const world = new CliWorld();
  before(() => world.start());
  after(() => world.close());

  it('refuses a UTF-16 file (PowerShell ">", Notepad "Unicode") before sending anything', async () => {
    const file = path.join(world.dir, 'utf16.txt');
    await writeFile(
      file,
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a red fox\r\nblue whale\r\n', 'utf16le')]),
    );
    const run = await world.run(['imagine', '--prompts', file, '-o', world.dir]);
    assert.equal(run.code, 2);
    assert.ok(run.stderr.includes(file), run.stderr);
    assert.match(run.stderr, /line 1/);
    assert.match(run.stderr, /UTF-16/);
    assert.match(run.stderr, /UTF-8/);
    assert.equal(world.sandbox.requests.length, 0);
  });

  it('refuses NUL bytes (UTF-16 without a mark), naming the line', async () => {
    const file = path.join(world.dir, 'nul.txt');
    await writeFile(file, Buffer.concat([Buffer.from('fine\n# note\n'), Buffer.from('a fox\n', 'utf16le')]));
    const run = await world.run(['imagine', '--prompts', file, '-o', world.dir]);
    assert.equal(run.code, 2);
    assert.ok(run.stderr.includes(file), run.stderr);
    assert.match(run.stderr, /line 3/);
    assert.match(run.stderr, /UTF-8/);
    assert.equal(world.sandbox.requests.length, 0);
  });

  it('takes a .jsonl line in the API’s own field names as well as camelCase; an unknown or doubled key is refused naming it and the line', async () => {
    const file = path.join(world.dir, 'api-names.jsonl');
    await writeFile(
      file,
      [
        '{"prompt": "a fox", "negative_prompt": "blur", "num_inference_steps": 30, "guidance_scale": 9, "high_noise_fraction": 0.7, "img_width": 1024}',
        '{"prompt": "a hen", "negativePrompt": "fog", "steps": 40, "guidanceScale": 3}',
      ].join('\n'),
    );
    const run = await world.run(['imagine', '--prompts', file, '--json', '--rpm', '1000', '-o', world.dir]);
    assert.equal(run.code, 0, run.stderr);
    const bodies = world.sandbox.requests
      .filter((request) => request.method === 'POST')
      .map((request) => request.body as Record<string, unknown>);
    const pick = (prompt: string) => {
      const body = bodies.find((candidate) => candidate.prompt === prompt)!;
      return [body.negative_prompt, body.num_inference_steps, body.guidance_scale, body.high_noise_fraction];
    };
    assert.deepEqual(pick('a fox'), ['blur', 30, 9, 0.7]);
    assert.deepEqual(pick('a hen'), ['fog', 40, 3, 0.8]);

    const refusals: Array<[string, RegExp]> = [
      [
        '{"prompt": "x"}\n{"prompt": "y", "colour": "red"}',
        /"[^"]*bad\.jsonl" line 2: colour: not a known option/,
      ],
      [
        '{"prompt": "x", "num_inference_steps": 5}',
        /"[^"]*bad\.jsonl" line 1: num_inference_steps: 5 is not allowed; allowed: a whole number from 20 to 100/,
      ],
      [
        '{"prompt": "x", "steps": 30, "num_inference_steps": 40}',
        /"[^"]*bad\.jsonl" line 1 sets steps twice, as "steps" and as "num_inference_steps"/,
      ],
    ];
    const sent = world.sandbox.requests.length;
    const bad = path.join(world.dir, 'bad.jsonl');
    for (const [text, pattern] of refusals) {
      await writeFile(bad, text);
      const refused = await world.run(['imagine', '--prompts', bad, '-o', world.dir]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, pattern);
    }
    assert.equal(world.sandbox.requests.length, sent);
  });
});
