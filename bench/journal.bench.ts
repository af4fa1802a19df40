// Run on demand: npm run bench:journal.
import { startSandbox } from '@sdxl-kit/sandbox';
import { SDXL_BIN, batchArgs } from './sandbox-process.ts';

const KEY = 'bench-journal-key';
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

// A 100-prompt batch with its journal (the default) against the same batch with --no-journal: what
// the crash safety costs. The sdxl command runs as its own process, as cron runs it.
const { execFile } = await import('node:child_process');
const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
const { tmpdir } = await import('node:os');
const { join } = await import('node:path');
const BATCH = Number(process.env.BENCH_BATCH ?? 100);
const BATCH_LATENCY_MS = Number(process.env.BENCH_BATCH_LATENCY_MS ?? 200);
const batchSandbox = await startSandbox({ apiKey: KEY, latencyMs: BATCH_LATENCY_MS, credits: 1e6 });
const dir = await mkdtemp(join(tmpdir(), 'sdxl-journal-bench-'));
const prompts = join(dir, 'prompts.txt');
await writeFile(prompts, Array.from({ length: BATCH }, (_, i) => `journal bench prompt ${i}`).join('\n'));

function batch(journal: boolean, round: number): Promise<number> {
  const out = join(dir, `${journal ? 'journal' : 'plain'}-${round}`);
  const args = [SDXL_BIN, ...batchArgs(prompts, out, ...(journal ? [] : ['--no-journal']))];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      args,
      {
        env: { PATH: process.env.PATH, SDXL_API_KEY: KEY, SDXL_BASE_URL: batchSandbox.url },
        maxBuffer: 1 << 26,
      },
      (error, _stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(performance.now() - started)),
    );
  });
}

const walls = { journal: [] as number[], plain: [] as number[] };
for (let round = 0; round < 3; round++) {
  for (const journal of round % 2 === 0 ? [true, false] : [false, true]) {
    walls[journal ? 'journal' : 'plain'].push(await batch(journal, round));
  }
}
const journaled = median(walls.journal);
const plain = median(walls.plain);
console.log(
  `\n${BATCH}-prompt batch (async, 4 at once, sandbox latency ${BATCH_LATENCY_MS} ms), median of 3 each: ` +
    `journaled ${journaled.toFixed(0)} ms, --no-journal ${plain.toFixed(0)} ms, ` +
    `${(journaled / plain).toFixed(3)}x (target <= 1.02x)`,
);
await batchSandbox.close();
await rm(dir, { recursive: true, force: true });
