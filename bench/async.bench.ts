// Time to image and status checks per image on the sandbox: our async API (submit, poll on what
// earlier jobs taught, fetch), the synchronous API, and Segmind's own SDK's fixed policy written
// here as the baseline (check at once after the submit, then every second). Then batches through the
// `sdxl` command, async against sync, and how soon a command starts. Run on demand: npm run bench:async.
// Every figure is a median measured in this run; the three contenders of a round run at once, against
// a sandbox in its own process (as the API is elsewhere: its image work must not hold up the checks).
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryJobTimeStore, createClient, sdxlTxt2Img, type SdxlClient } from '@sdxl-kit/client';
import { startSandbox } from '@sdxl-kit/sandbox';
import { SDXL_BIN, batchArgs, startSandboxProcess } from './sandbox-process.ts';

const JOB_SECONDS = (process.env.BENCH_JOB_SECONDS ?? '0.5,3,8,30').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const KEY = 'bench-async-key';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The sandbox of the row being measured. */
let sandbox: { url: string; child: ChildProcess };
const client = (store?: MemoryJobTimeStore): SdxlClient =>
  createClient({ apiKey: KEY, baseUrl: sandbox.url, ...(store && { jobTimes: store }) });

interface Run {
  ms: number;
  polls: number;
}

async function ours(store: MemoryJobTimeStore, prompt: string): Promise<Run> {
  const started = performance.now();
  const result = await client(store).generate({ prompt }, { api: 'async' });
  return { ms: performance.now() - started, polls: result.polls };
}

async function sync(prompt: string): Promise<Run> {
  const started = performance.now();
  await client().generate({ prompt }, { api: 'sync' });
  return { ms: performance.now() - started, polls: 0 };
}

/** Segmind's Python SDK's `run()`: submit, check at once, then every 1 s; then the result and its file. */
async function fixedOneSecond(prompt: string): Promise<Run> {
  const started = performance.now();
  const sdk = client();
  const ticket = await sdk.submit(sdxlTxt2Img, { prompt });
  let polls = 0;
  for (;;) {
    polls++;
    const { state } = await sdk.getStatus(ticket);
    if (state === 'COMPLETED') break;
    if (state === 'FAILED') throw new Error(`job ${ticket.requestId} failed`);
    await sleep(1000);
  }
  const result = (await (await fetch(ticket.responseUrl, { headers: { 'x-api-key': KEY } })).json()) as {
    images: { url: string }[];
  };
  for (const image of result.images) await (await fetch(image.url)).arrayBuffer();
  return { ms: performance.now() - started, polls };
}

console.log(
  `One image (sdxl1.0-txt2img) on the sandbox; medians of ${ROUNDS} rounds, the three at once in each; ` +
    'ours has learnt from one earlier job, as a second run finds in its cache.\n',
);
console.log(
  '| job time | async (ours) | sync | fixed 1 s (SDK) | async / sync | async / 1 s | status checks: ours / 1 s | first job, nothing learnt |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const jobSeconds of JOB_SECONDS) {
  sandbox = await startSandboxProcess(KEY, { credits: 1e9, latencyMs: jobSeconds * 1000 });
  const store = new MemoryJobTimeStore();
  const cold = await ours(store, `cold ${jobSeconds}`);
  const runs = { ours: [] as Run[], sync: [] as Run[], baseline: [] as Run[] };
  for (let round = 0; round < ROUNDS; round++) {
    const [a, b, c] = await Promise.all([
      ours(store, `ours ${jobSeconds} ${round}`),
      sync(`sync ${jobSeconds} ${round}`),
      fixedOneSecond(`sdk ${jobSeconds} ${round}`),
    ]);
    runs.ours.push(a);
    runs.sync.push(b);
    runs.baseline.push(c);
  }
  const ms = (list: Run[]) => median(list.map((run) => run.ms));
  const polls = (list: Run[]) => list.reduce((sum, run) => sum + run.polls, 0) / list.length;
  console.log(
    `| ${jobSeconds} s | ${seconds(ms(runs.ours))} | ${seconds(ms(runs.sync))} | ${seconds(ms(runs.baseline))} | ` +
      `${(ms(runs.ours) / ms(runs.sync)).toFixed(2)}x (target ≤ 1.10x) | ` +
      `${(ms(runs.ours) / ms(runs.baseline)).toFixed(2)}x (target ≤ 1.00x) | ` +
      `${polls(runs.ours).toFixed(1)} / ${polls(runs.baseline).toFixed(1)} | ${seconds(cold.ms)}, ${cold.polls} checks |`,
  );
  sandbox.child.kill();
}

// Batches through the command, as cron runs it: 200 ms jobs, 4 at a time, async against sync. The
// cache folder is the runs' own; one async run fills it first, as yesterday's run would have.
const BATCH_LATENCY_MS = Number(process.env.BENCH_BATCH_LATENCY_MS ?? 200);
const batchSandbox = await startSandbox({
  apiKey: KEY,
  latencyMs: BATCH_LATENCY_MS,
  credits: 1e9,
  recordLimit: 100,
});
const dir = await mkdtemp(join(tmpdir(), 'sdxl-async-bench-'));
const env = {
  PATH: process.env.PATH,
  SDXL_API_KEY: KEY,
  SDXL_BASE_URL: batchSandbox.url,
  SDXL_CACHE_DIR: dir,
};

function command(args: string[]): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [SDXL_BIN, ...args], { env, maxBuffer: 1 << 26 }, (error, _stdout, stderr) =>
      error ? reject(new Error(stderr)) : resolve(performance.now() - started),
    );
  });
}

async function batch(count: number, api: 'async' | 'sync', run: number): Promise<number> {
  const prompts = join(dir, `prompts-${count}.txt`);
  await writeFile(prompts, Array.from({ length: count }, (_, i) => `batch prompt ${i}`).join('\n'));
  const out = join(dir, `${api}-${count}-${run}`);
  return command(batchArgs(prompts, out, `--${api}`));
}

console.log(
  `\nBatches through sdxl imagine --prompts, ${BATCH_LATENCY_MS} ms jobs, 4 at a time; medians of ${ROUNDS}:\n`,
);
console.log('| prompts | async | sync | ideal | async / sync |');
console.log('|---|---|---|---|---|');
await batch(4, 'async', -1);
for (const count of [20, 100]) {
  const walls = { async: [] as number[], sync: [] as number[] };
  for (let run = 0; run < ROUNDS; run++) {
    for (const api of run % 2 === 0 ? (['async', 'sync'] as const) : (['sync', 'async'] as const)) {
      walls[api].push(await batch(count, api, run));
    }
  }
  const [a, s] = [median(walls.async), median(walls.sync)];
  const ideal = (count / 4) * BATCH_LATENCY_MS;
  console.log(
    `| ${count} | ${seconds(a)} | ${seconds(s)} | ${seconds(ideal)} | ${(a / s).toFixed(2)}x (target ≤ 1.3x) |`,
  );
}
await batchSandbox.close();

await rm(dir, { recursive: true, force: true });

await import('./startup.bench.ts');
