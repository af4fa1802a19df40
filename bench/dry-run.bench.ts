// How long `sdxl imagine --prompts FILE --dry-run` takes to plan a batch, small against large: every
// prompt is validated and priced, the journal read and the balance asked (free), nothing billed sent.
// Run on demand: npm run bench:dry-run [-- N N ...] (prompt counts; default 100 and 10000). A
// standalone sandbox (`sdxl sandbox`, its own process, 127.0.0.1 only) answers the balance call; each
// plan runs the real `sdxl` bin in a process of its own, three times, and the median is kept.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SDXL_BIN, startSandboxProcess } from './sandbox-process.ts';

const BIN = SDXL_BIN;
const KEY = 'bench-dry-run-key';
const RUNS = 3;
const counts = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [100, 10_000];
if (
  counts.length < 2 ||
  !counts.every((count, i) => Number.isInteger(count) && count > (counts[i - 1] ?? 0))
) {
  throw new Error('Usage: npm run bench:dry-run [-- N N ...] (two or more prompt counts, smallest first)');
}

/** One dry run of `file` in its own process: wall seconds and the plan it printed. */
function plan(
  url: string,
  file: string,
  out: string,
): Promise<{ seconds: number; line: Record<string, unknown> }> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [BIN, 'imagine', '--prompts', file, '--out', out, '--dry-run', '--json'],
    {
      env: { PATH: process.env.PATH ?? '', SDXL_API_KEY: KEY, SDXL_BASE_URL: url },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let stdout = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`sdxl exited ${code}: ${stdout}`));
      else resolve({ seconds: (performance.now() - started) / 1000, line: JSON.parse(stdout) });
    });
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const sandbox = await startSandboxProcess(KEY);
const dir = await mkdtemp(path.join(tmpdir(), 'sdxl-bench-dry-run-'));
try {
  const rows: Array<{ prompts: number; seconds: number; credits: unknown }> = [];
  for (const count of counts) {
    const file = path.join(dir, `${count}.txt`);
    await writeFile(
      file,
      Array.from({ length: count }, (_, i) => `a lighthouse at dusk, study ${i}`).join('\n'),
    );
    const times: number[] = [];
    let line: Record<string, unknown> = {};
    for (let run = 0; run < RUNS; run++)
      ({ seconds: times[run]!, line } = await plan(sandbox.url, file, path.join(dir, 'out')));
    rows.push({ prompts: count, seconds: median(times), credits: line.estimatedCredits });
  }
  const base = rows[0]!;
  console.log('prompts  dry run (median of 3)  vs smallest  estimated credits');
  for (const row of rows) {
    console.log(
      `${String(row.prompts).padStart(7)}  ${row.seconds.toFixed(2).padStart(19)} s  ${(row.seconds / base.seconds).toFixed(2).padStart(10)}x  ${row.credits}`,
    );
  }
} finally {
  sandbox.child.kill();
  await rm(dir, { recursive: true, force: true });
}
