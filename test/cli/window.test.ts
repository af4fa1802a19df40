import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createClient, type SdxlClient } from '@sdxl-kit/client';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { Calls } from '../../cli/src/calls.ts';
import { WINDOW_MARGIN, run } from '../../cli/src/batch.ts';
import { jsonLines, until } from './harness.ts';

const KEY = 'SG_clisecretkey0000777';

/** A stream that keeps what is written to it. */
function sink(): Writable & { text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += chunk;
      done();
    },
  });
  return Object.assign(stream, { text: () => text });
}

/** A client of the sandbox that counts the prompts it was asked for and has not answered yet. */
function countingClient(sandbox: Sandbox, maxInFlight: number) {
  const client: SdxlClient = createClient({ apiKey: KEY, baseUrl: sandbox.url, maxInFlight });
  const generate = client.generate.bind(client);
  const open = { now: 0, most: 0 };
  client.generate = async (input, options) => {
    open.now++;
    open.most = Math.max(open.most, open.now);
    try {
      return await generate(input, options);
    } finally {
      open.now--;
    }
  };
  return { client, open };
}

describe('sdxl imagine --prompts: a batch streams through a bounded window of prompts', () => {
  let sandbox: Sandbox;
  let dir: string;
  before(async () => {
    sandbox = await startSandbox({ apiKey: KEY, credits: 1000 });
    dir = await mkdtemp(path.join(tmpdir(), 'sdxl-cli-window-'));
  });
  after(async () => {
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  });

  const prompts = Array.from({ length: 30 }, (_, i) => `prompt ${i + 1}`);

  function start(
    client: SdxlClient,
    out: string,
    interrupt = { stop: new AbortController(), abort: new AbortController() },
  ) {
    const stdout = sink();
    const stderr = sink();
    const done = run(
      client,
      prompts.map((prompt) => ({ prompt, options: {}, request: { prompt, seed: 7 }, key: prompt })),
      { seed: 7 },
      {
        io: { stdout, stderr, env: {} },
        json: true,
        outDir: out,
        interrupt: { stop: interrupt.stop.signal, abort: interrupt.abort.signal },
        calls: new Calls(),
        batch: true,
        hints: { baseUrl: 'SDXL_BASE_URL', timeoutSeconds: 120 },
        api: 'sync',
      },
    );
    return { done, stdout, stderr, interrupt };
  }

  it('never starts more prompts than the calls in flight and a small margin, and does them all', async () => {
    sandbox.configure({ latencyMs: 20 });
    const sent = sandbox.requests.length;
    const { client, open } = countingClient(sandbox, 2);
    const out = path.join(dir, 'all');
    const batch = start(client, out);
    assert.equal(await batch.done, 0, batch.stderr.text());
    const lines = jsonLines(batch.stdout.text());
    assert.deepEqual(lines.map((line) => line.prompt).sort(), [...prompts].sort());
    assert.ok(lines.every((line) => !line.error && line.images.length === 1));
    assert.equal((await readdir(out)).length, prompts.length);
    assert.equal(sandbox.requests.length - sent, prompts.length);
    // The old batch opened every prompt at once, all 30 waiting in the limiter's line.
    assert.ok(open.most <= 2 + WINDOW_MARGIN, `${open.most} prompts were open at once`);
  });

  it('reports the prompts it never started as not sent when a signal stops it', async () => {
    sandbox.configure({ latencyMs: 500 });
    const sent = sandbox.requests.length;
    const { client, open } = countingClient(sandbox, 2);
    const batch = start(client, path.join(dir, 'stopped'));
    await until(() => sandbox.requests.length === sent + 2, 'two calls on the wire');
    batch.interrupt.stop.abort('SIGTERM');
    assert.equal(await batch.done, 143);
    assert.match(
      batch.stderr.text(),
      /SIGTERM: stopping; nothing more will be sent\. 2 calls were already sent/,
    );
    assert.equal(sandbox.requests.length, sent + 2, 'nothing was sent after the signal');
    const lines = jsonLines(batch.stdout.text());
    assert.deepEqual(lines.map((line) => line.prompt).sort(), [...prompts].sort());
    const saved = lines.filter((line) => !line.error && line.images.length === 1);
    assert.deepEqual(saved.map((line) => line.prompt).sort(), ['prompt 1', 'prompt 2']);
    const skipped = lines.filter((line) => line.error?.code === 'skipped');
    assert.equal(skipped.length, prompts.length - 2);
    for (const line of skipped) assert.equal(line.error!.message, 'Not sent: stopped by SIGTERM.');
    assert.ok(open.most <= 2 + WINDOW_MARGIN, `${open.most} prompts were open at once`);
  });
});
