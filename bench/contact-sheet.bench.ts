// The contact sheet of a large batch against a small one: each rewrite streams the records file, so
// memory must stay flat while the page's size and write time grow with the number of prompts. Run on
// demand: npm run bench:contact-sheet [-- N N ...] (default 100 and 10000). Each size runs in a
// process of its own that adds N ended prompts (as a batch's would be) and closes the sheet, then
// reports its peak RSS, the last page's size and how long the final rewrite took.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';

const counts = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [100, 10_000];

if (process.env.BENCH_SHEET_COUNT) {
  const { ContactSheet } = await import('../cli/src/contact-sheet.ts');
  const count = Number(process.env.BENCH_SHEET_COUNT);
  const dir = process.env.BENCH_SHEET_DIR!;
  const sheet = await ContactSheet.start(dir, { title: 'bench', total: count, model: 'sdxl1.0-txt2img' });
  for (let index = 0; index < count; index++) {
    await sheet.add({
      index,
      prompt: `a prompt of the benchmark, number ${index}, with a few more words as prompts have`,
      result: {
        seed: 100_000 + index,
        cost: 0.008,
        requestId: `req-${index}-0000-0000-0000`,
        generationTime: 1.2,
      },
      saved: [
        {
          path: path.join(dir, `a-prompt-of-the-benchmark-${100_000 + index}-0.jpg`),
          image: { seed: 100_000 + index },
        },
      ],
      ...(index % 50 === 7 && { error: { code: 'job_failed', message: 'The job failed.' } }),
    });
  }
  const closing = performance.now();
  await sheet.close();
  const lastRender = performance.now() - closing;
  const page = await stat(path.join(dir, 'index.html'));
  process.stdout.write(
    JSON.stringify({
      count,
      peakMiB: process.resourceUsage().maxRSS / 1024,
      pageMiB: page.size / 2 ** 20,
      lastRenderMs: lastRender,
    }),
  );
} else {
  // The machine is shared: the load beside the figures says how far to trust the times.
  const load = () =>
    loadavg()
      .map((value) => value.toFixed(2))
      .join(' ');
  console.log(`load average at start: ${load()}`);
  const rows: { count: number; peakMiB: number; pageMiB: number; lastRenderMs: number }[] = [];
  for (const count of counts) {
    const dir = await mkdtemp(path.join(tmpdir(), 'sdxl-sheet-bench-'));
    try {
      const out = execFileSync(process.execPath, [new URL(import.meta.url).pathname], {
        env: { ...process.env, BENCH_SHEET_COUNT: String(count), BENCH_SHEET_DIR: dir },
        encoding: 'utf8',
      });
      rows.push(JSON.parse(out));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const [small] = rows;
  for (const row of rows) {
    console.log(
      `${String(row.count).padStart(6)} prompts: peak ${row.peakMiB.toFixed(1)} MiB (${(row.peakMiB / small!.peakMiB).toFixed(2)}x), page ${row.pageMiB.toFixed(2)} MiB, final rewrite ${row.lastRenderMs.toFixed(0)} ms`,
    );
  }
  console.log(`load average at end: ${load()}`);
}
