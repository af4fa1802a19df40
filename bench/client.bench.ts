// The client against bare axios doing the same work, and a paced batch against its ideal time.
// Run on demand: npm run bench. Ratios are measured in one run, so a noisy machine skews both sides alike.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createClient } from '@sdxl-kit/client';
import { startSandbox } from '@sdxl-kit/sandbox';

const WORKER = fileURLToPath(new URL('./client-worker.ts', import.meta.url));
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Measurement {
  medianMs: number;
  peakRssKb: number;
}

function worker(mode: string, samples: number, format: string, url: string): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [WORKER, mode, String(samples), format, url, String(REQUESTS)],
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${mode} worker failed: ${stderr}`));
        else resolve(JSON.parse(stdout) as Measurement);
      },
    );
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const sandbox = await startSandbox({ credits: 1e9 });
const scenarios: Array<[samples: number, format: 'binary' | 'base64']> = [
  [1, 'binary'],
  [1, 'base64'],
  [4, 'base64'],
];
console.log(`Client vs bare axios, sandbox at 0 ms latency, ${REQUESTS} requests x ${ROUNDS} rounds each\n`);
console.log('scenario           axios ms  client ms  time ratio  axios MB  client MB  memory ratio');
const ratios: Array<{ time: number; memory: number }> = [];
for (const [samples, format] of scenarios) {
  const axiosRuns: Measurement[] = [];
  const clientRuns: Measurement[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate who goes first so drift on a shared machine falls on both.
    const order = round % 2 === 0 ? ['axios', 'client'] : ['client', 'axios'];
    for (const mode of order) {
      const measurement = await worker(mode, samples, format, sandbox.url);
      (mode === 'axios' ? axiosRuns : clientRuns).push(measurement);
    }
  }
  const axiosMs = median(axiosRuns.map((m) => m.medianMs));
  const clientMs = median(clientRuns.map((m) => m.medianMs));
  const axiosMb = median(axiosRuns.map((m) => m.peakRssKb)) / 1024;
  const clientMb = median(clientRuns.map((m) => m.peakRssKb)) / 1024;
  ratios.push({ time: clientMs / axiosMs, memory: clientMb / axiosMb });
  console.log(
    `${`${samples} sample(s) ${format}`.padEnd(18)} ${axiosMs.toFixed(2).padStart(8)} ${clientMs.toFixed(2).padStart(10)} ` +
      `${`${(clientMs / axiosMs).toFixed(2)}x`.padStart(11)} ${axiosMb.toFixed(1).padStart(9)} ${clientMb.toFixed(1).padStart(10)} ` +
      `${`${(clientMb / axiosMb).toFixed(2)}x`.padStart(13)}`,
  );
}
const worstTime = Math.max(...ratios.map((r) => r.time));
const worstMemory = Math.max(...ratios.map((r) => r.memory));
console.log(
  `\nworst time ratio ${worstTime.toFixed(2)}x (target <= 1.10x), worst memory ratio ${worstMemory.toFixed(2)}x (target <= 1.25x)`,
);

// 100 prompts, 200 ms each, 4 in flight: the ideal is 100 x 200 / 4 = 5000 ms.
sandbox.configure({ latencyMs: 200 });
const client = createClient({ apiKey: 'sandbox-key', baseUrl: sandbox.url, maxInFlight: 4 });
const prompts = Array.from({ length: 100 }, (_, i) => `pipeline prompt ${i}`);
const start = performance.now();
await Promise.all(prompts.map((prompt) => client.generate({ prompt, seed: 1 })));
const wall = performance.now() - start;
console.log(
  `\n100 prompts at 200 ms latency, 4 in flight: ${wall.toFixed(0)} ms against the ideal 5000 ms ` +
    `(${((wall / 5000 - 1) * 100).toFixed(1)}% over; target within 10%)`,
);
await sandbox.close();
