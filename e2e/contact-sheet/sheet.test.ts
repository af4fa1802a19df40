/// <reference lib="dom" />
// The contact sheet of `sdxl imagine --prompts` (index.html in --out), opened in Debian's Chromium:
// every thumbnail loads, each card says what the journal and --json say, a failed prompt shows its
// reason, and a page read while the batch runs is always a whole page.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { BrowserContext, ElementHandle } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { CliWorld, jsonLines } from '../../test/cli/harness.ts';

let context: BrowserContext;
let profile: string;
const world = new CliWorld();

before(async () => {
  await world.start();
  profile = await mkdtemp(path.join(tmpdir(), 'sdxl-chromium-'));
  context = await launchChromium(profile, { width: 1200, height: 800 });
  // The page is self-contained: any request off this machine's disk fails the test.
  await context.route(/^(?!file:)/, (route) => route.abort());
});
after(async () => {
  await context?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  await world.close();
});

interface JsonLine {
  prompt: string;
  images: { path: string; seed: number }[];
  error?: { code: string; message: string };
}

/** The seed the journal recorded for each saved file. */
async function journalSeeds(out: string): Promise<Map<string, number>> {
  const seeds = new Map<string, number>();
  for (const line of (await readFile(path.join(out, '.sdxl-journal.jsonl'), 'utf8')).split('\n')) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as { event: string; images?: { path: string; seed: number }[] };
    for (const image of event.event === 'saved' ? (event.images ?? []) : [])
      seeds.set(image.path, image.seed);
  }
  return seeds;
}

describe('the contact sheet of a batch, in Chromium', () => {
  it('shows every image, each card matching the journal, the failed prompt with its reason, totals on top', async () => {
    const out = path.join(world.dir, 'batch');
    const prompts = path.join(world.dir, 'prompts.txt');
    const lines = [
      'a lighthouse at dusk',
      'a red fox in snow',
      'a cat & a <dog>',
      'a blue whale',
      'an old tram',
    ];
    await writeFile(prompts, `${lines.join('\n')}\n`);
    // The second job submitted fails on the API's side (billed nothing): its card must say why.
    world.sandbox.configure({ failJobs: [false, true, false, false, false] });
    const run = await world.run([
      'imagine',
      '--prompts',
      prompts,
      '--json',
      '--out',
      out,
      '-n',
      '2',
      '--rpm',
      '1000',
    ]);
    world.sandbox.configure({ failJobs: 0 });
    assert.equal(run.code, 1, run.stderr);
    const results = jsonLines(run.stdout) as unknown as JsonLine[];
    const failed = results.filter((line) => line.error);
    assert.equal(failed.length, 1);

    const page = await context.newPage();
    await page.goto(pathToFileURL(path.join(out, 'index.html')).href);
    assert.equal(await page.getAttribute('body', 'data-state'), 'done');
    const totals = await page.locator('.totals').innerText();
    assert.match(totals, /prompts\s+5 of 5\s+saved\s+4\s+failed\s+1\s+images\s+8\s+cost\s+0\.064\s+time/);

    // Every thumbnail loads once it comes into view (they load lazily) and shows a decoded image.
    const thumbnails = page.locator('.card img');
    assert.equal(await thumbnails.count(), 8);
    for (const thumbnail of await thumbnails.all()) {
      await thumbnail.scrollIntoViewIfNeeded();
      const image = (await thumbnail.elementHandle()) as unknown as ElementHandle<HTMLImageElement>;
      await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, image, { timeout: 10_000 });
      assert.equal(await thumbnail.evaluate((img: HTMLImageElement) => img.naturalWidth), 1024);
    }

    const seeds = await journalSeeds(out);
    const cards = await page.locator('.card.ok').evaluateAll((elements) =>
      elements.map((card) => ({
        prompt: card.querySelector('.prompt')!.textContent!.replace(/^#\d+ /, ''),
        seed: card.querySelector('.seed')?.textContent,
        files: [...card.querySelectorAll('a')].map((link) => decodeURIComponent(link.getAttribute('href')!)),
        cost: card.querySelector('.cost')?.textContent,
        requestId: card.querySelector('.request-id')?.textContent,
      })),
    );
    assert.equal(cards.length, 4);
    for (const card of cards) {
      const line = results.find((result) => result.prompt === card.prompt);
      assert.ok(line, `a --json line for "${card.prompt}"`);
      assert.deepEqual(
        card.files.map((file) => path.join(out, file)),
        line.images.map((image) => image.path),
      );
      for (const file of line.images) assert.equal(card.seed, String(seeds.get(file.path)), card.prompt);
      assert.equal(card.cost, '0.016');
      assert.match(card.requestId ?? '', /^[0-9a-f-]{36}$/);
    }
    const failedCard = page.locator('.card.failed');
    assert.equal(
      await failedCard.locator('.prompt').innerText(),
      `#${lines.indexOf(failed[0]!.prompt) + 1} ${failed[0]!.prompt}`,
    );
    assert.equal(await failedCard.locator('.reason').innerText(), `Failed: ${failed[0]!.error!.message}`);
    await page.close();
  });

  it('a page read at any moment of a running batch is a whole page, and it shows progress', async () => {
    const out = path.join(world.dir, 'watched');
    const prompts = path.join(world.dir, 'many.txt');
    await writeFile(prompts, Array.from({ length: 30 }, (_, i) => `prompt number ${i + 1}`).join('\n'));
    world.sandbox.configure({ latencyMs: 150 });
    const started = world.spawn([
      'imagine',
      '--prompts',
      prompts,
      '--json',
      '--out',
      out,
      '--concurrency',
      '3',
      '--rpm',
      '1000',
    ]);
    const file = path.join(out, 'index.html');
    const versions = new Set<string>();
    let reads = 0;
    let running = true;
    void started.done.then(() => (running = false));
    const page = await context.newPage();
    while (running) {
      const text = await readFile(file, 'utf8').catch(() => undefined);
      if (text !== undefined) {
        reads++;
        assert.ok(text.startsWith('<!doctype html>') && text.endsWith('</html>\n'), 'a whole page');
        versions.add(text.match(/(\d+) of 30/)![1]!);
        if (reads % 20 === 0 && text.includes('data-state="running"')) {
          await page.goto(pathToFileURL(file).href);
          assert.equal(await page.locator('footer').count(), 1, 'the page opened whole in the browser');
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    world.sandbox.configure({ latencyMs: 0 });
    assert.equal((await started.done).code, 0);
    assert.ok(versions.size >= 3, `the page was rewritten as the batch went: ${[...versions].join(', ')}`);
    await page.goto(pathToFileURL(file).href);
    assert.equal(await page.locator('.card.ok').count(), 30);
    assert.equal(
      await page.locator('meta[http-equiv="refresh"]').count(),
      0,
      'a finished page stops refreshing',
    );
    await page.close();
  });

  it('--no-contact-sheet writes no page', async () => {
    const out = path.join(world.dir, 'none');
    const prompts = path.join(world.dir, 'one.txt');
    await writeFile(prompts, 'a single prompt\n');
    const run = await world.run([
      'imagine',
      '--prompts',
      prompts,
      '--no-contact-sheet',
      '--out',
      out,
      '--rpm',
      '1000',
    ]);
    assert.equal(run.code, 0, run.stderr);
    await assert.rejects(readFile(path.join(out, 'index.html')), { code: 'ENOENT' });
  });
});
