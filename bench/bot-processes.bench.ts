// Several bot processes on one Redis, against one bot process on the same Redis, in one invocation:
// `npm run bench:bot -- --processes 2`. Each run is a throwaway redis-server, a fresh sandbox that
// enforces the account's pace (BENCH_RPM starts per 60 s, the bots told the same), the Discord
// stand-in (which gives each interaction to every gateway connection, as Discord gives it to every
// copy logged in as its shard: one copy claims and answers it) and N processes of bot/src/main.ts as
// `npm start` runs them. Each process first runs an `/imagine` (so it knows the balance and has run
// the code once, as a bot that has been up a while has; a fresh process's first /imagine waits for
// the balance call: warm-ups are typed until each copy has answered one); then the rest of
// BENCH_RPM * BENCH_WINDOWS + 1 starts are typed at once by BENCH_USERS users and every result
// awaited. Prints, per run: the slowest acknowledgement of the burst (target under 250 ms), whether
// each interaction was answered once, throughput against the pace's ideal (target within 10%), the
// sandbox's 429s (target none), each process's peak memory (VmHWM); then the N-process run over the
// one-process run.
//
// Ideal throughput: a sliding window of W = 60 s that admits L = BENCH_RPM starts lets J jobs in line
// start L at once, then L more each time the previous window's starts age out: the last start comes
// floor((J - 1) / L) * W after the first, however the first L were spread. J = L * k + 1 (the warm-up
// jobs counted) makes that k * W, and the jobs after the first start at exactly L per W, the rpm.
// Measured: the sandbox's arrival times of the admitted submits, first to last; throughput = ideal
// span / measured span (100% = the account's rpm exactly; the bots count each start over W plus a 2%
// margin, so about 98% is their best).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { startDiscordStandin, type InteractionRecord } from '../bot/test-support/discord-standin/server.ts';
import { startRedis } from '../test/support/redis.ts';

const RPM = Number(process.env.BENCH_RPM ?? 60);
const WINDOWS = Number(process.env.BENCH_WINDOWS ?? 1);
const WINDOW_MS = 60_000;
const USERS = Number(process.env.BENCH_USERS ?? 20);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 200);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 8);
/** Starts in a run, the warm-up jobs counted. */
const JOBS = RPM * WINDOWS + 1;
/** Every job of the burst is accepted: the per-user limit is what each user sends. */
const PER_USER_LIMIT = Math.ceil(JOBS / USERS);
const TOKEN = 'bench.bot-token.not-a-real-one';
const API_KEY = 'bench-api-key';
const GUILD = '910000000000000001';
const CHANNEL = '910000000000000002';
const MAIN = new URL('../bot/src/main.ts', import.meta.url).pathname;

/** Peak resident memory of a process so far (VmHWM), in MiB. */
async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

interface RunResult {
  processes: number;
  slowestAckMs: number;
  medianAckMs: number;
  p95AckMs: number;
  /** Interactions of the burst not answered exactly once (a second answer refused with 40060). */
  notOnce: number;
  /** Commands of the burst each process answered (`job queued`). */
  answered: number[];
  /** First to last admitted submit at the sandbox, ms. */
  startSpanMs: number;
  idealSpanMs: number;
  /** The burst's first start to the first window's last, ms: how fast it went out (images in flight bound it). */
  firstWindowMs: number;
  /** Burst to the last result posted, ms. */
  allDoneMs: number;
  completed: number;
  rateLimited: number;
  billed: number;
  peakMb: number[];
  /** `job running` lines per process: who ran the jobs. */
  ran: number[];
}

const isSubmit = (request: Sandbox['requests'][number]) =>
  request.method === 'POST' && /^\/v[12]\/sdxl1\.0-txt2img/.test(request.path);

async function run(processes: number): Promise<RunResult> {
  const redis = await startRedis();
  const sandbox = await startSandbox({
    apiKey: API_KEY,
    latencyMs: LATENCY_MS,
    credits: 1e6,
    rpm: RPM,
    rateWindowMs: WINDOW_MS,
    recordLimit: 100_000,
  });
  const standin = await startDiscordStandin({
    token: TOKEN,
    guilds: [{ id: GUILD, channels: [CHANNEL] }],
    interactionDelivery: 'every-session',
  });
  const bots: { child: ChildProcess; output: string }[] = [];
  const prefix = `bench-${randomUUID()}`;
  for (let index = 0; index < processes; index++) {
    const child = spawn(process.execPath, ['--no-warnings', MAIN], {
      env: {
        PATH: process.env.PATH,
        DISCORD_TOKEN: TOKEN,
        DISCORD_API_URL: standin.apiUrl,
        SDXL_API_KEY: API_KEY,
        SDXL_BASE_URL: sandbox.url,
        REDIS_URL: redis.url,
        BOT_REDIS_PREFIX: prefix,
        BOT_REQUESTS_PER_MINUTE: String(RPM),
        BOT_RATE_WINDOW_MS: String(WINDOW_MS),
        BOT_MAX_IN_FLIGHT: String(IN_FLIGHT),
        BOT_USER_QUEUE_LIMIT: String(PER_USER_LIMIT),
        BOT_USER_DAILY_IMAGES: '0',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const bot = { child, output: '' };
    // Only what the bench counts is kept: a process's info lines would otherwise fill memory here.
    child.stdout!.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n'))
        if (/"msg":"job (running|queued)"|"level":(40|50|60)/.test(line)) bot.output += `${line}\n`;
    });
    child.stderr!.on('data', (chunk: Buffer) => (bot.output += chunk.toString()));
    bots.push(bot);
  }
  try {
    await standin.waitForGateway(60_000, processes);
    // Warm-ups, each awaited, until every process has answered one: whichever copy claims it answers.
    const queued = (bot: { output: string }) => (bot.output.match(/"msg":"job queued"/g) ?? []).length;
    let warmups = 0;
    while (bots.some((bot) => queued(bot) === 0)) {
      if (warmups === 8 * processes) throw new Error('a process answered none of the warm-ups');
      const record = standin.slash(
        { userId: String(819_000_000_000_000_000n + BigInt(warmups)), guildId: GUILD, channelId: CHANNEL },
        'imagine',
        { prompt: `warm-up ${warmups}` },
      );
      warmups++;
      await standin.waitFor(
        () => (standin.original(record)?.attachments.length ? true : undefined),
        'the warm-up result',
        30_000,
      );
    }
    const answeredBefore = bots.map(queued);

    const started = Date.now();
    const records: InteractionRecord[] = Array.from({ length: JOBS - warmups }, (_, job) =>
      standin.slash(
        {
          userId: String(810_000_000_000_000_000n + BigInt(job % USERS)),
          guildId: GUILD,
          channelId: CHANNEL,
        },
        'imagine',
        { prompt: `bench prompt ${job}` },
      ),
    );
    const ended = (record: InteractionRecord) => {
      const original = standin.original(record);
      if (original && !original.deleted && original.attachments.length > 0) return 'completed';
      if (original && !original.deleted && /^[❌⏱🔁]/u.test(original.content)) return 'failed';
      const refused = [record.originalMessageId, ...record.followupIds]
        .map((id) => (id ? standin.message(id) : undefined))
        .some((message) => message?.ephemeral && message.content);
      return refused ? 'refused' : undefined;
    };
    await standin.waitFor(
      () => records.every((record) => ended(record)),
      'every job to end',
      (WINDOWS + 3) * WINDOW_MS,
    );
    const allDoneMs = Date.now() - started;
    const ackOf = (record: InteractionRecord) =>
      (record.callbacks[0]?.at ?? Number.POSITIVE_INFINITY) - record.dispatchedAt;
    const acks = records.map(ackOf).sort((a, b) => a - b);
    const submits = sandbox.requests.filter((request) => isSubmit(request) && request.status < 400);
    const startSpanMs = submits.at(-1)!.receivedAt - submits[0]!.receivedAt;
    return {
      processes,
      slowestAckMs: acks.at(-1)!,
      medianAckMs: acks[Math.floor(acks.length / 2)]!,
      p95AckMs: acks[Math.floor(acks.length * 0.95)]!,
      notOnce: records.filter((record) => record.callbacks.length !== 1 || record.refusedCallbacks > 0)
        .length,
      answered: bots.map((bot, index) => queued(bot) - answeredBefore[index]!),
      startSpanMs,
      idealSpanMs: Math.floor((JOBS - 1) / RPM) * WINDOW_MS,
      firstWindowMs: submits[Math.min(RPM, submits.length) - 1]!.receivedAt - submits[warmups]!.receivedAt,
      allDoneMs,
      completed: warmups + records.filter((record) => ended(record) === 'completed').length,
      rateLimited: sandbox.requests.filter((request) => request.status === 429).length,
      billed: sandbox.billed.length,
      peakMb: await Promise.all(bots.map((bot) => peakRssMb(bot.child.pid!))),
      ran: bots.map((bot) => (bot.output.match(/"msg":"job running"/g) ?? []).length),
    };
  } catch (error) {
    for (const bot of bots) process.stderr.write(bot.output.slice(-4_000));
    throw error;
  } finally {
    for (const bot of bots) bot.child.kill('SIGTERM');
    await Promise.all(
      bots.map(
        (bot) =>
          bot.child.exitCode !== null ||
          new Promise((resolve) => bot.child.once('exit', resolve)).then(() => undefined),
      ),
    );
    await standin.close();
    await sandbox.close();
    await redis.close();
  }
}

function report(result: RunResult): boolean {
  const throughput = result.idealSpanMs / result.startSpanMs;
  const slowestMet = result.slowestAckMs < 250;
  const paceMet = throughput >= 0.9;
  console.log(
    `\n${result.processes} process${result.processes === 1 ? '' : 'es'} (load average now ${loadavg()[0]!.toFixed(2)})`,
  );
  console.log(
    `  acknowledgement: slowest ${result.slowestAckMs} ms (target < 250: ${slowestMet ? 'met' : 'MISSED'}), ` +
      `median ${result.medianAckMs} ms, p95 ${result.p95AckMs} ms; answered other than once: ${result.notOnce} (target 0)` +
      (result.processes > 1 ? `; commands answered per process ${result.answered.join(' / ')}` : ''),
  );
  console.log(
    `  pace: ${JOBS} starts in ${(result.startSpanMs / 1000).toFixed(2)} s first to last (sandbox arrivals); ` +
      `ideal ${(result.idealSpanMs / 1000).toFixed(2)} s; throughput ${(throughput * 100).toFixed(1)}% of ideal ` +
      `(${(((JOBS - 1) / result.startSpanMs) * WINDOW_MS).toFixed(1)} starts per minute after the first; target within 10%: ${paceMet ? 'met' : 'MISSED'}); ` +
      `the burst's first window's starts went out in ${(result.firstWindowMs / 1000).toFixed(2)} s`,
  );
  console.log(
    `  429s from the sandbox: ${result.rateLimited} (target 0: ${result.rateLimited === 0 ? 'met' : 'MISSED'}); ` +
      `${result.completed} of ${JOBS} posted their result, ${result.billed} billed; all ended ${(result.allDoneMs / 1000).toFixed(1)} s after the burst`,
  );
  console.log(
    `  peak memory (VmHWM) per process: ${result.peakMb.map((mb) => `${mb.toFixed(1)} MiB`).join(', ')}; ` +
      `jobs run per process: ${result.ran.join(', ')}`,
  );
  return (
    slowestMet &&
    paceMet &&
    result.notOnce === 0 &&
    result.rateLimited === 0 &&
    result.completed === JOBS &&
    result.billed === JOBS
  );
}

/** Runs one process then `processes`, each on its own Redis; resolves whether every target was met. */
export async function benchProcesses(processes: number): Promise<boolean> {
  console.log(
    `${JOBS} starts: warm-ups until each process has answered one, then the rest at once from ${USERS} users (per-user limit ${PER_USER_LIMIT}, so none is refused), ` +
      `1 process then ${processes}, each run on a fresh redis-server; sandbox enforcing ${RPM} starts per ` +
      `${WINDOW_MS / 1000} s (the bots told the same), latency ${LATENCY_MS} ms; ${IN_FLIGHT} images in flight; ` +
      `load average ${loadavg()
        .map((value) => value.toFixed(2))
        .join(' ')} on ${availableParallelism()} CPUs.`,
  );
  const one = await run(1);
  const oneMet = report(one);
  const many = await run(processes);
  const manyMet = report(many);
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const throughput = (result: RunResult) => result.idealSpanMs / result.startSpanMs;
  console.log(`\n${processes} processes over 1:`);
  console.log(
    `  slowest acknowledgement ${(many.slowestAckMs / one.slowestAckMs).toFixed(2)}x (${many.slowestAckMs} / ${one.slowestAckMs} ms); ` +
      `median ${(many.medianAckMs / Math.max(1, one.medianAckMs)).toFixed(2)}x`,
  );
  console.log(
    `  throughput ${(throughput(many) / throughput(one)).toFixed(3)}x (${(throughput(many) * 100).toFixed(1)}% / ${(throughput(one) * 100).toFixed(1)}% of ideal); ` +
      `429s ${many.rateLimited} / ${one.rateLimited}`,
  );
  console.log(
    `  peak memory per process ${(mean(many.peakMb) / mean(one.peakMb)).toFixed(2)}x (mean ${mean(many.peakMb).toFixed(1)} / ${mean(one.peakMb).toFixed(1)} MiB); ` +
      `all processes together ${(many.peakMb.reduce((a, b) => a + b, 0) / mean(one.peakMb)).toFixed(2)}x`,
  );
  console.log(`  load average at the end ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} CPUs`);
  return oneMet && manyMet;
}
