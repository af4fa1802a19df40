// A --prompts batch keeps a journal in --out: kill -9 it while calls are in flight, run the same
// command again, and every prompt is billed once and every image saved.
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CliWorld, batchArgs, journalEvents, jsonLines, until } from './harness.ts';

const PROMPTS = Array.from({ length: 10 }, (_, i) => `crash test prompt number ${i}`);

describe('sdxl imagine --prompts: the journal', () => {
  const world = new CliWorld();
  let file: string;

  before(async () => {
    await world.start({ recordLimit: 10_000 });
    file = path.join(world.dir, 'prompts.txt');
    await writeFile(file, `${PROMPTS.join('\n')}\n`);
  });
  beforeEach(() => {
    world.sandbox.configure({ latencyMs: 0, queueMs: 0 });
    world.sandbox.requests.length = 0;
    world.sandbox.billed.length = 0;
  });
  after(() => world.close());

  const submits = () =>
    world.sandbox.requests.filter((request) => request.method === 'POST' && request.path.startsWith('/v2/'));
  const billedPrompts = () => world.sandbox.billed.map((call) => call.prompt);

  it('survives kill -9 while calls are in flight: run again, each prompt is billed once and every image is saved', async () => {
    world.sandbox.configure({ latencyMs: 1500 });
    const out = path.join(world.dir, 'crash');
    const args = batchArgs(file, out, '--concurrency', '4');
    const first = world.spawn(args);
    // Four jobs submitted and recorded, none done: they are being made when sdxl dies.
    await journalEvents(out, 'submitted', 4);
    first.child.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.code, 137);
    const journal = await readFile(path.join(out, '.sdxl-journal.jsonl'), 'utf8');
    assert.ok(journal.includes('"submitted"'), 'the journal holds the submitted request ids');

    world.sandbox.configure({ latencyMs: 50 });
    const second = await world.run(args);
    assert.equal(second.code, 0, second.stderr);
    const lines = jsonLines(second.stdout);
    assert.deepEqual(lines.map((line) => line.prompt).sort(), [...PROMPTS].sort());
    assert.ok(
      lines.every((line) => line.images.length === 1 && !line.error),
      second.stdout,
    );

    // Each prompt submitted once across both runs, billed once, and its image on disk.
    const submitted = submits().map((request) => (request.body as { prompt: string }).prompt);
    assert.deepEqual([...submitted].sort(), [...PROMPTS].sort());
    // Jobs still running when the first run died finish and are billed, once.
    await until(() => world.sandbox.billed.length >= PROMPTS.length, 'every job billed');
    assert.deepEqual([...billedPrompts()].sort(), [...PROMPTS].sort());
    const images = (await readdir(out)).filter((name) => name.endsWith('.jpg'));
    assert.equal(images.length, PROMPTS.length);

    // A third run sends nothing and reports what was saved.
    const before = submits().length;
    const third = await world.run(args);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(submits().length, before);
    assert.equal(jsonLines(third.stdout).length, PROMPTS.length);
  });

  it('takes a .jsonl file with options per line, and names a malformed line with exit 2 before anything is sent', async () => {
    const jsonl = path.join(world.dir, 'prompts.jsonl');
    await writeFile(
      jsonl,
      '{"prompt": "a red fox", "seed": 7}\n{"prompt": "a blue fox", "samples": 2, "negativePrompt": "blur"}\n',
    );
    const out = path.join(world.dir, 'jsonl');
    const run = await world.run(['imagine', '--prompts', jsonl, '--out', out, '--json', '--rpm', '1000']);
    assert.equal(run.code, 0, run.stderr);
    const lines = jsonLines(run.stdout);
    const red = lines.find((line) => line.prompt === 'a red fox')!;
    const blue = lines.find((line) => line.prompt === 'a blue fox')!;
    assert.equal(red.images[0]!.seed, 7);
    assert.equal(blue.images.length, 2);
    const bodies = submits().map((request) => request.body as Record<string, unknown>);
    assert.equal(bodies.find((body) => body.prompt === 'a blue fox')!.negative_prompt, 'blur');

    const bad = path.join(world.dir, 'bad.jsonl');
    await writeFile(bad, '{"prompt": "fine"}\n{"prompt": "broken",\n{"prompt": "x", "steps": 5}\n');
    world.sandbox.requests.length = 0;
    const refused = await world.run(['imagine', '--prompts', bad, '--out', out]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /bad\.jsonl" line 2 is not valid JSON/);
    const steps = path.join(world.dir, 'steps.jsonl');
    await writeFile(steps, '{"prompt": "x", "steps": 5}\n');
    const range = await world.run(['imagine', '--prompts', steps, '--out', out]);
    assert.equal(range.code, 2);
    assert.match(range.stderr, /steps: 5 is not allowed; allowed: a whole number from 20 to 100/);
    assert.match(range.stderr, /line 1/);
    assert.equal(world.sandbox.requests.length, 0);
  });

  it('--sync opts out of the async API: the batch still skips what it saved when run again', async () => {
    const out = path.join(world.dir, 'sync');
    const args = ['imagine', '--prompts', file, '--out', out, '--rpm', '1000', '--sync', '--json'];
    const first = await world.run(args);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(submits().length, 0);
    const posts = () =>
      world.sandbox.requests.filter((request) => request.path === '/v1/sdxl1.0-txt2img').length;
    assert.equal(posts(), PROMPTS.length);
    const again = await world.run(args);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(posts(), PROMPTS.length, 'nothing sent again');
  });
});
