// How soon a command starts: the whole of `sdxl --version`, and from spawning `sdxl imagine` to its
// first request reaching a server (which refuses it, so nothing else is measured). Twice: the
// repository's TypeScript (Node strips its types as it loads) and the JavaScript npm users install
// (`npm run pack:packages`, laid out as an install would: the packages copied, their dependencies
// linked). Node alone (`node -e 0`) is the baseline. Run on demand: npm run bench:startup (also the
// last part of npm run bench:async).
import { execFile, spawn } from 'node:child_process';
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SDXL_BIN } from './sandbox-process.ts';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const dir = await mkdtemp(join(tmpdir(), 'sdxl-startup-bench-'));
const env = { PATH: process.env.PATH, SDXL_API_KEY: 'bench-startup-key', SDXL_CACHE_DIR: dir };

const STARTS = Number(process.env.BENCH_STARTS ?? 10);
const ROOT = new URL('../', import.meta.url).pathname;
const { packPackages } = await import('../scripts/pack-packages.ts');
await packPackages();
const installed = join(dir, 'installed', 'node_modules');
for (const folder of ['client', 'sandbox', 'cli']) {
  await cp(join(ROOT, 'out/packages', folder), join(installed, '@sdxl-kit', folder), { recursive: true });
}
for (const dependency of ['zod', 'axios', 'image-size', 'ioredis', 'sharp']) {
  await symlink(join(ROOT, 'node_modules', dependency), join(installed, dependency));
}
const BINS = [
  ['repository (TypeScript)', SDXL_BIN],
  ['published (JavaScript)', join(installed, '@sdxl-kit/cli/bin/sdxl.js')],
] as const;

function exitTime(args: string[]): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { env }, (error) =>
      error ? reject(error) : resolve(performance.now() - started),
    );
  });
}
let arrived: (() => void) | undefined;
const refuser = createServer((request, response) => {
  arrived?.();
  request.resume();
  response.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"Invalid API key"}');
});
await new Promise<void>((resolve) => refuser.listen(0, '127.0.0.1', resolve));
const refuserUrl = `http://127.0.0.1:${(refuser.address() as { port: number }).port}/v1`;
async function firstRequest(bin: string): Promise<number> {
  const started = performance.now();
  const reached = new Promise<number>((resolve) => (arrived = () => resolve(performance.now() - started)));
  const child = spawn(process.execPath, [bin, 'imagine', 'a first request', '--out', join(dir, 'first')], {
    env: { ...env, SDXL_BASE_URL: refuserUrl },
    stdio: 'ignore',
  });
  const ms = await reached;
  await new Promise((resolve) => child.on('close', resolve));
  return ms;
}
const nodeAlone: number[] = [];
const starts = BINS.map(() => ({ version: [] as number[], first: [] as number[] }));
for (let i = 0; i < STARTS; i++) {
  nodeAlone.push(await exitTime(['-e', '0']));
  for (const [index, [, bin]] of BINS.entries()) {
    starts[index]!.version.push(await exitTime([bin, '--version']));
    starts[index]!.first.push(await firstRequest(bin));
  }
}
refuser.close();
console.log(`\nStarting a command, medians of ${STARTS} (node -e 0: ${median(nodeAlone).toFixed(0)} ms):\n`);
console.log('| sdxl | --version (target < 100 ms) | imagine: first request out (target < 150 ms) |');
console.log('|---|---|---|');
for (const [index, [name]] of BINS.entries()) {
  const { version, first } = starts[index]!;
  console.log(`| ${name} | ${median(version).toFixed(0)} ms | ${median(first).toFixed(0)} ms |`);
}
await rm(dir, { recursive: true, force: true });
