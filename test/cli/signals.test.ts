import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { open, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, CliWorld, jsonLines, until } from './harness.ts';

describe('sdxl imagine: signals', () => {
  const world = new CliWorld();
  before(() => world.start());
  after(() => world.close());

  /**
   * A --json batch on the synchronous API (one connection a call, so requests count calls), two calls
   * in flight, each answered after `latencyMs`; images go to `out`.
   */
  async function startBatch(prompts: string[], out: string, latencyMs: number) {
    const file = path.join(world.dir, `${out}.txt`);
    await writeFile(file, `${prompts.join('\n')}\n`);
    world.sandbox.configure({ latencyMs });
    const sent = world.sandbox.requests.length;
    const started = world.spawn([
      'imagine',
      '--prompts',
      file,
      '--json',
      '--concurrency',
      '2',
      '--rpm',
      '60',
      '--sync',
      '-o',
      path.join(world.dir, out),
    ]);
    return { started, sent };
  }

  it('on SIGTERM sends nothing more, lets the calls already sent finish and save, and exits 143', async () => {
    const { started, sent } = await startBatch(['one', 'two', 'three', 'four'], 'term', 1500);
    await until(() => world.sandbox.requests.length === sent + 2, 'two calls on the wire');
    started.child.kill('SIGTERM');
    const run = await started.done;
    assert.equal(run.code, 143, run.stderr);
    assert.match(run.stderr, /finish/);
    assert.equal(world.sandbox.requests.length, sent + 2, 'nothing was sent after the signal');
    const lines = jsonLines(run.stdout);
    const saved = lines.filter((line) => !line.error && line.images.length === 1);
    assert.equal(saved.length, 2, run.stdout);
    for (const line of saved) assert.ok((await stat(line.images[0]!.path)).size > 1000);
    const skipped = lines.filter((line) => line.error?.code === 'skipped');
    assert.equal(skipped.length, 2, run.stdout);
    for (const line of skipped) assert.match(line.error!.message, /^Not sent/);
  });

  it('a second SIGINT aborts at once, says the calls aborted may have been billed, and exits 130', async () => {
    const { started, sent } = await startBatch(['one', 'two', 'three', 'four'], 'int', 20_000);
    await until(() => world.sandbox.requests.length === sent + 2, 'two calls on the wire');
    started.child.kill('SIGINT');
    await until(() => /finish/.test(started.stderr()), 'the first signal to be acknowledged');
    started.child.kill('SIGINT');
    const run = await started.done;
    assert.equal(run.code, 130, run.stderr);
    const lines = jsonLines(run.stdout);
    const aborted = lines.filter((line) => line.error?.code === 'aborted');
    assert.equal(aborted.length, 2, run.stdout);
    for (const line of aborted) assert.match(line.error!.message, /may have been billed/);
    assert.equal(lines.filter((line) => line.error?.code === 'skipped').length, 2, run.stdout);
  });

  it('ends at once by the signal when interrupted before anything is sent (say, reading prompts that never come)', async () => {
    // A named pipe as the prompt file: opening it for writing returns once the command has opened it
    // for reading, so the signal comes while it is blocked there, handlers installed, nothing sent.
    const fifo = path.join(world.dir, 'prompts.fifo');
    execFileSync('mkfifo', [fifo]);
    const child = spawn(process.execPath, [BIN, 'imagine', '--sandbox', '--prompts', fifo], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    const writer = await open(fifo, 'w');
    try {
      child.kill('SIGINT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const { code, signal } = await ended;
      clearTimeout(killer);
      // Ended by the interrupt itself, as with no handler (a shell reports 130), not by SIGKILL.
      assert.deepEqual({ code, signal }, { code: null, signal: 'SIGINT' }, stderr);
    } finally {
      await writer.close();
    }
  });

  it('counts only the calls still on the wire when it says what it waits for', async () => {
    const { started, sent } = await startBatch(['one', 'two', 'three'], 'count', 1500);
    let stdout = '';
    started.child.stdout!.on('data', (chunk) => (stdout += chunk));
    await until(
      () => stdout.split('\n').length > 2 && world.sandbox.requests.length === sent + 3,
      'two images saved and the third call on the wire',
    );
    started.child.kill('SIGTERM');
    const run = await started.done;
    assert.equal(run.code, 143, run.stderr);
    assert.match(run.stderr, /1 call was already sent/);
    assert.equal(jsonLines(run.stdout).filter((line) => !line.error).length, 3, run.stdout);
  });

  it('on the async API (the default of a batch) a signal lets submitted jobs finish and save, submits nothing more, and a run again collects what a second signal cut off', async () => {
    const file = path.join(world.dir, 'async.txt');
    await writeFile(file, 'one\ntwo\nthree\nfour\n');
    world.sandbox.configure({ latencyMs: 1500 });
    const submits = () =>
      world.sandbox.requests.filter((request) => request.path === '/v2/sdxl1.0-txt2img').length;
    const before = submits();
    const out = path.join(world.dir, 'async');
    const args = ['imagine', '--prompts', file, '--json', '--concurrency', '2', '--rpm', '60', '-o', out];
    const first = world.spawn(args);
    await until(() => submits() === before + 2, 'two jobs submitted');
    first.child.kill('SIGTERM');
    const run = await first.done;
    assert.equal(run.code, 143, run.stderr);
    assert.equal(submits(), before + 2, 'nothing submitted after the signal');
    const lines = jsonLines(run.stdout);
    assert.equal(lines.filter((line) => !line.error && line.images.length === 1).length, 2, run.stdout);
    assert.equal(lines.filter((line) => line.error?.code === 'skipped').length, 2, run.stdout);

    // Two signals: the jobs on the wire are cut off, reported with their request ids, and collected
    // by the same command run again, without a second submit.
    world.sandbox.configure({ latencyMs: 3000 });
    const second = world.spawn([...args.slice(0, -1), `${out}-2`]);
    await until(() => submits() === before + 4, 'two more jobs submitted');
    second.child.kill('SIGINT');
    await until(() => /finish/.test(second.stderr()), 'the first signal to be acknowledged');
    second.child.kill('SIGINT');
    const cut = jsonLines((await second.done).stdout).filter((line) => line.error?.code === 'aborted');
    assert.equal(cut.length, 2);
    for (const line of cut)
      assert.match(line.error!.message, /submitted as [0-9a-f-]{36}: run the same command again/);
    world.sandbox.configure({ latencyMs: 0 });
    const again = await world.run([...args.slice(0, -1), `${out}-2`]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      submits(),
      before + 6,
      'the two cut off were collected; only the two never sent were submitted',
    );
  });
});
