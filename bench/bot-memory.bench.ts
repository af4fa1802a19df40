// Memory as the bot's work grows: 100 and then 1,000 /imagine jobs through the Discord stand-in, each
// run in a fresh bot process as `npm start` runs it, with the sandbox behind it. Jobs are sent in
// waves (one job per user per wave, each wave waited for) so no per-user or daily limit refuses any;
// half of them ask for 4 images (grid, U1–U4 buttons). Prints the bot's peak RSS (VmHWM) for each run
// and their ratio (target: at most 1.2x). Run on demand: npm run bench:bot-memory.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox } from '@sdxl-kit/sandbox';
import { startDiscordStandin, type InteractionRecord } from '../bot/test-support/discord-standin/server.ts';

const RUNS = (process.env.BENCH_RUNS ?? '100,1000').split(',').map(Number);
const USERS = Number(process.env.BENCH_USERS ?? 20);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 20);
const IN_FLIGHT = 8;
const TOKEN = 'bench.bot-token.not-a-real-one';
const API_KEY = 'bench-api-key';
const GUILD = '910000000000000001';
const CHANNEL = '910000000000000002';
/** Time one run may take before the bench gives up on it. */
const RUN_TIMEOUT_MS = 15 * 60_000;

/** Memory of a process from /proc: peak (VmHWM) and current (VmRSS) resident, in MiB. */
async function memoryMb(pid: number): Promise<{ peak: number; now: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { peak: field('VmHWM'), now: field('VmRSS') };
}

async function stopBot(bot: ChildProcess): Promise<void> {
  if (bot.exitCode !== null || bot.signalCode !== null) return;
  const exited = new Promise((resolve) => bot.once('exit', resolve));
  bot.kill('SIGTERM');
  await exited;
}

interface RunResult {
  jobs: number;
  completed: number;
  other: number;
  seconds: number;
  afterLogin: { peak: number; now: number };
  end: { peak: number; now: number };
}

/** One fresh sandbox, stand-in and bot process; `jobs` jobs in waves of USERS. */
async function run(jobs: number): Promise<RunResult> {
  const sandbox = await startSandbox({ apiKey: API_KEY, latencyMs: LATENCY_MS, credits: 1e7 });
  const standin = await startDiscordStandin({ token: TOKEN, guilds: [{ id: GUILD, channels: [CHANNEL] }] });
  const dir = await mkdtemp(join(tmpdir(), 'sdxl-bot-memory-bench-'));
  const bot = spawn(
    process.execPath,
    ['--no-warnings', new URL('../bot/src/main.ts', import.meta.url).pathname],
    {
      env: {
        PATH: process.env.PATH,
        // The bot sets MALLOC_ARENA_MAX=2 for itself unless it is set; `MALLOC_ARENA_MAX= npm run
        // bench:bot-memory` (empty: glibc's default arenas) measures a bot without it.
        ...(process.env.MALLOC_ARENA_MAX !== undefined && { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX }),
        DISCORD_TOKEN: TOKEN,
        DISCORD_API_URL: standin.apiUrl,
        SDXL_API_KEY: API_KEY,
        SDXL_BASE_URL: sandbox.url,
        BOT_DATABASE: join(dir, 'jobs.sqlite'),
        // No pace, queue or daily limit may refuse a job: every one of them must run.
        BOT_REQUESTS_PER_MINUTE: '100000',
        BOT_MAX_IN_FLIGHT: String(IN_FLIGHT),
        BOT_USER_QUEUE_LIMIT: '3',
        BOT_USER_DAILY_IMAGES: '0',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const timeout = setTimeout(() => void stopBot(bot), RUN_TIMEOUT_MS);
  try {
    // Generous: a loaded machine can take many seconds to start a process that loads discord.js and sharp.
    await standin.waitForGateway(120_000);
    const afterLogin = await memoryMb(bot.pid!);
    const started = Date.now();
    let completed = 0;
    let other = 0;
    for (let first = 0; first < jobs; first += USERS) {
      const wave: InteractionRecord[] = [];
      for (let job = first; job < Math.min(jobs, first + USERS); job++) {
        const userId = String(810_000_000_000_000_000n + BigInt(job % USERS));
        wave.push(
          standin.slash({ userId, guildId: GUILD, channelId: CHANNEL }, 'imagine', {
            prompt: `memory bench prompt ${job}`,
            samples: job % 2 === 0 ? 1 : 4,
          }),
        );
      }
      const ended = (record: InteractionRecord) => {
        const original = standin.original(record);
        if (!original || original.deleted) return undefined;
        if (original.attachments.length > 0) return 'completed';
        return /^[❌⏱🔁]/u.test(original.content) ? 'other' : undefined;
      };
      await standin.waitFor(() => wave.every(ended), `wave ${first / USERS + 1} to end`, 120_000);
      for (const record of wave) {
        if (ended(record) === 'completed') completed++;
        else other++;
        // The stand-in is test support: drop what it received so the bench process stays small too.
        for (const attachment of standin.original(record)!.attachments) attachment.bytes = Buffer.alloc(0);
      }
    }
    const seconds = (Date.now() - started) / 1000;
    const end = await memoryMb(bot.pid!);
    return { jobs, completed, other, seconds, afterLogin, end };
  } finally {
    clearTimeout(timeout);
    await stopBot(bot);
    await standin.close();
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(
  `${RUNS.join(' and ')} /imagine jobs, each run in a fresh bot process (as npm start runs it), in waves of ${USERS} ` +
    `(one per user); half ask for 4 images; sandbox latency ${LATENCY_MS} ms; ${IN_FLIGHT} images in flight; ` +
    `MALLOC_ARENA_MAX ${process.env.MALLOC_ARENA_MAX ?? 'unset'}; load average ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} CPUs.`,
);
const results: RunResult[] = [];
for (const jobs of RUNS) {
  const result = await run(jobs);
  results.push(result);
  console.log(
    `  ${String(jobs).padStart(5)} jobs: ${result.completed} completed, ${result.other} other, in ${result.seconds.toFixed(1)} s; ` +
      `bot RSS after login ${result.afterLogin.now.toFixed(1)} MiB, at the end ${result.end.now.toFixed(1)} MiB, ` +
      `peak ${result.end.peak.toFixed(1)} MiB`,
  );
}
const smallest = results[0]!;
const largest = results.at(-1)!;
if (results.length > 1) {
  const ratio = largest.end.peak / smallest.end.peak;
  console.log(
    `peak RSS ${largest.jobs} jobs / ${smallest.jobs} jobs: ${ratio.toFixed(2)}x (target at most 1.2x: ${ratio <= 1.2 ? 'met' : 'MISSED'})`,
  );
  if (ratio > 1.2) process.exitCode = 1;
}
if (results.some((result) => result.other > 0 || result.completed !== result.jobs)) process.exitCode = 1;
