import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { startSandbox, type Sandbox, type SandboxOptions } from '@sdxl-kit/sandbox';
import {
  startDiscordStandin,
  type Actor,
  type DiscordStandin,
  type InteractionRecord,
} from '../../bot/test-support/discord-standin/server.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { ADMIN_CHANNEL, API_KEY, BOT_TOKEN, CHANNEL, GUILD } from './world.ts';

const MAIN = new URL('../../bot/src/main.ts', import.meta.url).pathname;
export const REDIS_PASSWORD = 'redis-secret-do-not-leak-4711';

/** A bot process as `npm start` runs it, with what it printed. */
export interface BotProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** A bot script (`main.ts`, `shards.ts`) in a process of its own, with what it prints collected. */
export function startProcess(script: string, env: Record<string, string>): BotProcess {
  const child = spawn(process.execPath, ['--no-warnings', script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/**
 * Real bot processes (`bot/src/main.ts`, two unless told) on one real Redis, logged in with one token
 * to the Discord stand-in (which hands each interaction to one of them in turn, or to every one of them
 * as Discord does), with the sandbox enforcing the account's pace behind them.
 */
export interface Cluster {
  redis: TestRedis;
  sandbox: Sandbox;
  standin: DiscordStandin;
  bots: BotProcess[];
  env: Record<string, string>;
  /** Starts one more copy, with `env` on top of the cluster's. */
  spawnBot(env?: Record<string, string>): BotProcess;
  imagine(actor: Actor, options: Record<string, string | number | boolean>): InteractionRecord;
  /** The result message with images, or the private reply, whichever the user ends up with. */
  outcome(record: InteractionRecord, timeoutMs?: number): Promise<'result' | string>;
  close(): Promise<void>;
}

/** How many copies a cluster starts and how the stand-in hands them interactions. */
export interface ClusterOptions {
  /** @default 2 */
  copies?: number;
  /** @default 'one-session' */
  delivery?: 'one-session' | 'every-session';
  /** What copy `index` gets on top of the cluster's environment (its own port, say). */
  copyEnv?: (index: number) => Record<string, string>;
}

export async function startCluster(
  env: Record<string, string>,
  sandboxOptions: SandboxOptions,
  options: ClusterOptions = {},
): Promise<Cluster> {
  const copies = options.copies ?? 2;
  const redis = await startRedis({ password: REDIS_PASSWORD });
  const sandbox = await startSandbox({ apiKey: API_KEY, ...sandboxOptions });
  const standin = await startDiscordStandin({
    token: BOT_TOKEN,
    guilds: [{ id: GUILD, channels: [CHANNEL, ADMIN_CHANNEL] }],
    interactionDelivery: options.delivery ?? 'one-session',
  });
  const fullEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    DISCORD_TOKEN: BOT_TOKEN,
    DISCORD_API_URL: standin.apiUrl,
    SDXL_API_KEY: API_KEY,
    SDXL_BASE_URL: sandbox.url,
    REDIS_URL: redis.url,
    BOT_REDIS_PREFIX: `test-${randomUUID()}`,
    BOT_ADMIN_CHANNEL_ID: ADMIN_CHANNEL,
    LOG_LEVEL: 'debug',
    ...env,
  };
  const spawnBot = (extra: Record<string, string> = {}): BotProcess =>
    startProcess(MAIN, { ...fullEnv, ...extra });
  const bots = Array.from({ length: copies }, (_, index) => spawnBot(options.copyEnv?.(index)));
  try {
    await standin.waitForGateway(60_000, copies);
  } catch (error) {
    for (const bot of bots) bot.child.kill('SIGKILL');
    await Promise.all([standin.close(), sandbox.close(), redis.close()]);
    throw new Error(
      `the bots did not log in: ${bots.map((bot) => bot.output().slice(-2_000)).join('\n---\n')}`,
      {
        cause: error,
      },
    );
  }
  const cluster: Cluster = {
    redis,
    sandbox,
    standin,
    bots,
    env: fullEnv,
    spawnBot,
    imagine: (actor, options) =>
      standin.slash({ guildId: GUILD, channelId: CHANNEL, ...actor }, 'imagine', options),
    outcome: (record, timeoutMs = 20_000) =>
      standin.waitFor(
        () => {
          const original = standin.original(record);
          if (original && !original.deleted && original.attachments.length > 0) return 'result';
          const reply = [
            ...(record.originalMessageId ? [record.originalMessageId] : []),
            ...record.followupIds,
          ]
            .map((id) => standin.message(id))
            .find((message) => message && !message.deleted && message.ephemeral && message.content);
          return reply?.content;
        },
        'a result or a private reply',
        timeoutMs,
      ),
    async close() {
      for (const bot of cluster.bots) if (bot.child.exitCode === null) bot.child.kill('SIGTERM');
      await Promise.all(
        cluster.bots.map((bot) =>
          Promise.race([bot.exited, new Promise((resolve) => setTimeout(resolve, 10_000))]),
        ),
      );
      for (const bot of cluster.bots) if (bot.child.exitCode === null) bot.child.kill('SIGKILL');
      await standin.close();
      await sandbox.close();
      await redis.close();
      // Whatever the test was about: no secret reached a log line or a Discord message.
      const everything =
        cluster.bots.map((bot) => bot.output()).join('') +
        standin.messages.map((message) => JSON.stringify(message.history)).join('');
      for (const secret of [API_KEY, BOT_TOKEN, REDIS_PASSWORD])
        assert.ok(!everything.includes(secret), `a secret (${secret.slice(0, 6)}…) leaked`);
    },
  };
  return cluster;
}

export const user = (index: number): Actor => ({
  userId: String(810_000_000_000_000_000n + BigInt(index)),
  username: `user${index}`,
});

export const rateLimited = (sandbox: Sandbox) =>
  sandbox.requests.filter((request) => request.status === 429).length;

/** Polls a condition the stand-in cannot announce (a process's output, the sandbox's record). */
export async function eventually<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The port a copy started with `BOT_HTTP_PORT=0` serves health and metrics on, once it says so. */
export async function operatorPort(bot: BotProcess): Promise<number> {
  const line = await eventually(
    () => /"port":(\d+),"msg":"health and metrics served"/.exec(bot.output()) ?? undefined,
    'the copy to serve health and metrics',
    60_000,
  );
  return Number(line[1]);
}

/** GET on a copy's operator port: the status and body, or undefined when nothing listens (the copy exited). */
export async function operatorGet(
  port: number,
  path: '/health' | '/metrics' | '/live',
): Promise<{ status: number; body: string; contentType: string } | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return {
      status: response.status,
      body: await response.text(),
      contentType: response.headers.get('content-type') ?? '',
    };
  } catch {
    return undefined;
  }
}

/** The sum of a metric's samples in Prometheus's text format (every label set), or undefined if absent. */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  const samples = text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => line.includes(labels));
  if (samples.length === 0) return undefined;
  return samples.reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
