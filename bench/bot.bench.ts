// 100 simultaneous interactions from 20 users through the Discord stand-in, against the bot as
// `npm start` runs it (its own process), twice: right after login (cold) and again (warm). Three in
// five are /imagine, one a V click (a variation job through the same queue) and one a U click (the
// image posted full size at once), on a grid made before the bursts. Prints the slowest
// acknowledgement (Discord allows 3 s; target under 250 ms) and how everything ended; then clicks
// Upscale 4x several times at once and prints the bot's peak memory before and with those 4x upscales
// (4096x4096 images, decoded and re-encoded to fit the upload limit) in flight. The stand-in enforces
// Discord's rate limits (its per-route buckets, per-channel message limits, the 5 per 2 s of an
// interaction's webhook, the global 50 a second): each burst prints the 429s the bot drew and how long
// the results that met one waited for it (0 today: results go through each interaction's own reply and
// position edits are spaced; sent as follow-ups they would meet the channel's limit). Run on demand:
// npm run bench:bot. With `-- --processes N`: N bot processes on one Redis against one, instead
// (bench/bot-processes.bench.ts).
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startSandbox } from '@sdxl-kit/sandbox';
import { startDiscordStandin, type InteractionRecord } from '../bot/test-support/discord-standin/server.ts';
import type { StandinMessage } from '../bot/test-support/discord-standin/messages.ts';

const { values: flags } = parseArgs({ options: { processes: { type: 'string' } } });

if (flags.processes !== undefined) {
  const processes = Number(flags.processes);
  if (!Number.isInteger(processes) || processes < 1)
    throw new Error('--processes takes a whole number, 1 or more');
  const { benchProcesses } = await import('./bot-processes.bench.ts');
  if (!(await benchProcesses(processes))) process.exitCode = 1;
} else {
  const USERS = Number(process.env.BENCH_USERS ?? 20);
  const JOBS = Number(process.env.BENCH_JOBS ?? 100);
  const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 200);
  const PER_USER_LIMIT = 3;
  /** BENCH_CLICKS=0: /imagine only, as before the V and U clicks were mixed in (for a baseline in the same conditions). */
  const CLICKS = process.env.BENCH_CLICKS !== '0';
  /** Upscale 4x clicks sent at once for the memory figure. */
  const UPSCALES = Number(process.env.BENCH_UPSCALES ?? 8);
  const TOKEN = 'bench.bot-token.not-a-real-one';
  const API_KEY = 'bench-api-key';
  const GUILD = '910000000000000001';
  const CHANNEL = '910000000000000002';

  const sandbox = await startSandbox({ apiKey: API_KEY, latencyMs: LATENCY_MS, credits: 1e6 });
  const standin = await startDiscordStandin({
    token: TOKEN,
    guilds: [{ id: GUILD, channels: [CHANNEL] }],
    rateLimits: true,
  });
  const limits = standin.rateLimits!;
  const dir = await mkdtemp(join(tmpdir(), 'sdxl-bot-bench-'));
  const bot = spawn(
    process.execPath,
    ['--no-warnings', new URL('../bot/src/main.ts', import.meta.url).pathname],
    {
      env: {
        PATH: process.env.PATH,
        DISCORD_TOKEN: TOKEN,
        DISCORD_API_URL: standin.apiUrl,
        SDXL_API_KEY: API_KEY,
        SDXL_BASE_URL: sandbox.url,
        BOT_DATABASE: join(dir, 'jobs.sqlite'),
        // A paid plan's pace, so the run measures the bot and not the free plan's 5 a minute.
        BOT_REQUESTS_PER_MINUTE: '1000',
        BOT_MAX_IN_FLIGHT: '4',
        BOT_USER_QUEUE_LIMIT: String(PER_USER_LIMIT),
        BOT_USER_DAILY_IMAGES: '1000',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );

  /** Peak resident memory of a process so far (VmHWM), in MiB. */
  async function peakRssMb(pid: number): Promise<number> {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
  }

  type Kind = '/imagine' | 'V click' | 'U click';
  type Outcome = 'completed' | 'refused (per-user limit)' | 'other';

  function outcome(record: InteractionRecord): Outcome | undefined {
    const original = standin.original(record);
    if (original && !original.deleted && original.attachments.length > 0) return 'completed';
    const replies = [record.originalMessageId, ...record.followupIds].map((id) =>
      id ? standin.message(id) : undefined,
    );
    if (replies.some((message) => message?.ephemeral && /in line \(the limit is/.test(message.content))) {
      return 'refused (per-user limit)';
    }
    if (original && !original.deleted && /^[❌⏱🔁]/u.test(original.content)) return 'other';
    return undefined;
  }

  /** A button of a message by its label. */
  function button(message: StandinMessage, label: string): string {
    const buttons = message.components.flatMap(
      (row) => (row.components ?? []) as { label?: string; custom_id?: string }[],
    );
    const found = buttons.find((candidate) => candidate.label === label)?.custom_id;
    if (!found) throw new Error(`no "${label}" button on the message`);
    return found;
  }

  /** The message an interaction's reply became once it carries images. */
  function result(record: InteractionRecord, timeoutMs = 60_000): Promise<StandinMessage> {
    return standin.waitFor(
      () => {
        const original = standin.original(record);
        return original && original.attachments.length > 0 ? original : undefined;
      },
      'a result',
      timeoutMs,
    );
  }

  /** One burst: JOBS simultaneous interactions from USERS users (3 in 5 /imagine, then a V and a U click), until all have ended. */
  async function burst(label: string, userOffset: number, grid: StandinMessage): Promise<boolean> {
    const started = Date.now();
    const records: InteractionRecord[] = [];
    const kinds = new Map<InteractionRecord, Kind>();
    for (let job = 0; job < JOBS; job++) {
      const actor = {
        userId: String(810_000_000_000_000_000n + BigInt(userOffset + (job % USERS))),
        guildId: GUILD,
        channelId: CHANNEL,
      };
      const kind: Kind = !CLICKS
        ? '/imagine'
        : job % 5 === 3
          ? 'V click'
          : job % 5 === 4
            ? 'U click'
            : '/imagine';
      const image = 1 + (job % 2);
      const record =
        kind === '/imagine'
          ? standin.slash(actor, 'imagine', { prompt: `bench prompt ${job}` })
          : standin.clickButton(actor, grid, button(grid, `${kind[0]}${image}`));
      kinds.set(record, kind);
      records.push(record);
    }
    // When each interaction ended, noted as the stand-in changes: how long a 429 held its result up.
    const endedAt = new Map<InteractionRecord, number>();
    await standin.waitFor(
      () => {
        for (const record of records)
          if (!endedAt.has(record) && outcome(record)) endedAt.set(record, Date.now());
        return endedAt.size === records.length;
      },
      'every job to end',
      300_000,
    );
    const elapsed = Date.now() - started;
    const hits = limits.hits.filter((hit) => hit.at >= started);
    const buckets = new Map<string, number>();
    for (const hit of hits)
      buckets.set(hit.bucket ?? hit.scope, (buckets.get(hit.bucket ?? hit.scope) ?? 0) + 1);
    // A result that met a 429 waited from its first one until it was posted.
    const waits = records.flatMap((record) => {
      const first = hits.find((hit) => hit.interactionToken === record.token);
      return first && outcome(record) === 'completed' ? [endedAt.get(record)! - first.at] : [];
    });
    const acks = records.map((record) => record.callbacks[0]!.at - record.dispatchedAt).sort((a, b) => a - b);
    const counts = new Map<Outcome, number>();
    const byKind = new Map<string, number>();
    for (const record of records) {
      counts.set(outcome(record)!, (counts.get(outcome(record)!) ?? 0) + 1);
      const key = `${kinds.get(record)} ${outcome(record)}`;
      byKind.set(key, (byKind.get(key) ?? 0) + 1);
    }
    const slowestOf = (kind: Kind) =>
      Math.max(
        0,
        ...records
          .filter((record) => kinds.get(record) === kind)
          .map((record) => record.callbacks[0]!.at - record.dispatchedAt),
      );
    const slowest = acks.at(-1)!;
    const accounted = (counts.get('completed') ?? 0) + (counts.get('refused (per-user limit)') ?? 0);
    console.log(`\n${label}`);
    console.log(
      `  acknowledgement: slowest ${slowest} ms (Discord allows 3000; target < 250: ${slowest < 250 ? 'met' : 'MISSED'}), ` +
        `fastest ${acks[0]} ms, median ${acks[Math.floor(acks.length / 2)]} ms, p95 ${acks[Math.floor(acks.length * 0.95)]} ms`,
    );
    console.log(
      `  slowest by kind: ${(['/imagine', 'V click', 'U click'] as const).map((kind) => `${kind} ${slowestOf(kind)} ms`).join(', ')}`,
    );
    console.log(`  ${[...byKind].map(([name, count]) => `${name}: ${count}`).join(', ')}`);
    console.log(
      `  every job completed or was refused by the per-user limit: ${accounted === JOBS ? 'yes' : `NO (${JOBS - accounted} other)`}; ` +
        `all ended in ${(elapsed / 1000).toFixed(1)} s`,
    );
    console.log(
      `  429s drawn from Discord's rate limits: ${hits.length}${hits.length ? ` (${[...buckets].map(([name, count]) => `${name} ${count}`).join(', ')})` : ''}; ` +
        `results that waited for one: ${waits.length}${waits.length ? `, longest ${Math.max(...waits)} ms, in all ${waits.reduce((sum, ms) => sum + ms, 0)} ms` : ''}`,
    );
    return accounted === JOBS && slowest < 3000;
  }

  try {
    await standin.waitForGateway();
    console.log(
      `${JOBS} simultaneous interactions (${CLICKS ? '3 in 5 /imagine, 1 V click, 1 U click' : '/imagine only'}) from ${USERS} users, twice; bot as npm start runs it; sandbox latency ${LATENCY_MS} ms; ` +
        `4 images in flight; per-user limit ${PER_USER_LIMIT}; load average ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} CPUs.`,
    );
    // The grid the clicks act on, made before the bursts by a user of its own.
    const maker = { userId: '819000000000000000', guildId: GUILD, channelId: CHANNEL };
    const grid = await result(standin.slash(maker, 'imagine', { prompt: 'bench grid', samples: 2 }));
    const cold = await burst('burst 1 (cold: right after login)', 0, grid);
    const warm = await burst('burst 2 (warm: new users, same process)', USERS, grid);
    const before = await peakRssMb(bot.pid!);
    console.log(`\nbot peak memory (VmHWM) after the bursts: ${before.toFixed(1)} MiB`);

    // Upscale 4x clicked UPSCALES times at once on a U1 post, by as many users (the per-user limit allows 3).
    const full = await result(standin.clickButton(maker, grid, button(grid, 'U1')));
    const upStarted = Date.now();
    const upscales = Array.from({ length: UPSCALES }, (_, n) =>
      standin.clickButton(
        { userId: String(818_000_000_000_000_000n + BigInt(n)), guildId: GUILD, channelId: CHANNEL },
        full,
        button(full, 'Upscale 4x'),
      ),
    );
    const upscaled = await Promise.all(upscales.map((record) => result(record, 300_000)));
    const sizes = upscaled.map((message) => message.attachments[0]!.size);
    console.log(
      `${UPSCALES} Upscale 4x clicked at once (4 images in flight): all posted in ${((Date.now() - upStarted) / 1000).toFixed(1)} s, ` +
        `${(Math.min(...sizes) / 1024 / 1024).toFixed(1)}-${(Math.max(...sizes) / 1024 / 1024).toFixed(1)} MiB each; ` +
        `bot peak memory (VmHWM) with them in flight: ${(await peakRssMb(bot.pid!)).toFixed(1)} MiB (before: ${before.toFixed(1)} MiB)`,
    );
    console.log(`429s drawn in the whole run (bursts, grid and upscales): ${limits.hits.length}`);
    if (!cold || !warm) process.exitCode = 1;
  } finally {
    bot.kill('SIGTERM');
    await new Promise((resolve) => bot.on('exit', resolve));
    await standin.close();
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  }
}
