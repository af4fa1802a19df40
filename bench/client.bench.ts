// The client against bare axios doing the same work, and a paced batch against its ideal time.
// Run on demand: npm run bench. Everything is measured in this one run, so the ratios compare like with like.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startSandbox } from '@sdxl-kit/sandbox';

const WORKER = fileURLToPath(new URL('./client-worker.ts', import.meta.url));
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 300);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

function worker<T>(args: Array<string | number>): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [WORKER, ...args.map(String)], (error, stdout, stderr) => {
      if (error) reject(new Error(`worker ${args.join(' ')} failed: ${stderr}`));
      else resolve(JSON.parse(stdout) as T);
    });
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ratio = (value: number) => `${value.toFixed(2)}x`;

const sandbox = await startSandbox({ credits: 1e9 });
const scenarios: Array<[samples: number, format: 'binary' | 'base64']> = [
  [1, 'binary'],
  [1, 'base64'],
  [4, 'base64'],
];
console.log(
  `Client vs bare axios against the sandbox at 0 ms latency: median of ${REQUESTS} interleaved requests, ` +
    `peak RSS of ${REQUESTS} requests in a process of each; ${ROUNDS} rounds, medians shown.\n`,
);
console.log('scenario              axios ms  client ms  time   axios MB  client MB  memory');
const worst = { time: 0, memory: 0 };
for (const [samples, format] of scenarios) {
  const times: Array<{ axiosMs: number; clientMs: number }> = [];
  const memory = { axios: [] as number[], client: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    times.push(await worker([`time`, samples, format, sandbox.url, REQUESTS]));
    for (const name of round % 2 === 0 ? ['axios', 'client'] : ['client', 'axios']) {
      const { peakRssKb } = await worker<{ peakRssKb: number }>([
        'memory',
        samples,
        format,
        sandbox.url,
        REQUESTS,
        name,
      ]);
      memory[name as 'axios' | 'client'].push(peakRssKb / 1024);
    }
  }
  const axiosMs = median(times.map((t) => t.axiosMs));
  const clientMs = median(times.map((t) => t.clientMs));
  const timeRatio = median(times.map((t) => t.clientMs / t.axiosMs));
  const axiosMb = median(memory.axios);
  const clientMb = median(memory.client);
  worst.time = Math.max(worst.time, timeRatio);
  worst.memory = Math.max(worst.memory, clientMb / axiosMb);
  console.log(
    `${`${samples} sample${samples > 1 ? 's' : ''}, ${format}`.padEnd(20)} ${axiosMs.toFixed(2).padStart(9)} ` +
      `${clientMs.toFixed(2).padStart(10)} ${ratio(timeRatio).padStart(6)} ${axiosMb.toFixed(1).padStart(10)} ` +
      `${clientMb.toFixed(1).padStart(10)} ${ratio(clientMb / axiosMb).padStart(7)}`,
  );
}
console.log(
  `\nworst: time ${ratio(worst.time)} (target <= 1.10x), memory ${ratio(worst.memory)} (target <= 1.25x)`,
);

// 100 prompts, 200 ms each, 4 in flight: the ideal is 100 x 200 ms / 4 = 5000 ms.
sandbox.configure({ latencyMs: 200 });
const walls: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  walls.push((await worker<{ wallMs: number }>(['batch', 100, 4, sandbox.url])).wallMs);
}
const wall = median(walls);
console.log(
  `\n100 prompts at 200 ms latency, 4 in flight: ${wall.toFixed(0)} ms against the ideal 5000 ms ` +
    `(${ratio(wall / 5000)}; target within 1.10x)`,
);
await sandbox.close();
