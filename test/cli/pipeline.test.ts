// What a cron pipeline meets: runs that overlap on one --out, a run killed -9, a rerun with other
// options, results that expire between runs, scripts that read --json, and warnings that must be
// true. Real `sdxl` processes against the sandbox over HTTP.
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CliWorld, batchArgs, journalEvents, jsonLines, until, type Started } from './harness.ts';

describe('sdxl imagine --prompts in a pipeline', () => {
  const world = new CliWorld();

  before(() => world.start({ recordLimit: 10_000 }));
  beforeEach(() => {
    world.sandbox.configure({
      latencyMs: 0,
      queueMs: 0,
      dropRate: 0,
      rpm: undefined,
      resultTtlMs: 3_600_000,
    });
    world.sandbox.requests.length = 0;
    world.sandbox.billed.length = 0;
  });
  after(() => world.close());

  /** Async submits the sandbox accepted (answered 200), by prompt. */
  function acceptedSubmits(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const request of world.sandbox.requests) {
      if (request.method !== 'POST' || !request.path.startsWith('/v2/') || request.status !== 200) continue;
      const { prompt } = request.body as { prompt: string };
      counts.set(prompt, (counts.get(prompt) ?? 0) + 1);
    }
    return counts;
  }

  async function promptsFile(name: string, prompts: readonly string[]): Promise<string> {
    const file = path.join(world.dir, name);
    await writeFile(file, `${prompts.join('\n')}\n`);
    return file;
  }

  async function killed(started: Started): Promise<void> {
    started.child.kill('SIGKILL');
    assert.equal((await started.done).code, 137);
  }

  it('a second run into the same --out refuses at once with exit 7 naming the first; every prompt is submitted once', async () => {
    const prompts = ['overlap one', 'overlap two', 'overlap three', 'overlap four'];
    const file = await promptsFile('overlap.txt', prompts);
    const out = path.join(world.dir, 'overlap');
    // Slow first jobs: the first run holds --out for 15 s at least, however slowly the others start.
    world.sandbox.configure({ latencyMs: 15_000 });
    const first = world.spawn(batchArgs(file, out, '--concurrency', '2'));
    await journalEvents(out, 'run', 1);

    const [second, text] = await Promise.all([
      world.run(batchArgs(file, out, '--concurrency', '2')),
      world.run(batchArgs(file, out).filter((arg) => arg !== '--json')),
    ]);
    assert.equal(first.child.exitCode, null, 'the first run was still going');
    assert.equal(second.code, 7, second.stderr);
    assert.match(second.stdout, /"code":"out_in_use"/);
    assert.match(
      second.stdout,
      new RegExp(`in use by another sdxl run \\(pid ${first.child.pid} on [^,]+, started `),
    );
    assert.equal(text.code, 7);
    assert.match(text.stderr, /is in use by another sdxl run .*Nothing was sent/);
    world.sandbox.configure({ latencyMs: 0 });

    const done = await first.done;
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual([...acceptedSubmits()].sort(), prompts.map((prompt) => [prompt, 1]).sort());
    assert.equal(world.sandbox.billed.length, prompts.length);
    assert.equal((await readdir(out)).filter((name) => name.endsWith('.jpg')).length, prompts.length);
  });

  it('a run killed -9 holds no lock: the next run goes ahead at once and sends only what is missing', async () => {
    const prompts = ['stale one', 'stale two', 'stale three', 'stale four'];
    const file = await promptsFile('stale.txt', prompts);
    const out = path.join(world.dir, 'stale');
    world.sandbox.configure({ latencyMs: 1500 });
    const first = world.spawn(batchArgs(file, out, '--concurrency', '2'));
    await journalEvents(out, 'submitted', 2);
    await killed(first);

    world.sandbox.configure({ latencyMs: 0 });
    const second = await world.run(batchArgs(file, out));
    assert.equal(second.code, 0, second.stderr);
    assert.equal(jsonLines(second.stdout).filter((line) => line.images.length === 1).length, 4);
    assert.deepEqual([...acceptedSubmits()].sort(), prompts.map((prompt) => [prompt, 1]).sort());
    await until(() => world.sandbox.billed.length >= prompts.length, 'the killed run’s jobs billed');
    assert.equal(world.sandbox.billed.length, prompts.length);
  });

  it('a rerun with other options makes the new request, billed once, and says which options changed', async () => {
    const prompts = ['options one', 'options two'];
    const file = await promptsFile('options.txt', prompts);
    const out = path.join(world.dir, 'options');
    const first = await world.run(batchArgs(file, out));
    assert.equal(first.code, 0, first.stderr);
    assert.equal(world.sandbox.billed.length, 2);

    const changed = await world.run(batchArgs(file, out, '-n', '2', '--steps', '40'));
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(
      changed.stderr,
      /2 prompts of this batch were made by an earlier run in ".*options" with other options \(--samples 1 → 2, --steps 25 → 40\): this run makes them with its own, each billed once/,
    );
    const lines = jsonLines(changed.stdout);
    assert.ok(
      lines.every((line) => line.images.length === 2 && !line.error),
      changed.stdout,
    );
    const bodies = world.sandbox.requests
      .filter((request) => request.method === 'POST' && request.path.startsWith('/v2/'))
      .map((request) => request.body as { samples: number; num_inference_steps: number });
    assert.deepEqual(
      bodies.map(({ samples, num_inference_steps }) => [samples, num_inference_steps]),
      [
        [1, 25],
        [1, 25],
        [2, 40],
        [2, 40],
      ],
    );
    assert.deepEqual(
      world.sandbox.billed.map((call) => call.images),
      [1, 1, 2, 2],
    );

    // The same options again, or the defaults spelled out: nothing is sent.
    const again = await world.run(batchArgs(file, out, '--samples', '2', '--steps', '40', '--style', 'base'));
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /earlier run/);
    assert.equal(world.sandbox.billed.length, 4);
    assert.deepEqual([...acceptedSubmits().values()], [2, 2]);
    assert.equal((await readdir(out)).filter((name) => name.endsWith('.jpg')).length, 6);
  });

  it('results that expired between runs are named paid and lost with their request ids; --resubmit-expired makes them again', async () => {
    const prompts = ['expire one', 'expire two'];
    const file = await promptsFile('expire.txt', prompts);
    const out = path.join(world.dir, 'expire');
    world.sandbox.configure({ latencyMs: 800, resultTtlMs: 2000 });
    const first = world.spawn(batchArgs(file, out));
    await journalEvents(out, 'submitted', 2);
    await killed(first);
    // Both jobs finish (and are billed) with nobody waiting, then their results expire.
    await until(() => world.sandbox.billed.length === 2, 'both jobs billed');
    const paid = world.sandbox.billed.map((call) => call.requestId).sort();
    await new Promise((resolve) => setTimeout(resolve, 2100));

    const lost = await world.run(batchArgs(file, out));
    assert.equal(lost.code, 1, lost.stderr);
    const lines = jsonLines(lost.stdout) as Array<{
      error?: { code: string; message: string; requestId: string };
    }>;
    assert.deepEqual(lines.map((line) => line.error!.requestId).sort(), paid);
    for (const line of lines) {
      assert.equal(line.error!.code, 'request_expired');
      assert.match(
        line.error!.message,
        /^Request \S+ was paid for, but expired before the images were collected .*the images are lost\. Run again with --resubmit-expired/,
      );
    }
    // Run again as it is: the same answer, without asking the API about the dead ids again.
    const polls = world.sandbox.requests.length;
    const still = await world.run(batchArgs(file, out).filter((arg) => arg !== '--json'));
    assert.equal(still.code, 1);
    assert.match(
      still.stderr,
      /expire one: Error: Request \S+ was paid for, but expired[^\n]*billed again\)\.\n/,
    );
    assert.equal(world.sandbox.requests.length, polls);
    assert.equal(acceptedSubmits().size, 2);

    world.sandbox.configure({ latencyMs: 0, resultTtlMs: 3_600_000 });
    const again = await world.run(batchArgs(file, out, '--resubmit-expired'));
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stderr,
      /expire one: Warning: Request \S+ was paid for.*Submitting it again \(--resubmit-expired\): billed again/,
    );
    assert.ok(
      jsonLines(again.stdout).every((line) => line.images.length === 1),
      again.stdout,
    );
    assert.deepEqual([...acceptedSubmits().values()], [2, 2]);
    assert.equal(world.sandbox.billed.length, 4);
  });

  it('a prompt the API refused (429) and that was killed in the retry wait is sent again without a billing warning', async () => {
    const file = await promptsFile('refused.txt', ['refused one', 'refused two']);
    const out = path.join(world.dir, 'refused');
    // One call a minute: the second prompt's submit is answered 429 and waits for the window.
    world.sandbox.configure({ rpm: 1, rateWindowMs: 60_000 });
    const first = world.spawn(batchArgs(file, out, '--concurrency', '1'));
    await journalEvents(out, 'refused', 1);
    await killed(first);

    world.sandbox.configure({ rpm: undefined });
    const second = await world.run(batchArgs(file, out));
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stderr, /billed|Warning/);
    for (const line of jsonLines(second.stdout))
      assert.equal((line as { warning?: string }).warning, undefined);
    assert.deepEqual([...acceptedSubmits().values()], [1, 1]);
  });

  it('a submit whose answer was lost is warned about when it is sent again, before the resend is answered', async () => {
    const file = await promptsFile('lost.txt', ['lost answer']);
    const out = path.join(world.dir, 'lost');
    // The sandbox accepts the job (and bills it) but drops the connection before answering.
    world.sandbox.configure({ dropRate: 1 });
    const first = await world.run(batchArgs(file, out));
    assert.equal(first.code, 1, first.stderr);
    await until(() => world.sandbox.billed.length === 1, 'the dropped job billed');

    world.sandbox.configure({ dropRate: 0, latencyMs: 3000 });
    const second = world.spawn(batchArgs(file, out));
    await until(() => /Warning/.test(second.stderr()), 'the warning');
    assert.match(
      second.stderr(),
      /lost answer: Warning: An earlier run was stopped while sending this prompt, before the API answered: if the API accepted it, that call was billed too\. Sending it again now\./,
    );
    assert.equal(world.sandbox.billed.length, 1, 'the warning came before the resend was done');
    const run = await second.done;
    assert.equal(run.code, 0, run.stderr);
    const [line] = jsonLines(run.stdout) as Array<{ warning?: string; images: unknown[] }>;
    assert.match(line!.warning!, /billed too/);
    assert.equal(world.sandbox.billed.length, 2);
  });

  it('--json: the request id is on stderr the moment the job is accepted; a run killed then is collected by it, and every line carries requestId', async () => {
    const out = path.join(world.dir, 'single');
    world.sandbox.configure({ latencyMs: 3000 });
    const first = world.spawn(['imagine', 'a lighthouse at dusk', '--async', '--json', '--out', out]);
    await until(() => /Submitted as \S+\./.test(first.stderr()), 'the request id');
    const requestId = /Submitted as (\S+)\./.exec(first.stderr())![1]!;
    await killed(first);

    const resumed = await world.run(['resume', requestId, '--json', '--out', out]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const [collected] = jsonLines(resumed.stdout) as Array<{ requestId: string; images: unknown[] }>;
    assert.equal(collected!.requestId, requestId);
    assert.equal(collected!.images.length, 1);
    assert.deepEqual(
      world.sandbox.billed.map((call) => call.requestId),
      [requestId],
    );

    world.sandbox.configure({ latencyMs: 0 });
    const single = await world.run(['imagine', 'a lighthouse at noon', '--json', '--out', out]);
    assert.equal(single.code, 0, single.stderr);
    const [object] = jsonLines(single.stdout) as unknown as Array<{ requestId: string }>;
    assert.equal(object!.requestId, world.sandbox.billed.at(-1)!.requestId);

    const file = await promptsFile('ids.txt', ['ids one', 'ids two']);
    const batch = await world.run(batchArgs(file, path.join(world.dir, 'ids')));
    assert.equal(batch.code, 0, batch.stderr);
    const ids = (jsonLines(batch.stdout) as unknown as Array<{ requestId: string }>).map(
      (line) => line.requestId,
    );
    assert.deepEqual(
      ids.sort(),
      world.sandbox.billed
        .slice(-2)
        .map((call) => call.requestId)
        .sort(),
    );
    const rerun = await world.run(batchArgs(file, path.join(world.dir, 'ids')));
    const journaledIds = (jsonLines(rerun.stdout) as unknown as Array<{ requestId: string }>).map(
      (line) => line.requestId,
    );
    assert.deepEqual(journaledIds.sort(), ids);
  });
});
