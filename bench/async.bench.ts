// The async API (submit, poll, fetch) against the synchronous one: time to image at the sandbox's
// 3 s latency, and how many status checks an image takes. Run on demand: npm run bench:async.
// Both contenders run in this one process against one sandbox, alternating which goes first.
import { createClient } from '@sdxl-kit/client';
import { startSandbox } from '@sdxl-kit/sandbox';

const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const PARALLEL = Number(process.env.BENCH_PARALLEL ?? 4);
const KEY = 'bench-async-key';

const sandbox = await startSandbox({ apiKey: KEY, latencyMs: LATENCY_MS, credits: 1e6 });
const sync = createClient({ apiKey: KEY, baseUrl: sandbox.url, maxInFlight: PARALLEL });
const async = createClient({ apiKey: KEY, baseUrl: sandbox.url, maxInFlight: PARALLEL });

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const times = { sync: [] as number[], async: [] as number[] };
const polls: number[] = [];

async function burst(mode: 'sync' | 'async', round: number): Promise<void> {
  const client = mode === 'sync' ? sync : async;
  await Promise.all(
    Array.from({ length: PARALLEL }, async (_, i) => {
      const started = performance.now();
      const result = await client.generate(
        { prompt: `bench ${mode} ${round} ${i}` },
        { api: mode },
      );
      times[mode].push(performance.now() - started);
      if (mode === 'async') polls.push(result.polls);
    }),
  );
}

console.log(
  `Time to image, sync (one connection) against async (submit, poll, fetch), sandbox latency ${LATENCY_MS} ms, ` +
    `${ROUNDS} rounds of ${PARALLEL} at once each.\n`,
);
for (let round = 0; round < ROUNDS; round++) {
  for (const mode of round % 2 === 0 ? (['sync', 'async'] as const) : (['async', 'sync'] as const)) {
    await burst(mode, round);
  }
}
const syncMs = median(times.sync);
const asyncMs = median(times.async);
const averagePolls = polls.reduce((sum, count) => sum + count, 0) / polls.length;
console.log(`sync   median ${syncMs.toFixed(0)} ms (${times.sync.length} images)`);
console.log(`async  median ${asyncMs.toFixed(0)} ms (${times.async.length} images)`);
console.log(`async / sync: ${(asyncMs / syncMs).toFixed(3)}x (target <= 1.10x)`);
console.log(
  `status checks per image: ${averagePolls.toFixed(2)} on average (target <= 3), first image ${polls[0]}, ` +
    `most ${Math.max(...polls)}`,
);
await sandbox.close();
