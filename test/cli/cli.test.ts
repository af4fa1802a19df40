import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { jsonLines, summaryOf } from './harness.ts';

/** Credits summed to the micro-credit, as the CLI sums them. */
const sum = (values: number[]) => values.reduce((total, value) => total + Math.round(value * 1e6), 0) / 1e6;

const BIN = fileURLToPath(new URL('../../cli/bin/sdxl.js', import.meta.url));
const KEY = 'SG_clisecretkey0000777';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const captured: Run[] = [];

function sdxl(args: string[], env: Record<string, string> = {}, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const run = { code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr };
        captured.push(run);
        resolve(run);
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

describe('the sdxl command', () => {
  let sandbox: Sandbox;
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    sandbox = await startSandbox({ apiKey: KEY });
    env = {
      SDXL_API_KEY: KEY,
      SDXL_BASE_URL: sandbox.url,
      // Kept between runs (job times, prices) in a folder of this file's own, not the user's cache.
      SDXL_CACHE_DIR: await mkdtemp(path.join(tmpdir(), 'sdxl-cli-cache-')),
    };
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sdxl-cli-'));
    sandbox.credits = 100;
    sandbox.configure({ statuses: [], rateWindowMs: 60_000 });
  });
  after(async () => {
    await sandbox.close();
    for (const run of captured) {
      assert.ok(
        !run.stdout.includes(KEY) && !run.stderr.includes(KEY),
        `key printed: ${run.stdout}${run.stderr}`,
      );
    }
  });

  it('imagine --sandbox writes a JPEG and says where, with no key at all', async () => {
    const run = await sdxl(['imagine', '--sandbox', 'a panda astronaut in a neon bar', '--out', dir], {});
    assert.equal(run.code, 0, run.stderr);
    const files = await readdir(dir);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^a-panda-astronaut-in-a-neon-bar-\d+-0\.jpg$/);
    assert.ok(run.stdout.includes(path.join(dir, files[0]!)), run.stdout);
    assert.ok((await stat(path.join(dir, files[0]!))).size > 1000);
  });

  it('--json prints only one JSON object describing what was written', async () => {
    const run = await sdxl(['imagine', 'json please', '--seed', '77', '--json', '--out', dir], env);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const output = JSON.parse(lines[0]!);
    assert.deepEqual(Object.keys(output).sort(), [
      'cost',
      'images',
      'lowCredits',
      'remainingCredits',
      'requestId',
    ]);
    assert.match(output.requestId, /^\S+$/);
    assert.equal(output.cost, 0.008, 'what the sandbox billed');
    const [image] = output.images;
    assert.equal(image.seed, 77);
    assert.equal(image.index, 0);
    assert.equal(image.mimeType, 'image/jpeg');
    assert.equal((await stat(image.path)).size, image.bytes);
    assert.equal(output.remainingCredits, 99.992);
    assert.equal(output.lowCredits, false);
    assert.equal(run.stderr, '', 'no progress display when piped');
  });

  it('maps every flag to its field', async () => {
    const run = await sdxl(
      [
        'imagine',
        'flags',
        '--negative-prompt',
        'blur',
        '--style',
        'base',
        '--samples',
        '2',
        '--scheduler',
        'Euler a',
        '--steps',
        '30',
        '--guidance-scale',
        '9.5',
        '--strength',
        '0.3',
        '--high-noise-fraction',
        '0.7',
        '--seed',
        '5',
        '--width',
        '1024',
        '--height',
        '1024',
        '--no-refiner',
        '--json',
        '--out',
        dir,
      ],
      env,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(sandbox.requests.at(-1)!.body, {
      prompt: 'flags',
      negative_prompt: 'blur',
      style: 'base',
      samples: 2,
      scheduler: 'Euler a',
      num_inference_steps: 30,
      guidance_scale: 9.5,
      strength: 0.3,
      high_noise_fraction: 0.7,
      seed: 5,
      img_width: 1024,
      img_height: 1024,
      refiner: false,
      base64: true,
    });
    assert.equal(JSON.parse(run.stdout).images.length, 2);
    assert.equal((await readdir(dir)).length, 2);
  });

  it('refuses an out-of-range flag with exit 2, naming field, value and range, sending nothing', async () => {
    const before = sandbox.requests.length;
    const run = await sdxl(['imagine', 'x', '--steps', '500', '--out', dir], env);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /steps: 500 is not allowed; allowed: a whole number from 20 to 100/);
    assert.equal(sandbox.requests.length, before);
    const text = await sdxl(['imagine', 'x', '--guidance-scale', 'lots'], env);
    assert.equal(text.code, 2);
    assert.match(text.stderr, /--guidance-scale: "lots" is not a number/);
    const unknown = await sdxl(['imagine', 'x', '--stepz', '30'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--stepz/);
  });

  it('asks for a key when none is set, pointing at --sandbox', async () => {
    const run = await sdxl(['imagine', 'x'], { SDXL_BASE_URL: sandbox.url });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /SDXL_API_KEY/);
    assert.match(run.stderr, /--sandbox/);
  });

  it('exits 3 when the key is refused, saying what to check', async () => {
    const run = await sdxl(['imagine', 'x', '--out', dir], {
      SDXL_API_KEY: 'SG_wrong_key_123456',
      SDXL_BASE_URL: sandbox.url,
    });
    assert.equal(run.code, 3);
    assert.match(run.stderr, /401/);
    assert.match(run.stderr, /SDXL_API_KEY/);
    assert.ok(!run.stderr.includes('SG_wrong_key_123456'));
  });

  it('exits 4 when credits run out', async () => {
    sandbox.credits = 0;
    const run = await sdxl(['imagine', 'x', '--out', dir], env);
    assert.equal(run.code, 4);
    assert.match(run.stderr, /406/);
  });

  it('exits 5 when still rate limited after retries', async () => {
    sandbox.configure({ statuses: [429, 429, 429], rateWindowMs: 50 });
    const run = await sdxl(['imagine', 'x', '--json', '--out', dir], env);
    assert.equal(run.code, 5);
    assert.equal(JSON.parse(run.stdout).error.code, 'rate_limited');
  });

  it('exits 1 on a server error that outlasts the retries', async () => {
    sandbox.configure({ statuses: [500, 500, 500] });
    const run = await sdxl(['imagine', 'x', '--out', dir], env);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /500/);
  });

  it('warns on stderr when credits fall below SDXL_LOW_CREDITS', async () => {
    sandbox.credits = 3;
    const run = await sdxl(['imagine', 'x', '--out', dir], { ...env, SDXL_LOW_CREDITS: '5' });
    assert.equal(run.code, 0);
    assert.match(run.stderr, /Warning: 2\.992 credits left, below 5/);
  });

  it('--prompts runs every line and prints one JSON object a prompt', async () => {
    const file = path.join(dir, 'prompts.txt');
    await writeFile(file, '# daily posts\nfirst prompt\n\nsecond prompt\nthird prompt\n');
    const run = await sdxl(['imagine', '--prompts', file, '--json', '--out', path.join(dir, 'img')], env);
    assert.equal(run.code, 0, run.stderr);
    const lines = jsonLines(run.stdout) as unknown as Array<{
      prompt: string;
      images: unknown[];
      error?: unknown;
    }>;
    assert.deepEqual(summaryOf(run.stdout), {
      prompts: 3,
      images: 3,
      spent: sum(sandbox.billed.slice(-3).map((call) => call.cost)),
      skipped: 0,
      failed: 0,
    });
    assert.deepEqual(lines.map((line) => line.prompt).sort(), [
      'first prompt',
      'second prompt',
      'third prompt',
    ]);
    assert.ok(lines.every((line) => line.images.length === 1 && !line.error));
    const images = (await readdir(path.join(dir, 'img'))).filter((name) => name.endsWith('.jpg'));
    assert.equal(images.length, 3);
  });

  it('--prompts reads stdin and stops spending once the key is refused', async () => {
    const run = await sdxl(
      ['imagine', '--prompts', '-', '--json', '--concurrency', '1', '--out', dir],
      { SDXL_API_KEY: 'SG_wrong_key_123456', SDXL_BASE_URL: sandbox.url },
      'one\ntwo\nthree\n',
    );
    assert.equal(run.code, 3);
    const lines = jsonLines(run.stdout);
    assert.deepEqual(summaryOf(run.stdout), { prompts: 3, images: 0, spent: 0, skipped: 2, failed: 1 });
    assert.equal(lines.length, 3);
    assert.equal(lines.filter((line) => line.error?.code === 'unauthorized').length, 1);
    assert.equal(lines.filter((line) => line.error?.code === 'skipped').length, 2);
  });

  it('credits prints the balance', async () => {
    sandbox.credits = 12.25;
    const run = await sdxl(['credits', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).total, 12.25);
    const human = await sdxl(['credits'], env);
    assert.match(human.stdout, /^12\.25 credits/);
  });

  it('sandbox serves until interrupted', async () => {
    const child = execFile(process.execPath, [BIN, 'sandbox', '--port', '0', '--credits', '3'], {
      env: { PATH: process.env.PATH ?? '' },
    });
    const url = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout!.on('data', (chunk) => {
        text += chunk;
        const match = /listening on (\S+)/.exec(text);
        if (match) resolve(match[1]!);
      });
      child.on('exit', () => reject(new Error(`exited: ${text}`)));
    });
    const response = await fetch(`${url}/get-user-credits`, { headers: { 'x-api-key': 'sandbox-key' } });
    assert.deepEqual(await response.json(), { credits: 3, 'free-credits': 0 });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGINT');
    assert.equal(await exited, 0);
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
});
