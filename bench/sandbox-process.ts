// What the benchmarks that run `sdxl` share: its bin, a batch's arguments, and a standalone sandbox: `sdxl sandbox` in its own process on 127.0.0.1, so the process
// under measurement pays nothing for it.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The `sdxl` bin the benchmarks run. */
export const SDXL_BIN = fileURLToPath(new URL('../cli/bin/sdxl.js', import.meta.url));

/**
 * `sdxl imagine --prompts` as the batch benchmarks run it: unpaced (the sandbox's latency is the
 * job), four at a time, `--json`; `more` adds flags.
 */
export function batchArgs(prompts: string, out: string, ...more: string[]): string[] {
  return [
    'imagine',
    '--prompts',
    prompts,
    '--rpm',
    '100000',
    '--concurrency',
    '4',
    '--json',
    '--out',
    out,
    ...more,
  ];
}

/**
 * Starts `sdxl sandbox` on a free port of 127.0.0.1 with `apiKey` (and `latencyMs` before each image
 * answer); resolves with its base URL once it listens.
 */
export function startSandboxProcess(
  apiKey: string,
  { credits = 1_000_000, latencyMs }: { credits?: number; latencyMs?: number } = {},
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      SDXL_BIN,
      'sandbox',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--api-key',
      apiKey,
      '--credits',
      String(credits),
      ...(latencyMs === undefined ? [] : ['--latency-ms', String(latencyMs)]),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+\S*)/.exec(out);
      if (match) resolve({ url: match[1]!, child });
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`the sandbox exited (${code}) before listening: ${out}`)));
  });
}
