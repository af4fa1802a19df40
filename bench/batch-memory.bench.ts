// Peak memory of an `sdxl imagine --prompts FILE` batch, small against large: a batch streams, so its
// memory must not grow with the number of prompts. Run on demand: npm run bench:batch [-- N N ...]
// (prompt counts; default 100, 1000 and 10000: the middle one shows where the peak levels off).
// A standalone sandbox (`sdxl sandbox`, its own process, 127.0.0.1 only) answers; each batch runs the
// real `sdxl` bin in a process of its own, which reports its peak RSS (process.resourceUsage().maxRSS)
// as it exits. Images go to a temporary folder removed after each run.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SDXL_BIN, startSandboxProcess } from './sandbox-process.ts';

const BIN = SDXL_BIN;
const KEY = 'bench-batch-key';
const CONCURRENCY = 8;
const TARGET = 1.2;
const counts = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [100, 1000, 10_000];
if (
  counts.length < 2 ||
  !counts.every((count, i) => Number.isInteger(count) && count > (counts[i - 1] ?? 0))
) {
  throw new Error('Usage: npm run bench:batch [-- N N ...] (two or more prompt counts, smallest first)');
}

// Loaded before the CLI in its process: writes the peak RSS (KiB) to a file as the process exits.
const REPORT_PEAK = `data:text/javascript,${encodeURIComponent(
  "import { writeFileSync } from 'node:fs';" +
    'process.on("exit", () => writeFileSync(process.env.BENCH_PEAK_FILE, String(process.resourceUsage().maxRSS)));',
)}`;

interface BatchRun {
  prompts: number;
  peakMb: number;
  seconds: number;
  images: number;
}

async function batch(url: string, prompts: number): Promise<BatchRun> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sdxl-bench-batch-'));
  try {
    const file = path.join(dir, 'prompts.txt');
    const out = path.join(dir, 'out');
    const peakFile = path.join(dir, 'peak');
    const lines = Array.from({ length: prompts }, (_, i) => `a lighthouse at dusk, variation ${i + 1}`);
    await writeFile(file, `${lines.join('\n')}\n`);
    const args = [
      ...['imagine', '--prompts', file, '--rpm', '100000', '--concurrency', String(CONCURRENCY)],
      ...['--json', '--out', out],
    ];
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', REPORT_PEAK, BIN, ...args], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        SDXL_API_KEY: KEY,
        SDXL_BASE_URL: url,
        BENCH_PEAK_FILE: peakFile,
        // To compare V8 heap settings: NODE_OPTIONS='--max-semi-space-size=1' npm run bench:batch
        ...(process.env.NODE_OPTIONS && { NODE_OPTIONS: process.env.NODE_OPTIONS }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let jsonLines = 0;
    let failed = 0;
    let partial = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString('utf8');
      const complete = text.split('\n');
      partial = complete.pop()!;
      for (const line of complete) {
        if (!line) continue;
        const parsed = JSON.parse(line) as { error?: unknown; summary?: unknown };
        // One line a prompt, then the batch's summary.
        if (parsed.summary !== undefined) continue;
        jsonLines++;
        if (parsed.error !== undefined) failed++;
      }
    });
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const seconds = (performance.now() - started) / 1000;
    if (code !== 0 || jsonLines !== prompts || failed > 0) {
      throw new Error(
        `the batch of ${prompts} exited ${code}, ${jsonLines} lines, ${failed} failed: ${stderr}`,
      );
    }
    const peakKb = Number(await readFile(peakFile, 'utf8'));
    const images = (await readdir(out)).filter((name) => /\.(jpg|png|webp)$/.test(name)).length;
    return { prompts, peakMb: peakKb / 1024, seconds, images };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const sandbox = await startSandboxProcess(KEY);
try {
  console.log(
    `sdxl imagine --prompts FILE --rpm 100000 --concurrency ${CONCURRENCY} --json --out DIR against a ` +
      `standalone sandbox (0 ms latency); peak RSS of the sdxl process.\n`,
  );
  console.log('prompts   peak RSS MB   wall s   images');
  const runs: BatchRun[] = [];
  for (const prompts of counts) {
    const run = await batch(sandbox.url, prompts);
    runs.push(run);
    console.log(
      `${String(run.prompts).padStart(7)}   ${run.peakMb.toFixed(1).padStart(11)}   ${run.seconds.toFixed(1).padStart(6)}   ${String(run.images).padStart(6)}`,
    );
  }
  const [smallest, largest] = [runs[0]!, runs.at(-1)!];
  const ratio = largest.peakMb / smallest.peakMb;
  console.log(
    `\nPeak RSS ${largest.prompts} vs ${smallest.prompts} prompts: ${ratio.toFixed(2)}x ` +
      `(target at most ${TARGET}x): ${ratio <= TARGET ? 'met' : 'NOT met'}.`,
  );
} finally {
  sandbox.child.kill('SIGTERM');
  await new Promise((resolve) => sandbox.child.once('exit', resolve));
}
