import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { startSandbox } from '@sdxl-kit/sandbox';
import { startDiscordStandin } from '../../bot/test-support/discord-standin/server.ts';
import { API_KEY, BOT_TOKEN, CHANNEL, GUILD, alice, bob } from './world.ts';

const MAIN = new URL('../../bot/src/main.ts', import.meta.url).pathname;

it('npm start: configuration from the environment, SIGTERM finishes the job in flight, then logs out', async () => {
  const sandbox = await startSandbox({ apiKey: API_KEY, latencyMs: 700 });
  const standin = await startDiscordStandin({
    token: BOT_TOKEN,
    guilds: [{ id: GUILD, channels: [CHANNEL] }],
  });
  const dir = await mkdtemp(join(tmpdir(), 'sdxl-bot-main-'));
  const child = spawn(process.execPath, ['--no-warnings', MAIN], {
    env: {
      PATH: process.env.PATH,
      DISCORD_TOKEN: BOT_TOKEN,
      DISCORD_API_URL: standin.apiUrl,
      SDXL_API_KEY: API_KEY,
      SDXL_BASE_URL: sandbox.url,
      BOT_DATABASE: join(dir, 'jobs.sqlite'),
      LOG_LEVEL: 'debug',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await standin.waitForGateway();
    if (process.platform === 'linux') {
      // The bot that answers is the same process, now with glibc's arenas capped (read at start-up only).
      const environ = await readFile(`/proc/${child.pid}/environ`, 'utf8');
      assert.ok(environ.split('\0').includes('MALLOC_ARENA_MAX=2'), 'the bot runs with MALLOC_ARENA_MAX=2');
    }
    const record = standin.slash({ ...alice, guildId: GUILD, channelId: CHANNEL }, 'imagine', {
      prompt: 'a quiet harbour',
    });
    await standin.waitFor(() => standin.original(record)?.history.length, 'the job to start');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    const message = standin.original(record)!;
    assert.ok(message.attachments.length > 0, 'the job in flight finished before the bot logged out');
    const lines = output
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { msg: string });
    assert.ok(lines.some((line) => line.msg === 'stopped'));
    assert.ok(!output.includes(API_KEY) && !output.includes(BOT_TOKEN), 'no secret in the log');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await standin.close();
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  }
});

it('npm start refuses to run without a token, naming the variable', async () => {
  const child = spawn(process.execPath, ['--no-warnings', MAIN], {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let errorText = '';
  child.stderr.on('data', (chunk: Buffer) => (errorText += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 2);
  assert.match(errorText, /DISCORD_TOKEN: required/);
});

describe('npm start names the variable to fix when starting fails, in one line without a stack', () => {
  const start = async (env: Record<string, string>) => {
    const child = spawn(process.execPath, ['--no-warnings', MAIN], {
      env: { PATH: process.env.PATH, LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let errorText = '';
    let output = '';
    child.stderr.on('data', (chunk: Buffer) => (errorText += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.doesNotMatch(errorText, /^\s+at /m, 'no stack trace');
    assert.ok(!(errorText + output).includes(BOT_TOKEN), 'the token is never printed');
    return { code, errorText };
  };

  it('an unusable BOT_DATABASE, a token Discord refuses, an unreachable DISCORD_API_URL', async () => {
    const sandbox = await startSandbox({ apiKey: API_KEY });
    const standin = await startDiscordStandin({
      token: 'the-right-token',
      guilds: [{ id: GUILD, channels: [CHANNEL] }],
    });
    const dir = await mkdtemp(join(tmpdir(), 'sdxl-bot-fail-'));
    // A port nothing listens on: bound, then released.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const env = {
      DISCORD_TOKEN: BOT_TOKEN,
      DISCORD_API_URL: standin.apiUrl,
      SDXL_API_KEY: API_KEY,
      SDXL_BASE_URL: sandbox.url,
      BOT_DATABASE: join(dir, 'jobs.sqlite'),
    };
    try {
      const database = await start({ ...env, BOT_DATABASE: join(dir, 'no-such-dir', 'jobs.sqlite') });
      assert.equal(database.code, 2);
      assert.match(
        database.errorText,
        /^Configuration error: BOT_DATABASE: ".*no-such-dir.*" could not be opened/,
      );
      const token = await start(env);
      assert.equal(token.code, 2);
      assert.match(token.errorText, /^Could not start: DISCORD_TOKEN: Discord refused the token/);
      const unreachable = await start({ ...env, DISCORD_API_URL: `http://127.0.0.1:${port}/api` });
      assert.equal(unreachable.code, 1);
      assert.match(
        unreachable.errorText,
        new RegExp(
          `^Could not start: DISCORD_API_URL: could not reach Discord at http://127.0.0.1:${port}/api`,
        ),
      );
    } finally {
      await standin.close();
      await sandbox.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

it('SIGTERM stops the bot even when its stdout is a pipe nobody reads (a full pipe does not block the logger)', async () => {
  const sandbox = await startSandbox({ apiKey: API_KEY, latencyMs: 60_000 });
  const standin = await startDiscordStandin({
    token: BOT_TOKEN,
    guilds: [{ id: GUILD, channels: [CHANNEL] }],
  });
  const dir = await mkdtemp(join(tmpdir(), 'sdxl-bot-pipe-'));
  const child = spawn(process.execPath, ['--no-warnings', MAIN], {
    env: {
      PATH: process.env.PATH,
      DISCORD_TOKEN: BOT_TOKEN,
      DISCORD_API_URL: standin.apiUrl,
      SDXL_API_KEY: API_KEY,
      SDXL_BASE_URL: sandbox.url,
      BOT_DATABASE: join(dir, 'jobs.sqlite'),
      BOT_SHUTDOWN_GRACE_MS: '0',
      BOT_BANNED_WORDS: 'forbidden',
      LOG_LEVEL: 'trace',
    },
    // stdout is a pipe that is never read: once its 64 KiB are full, every write to it would block.
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await standin.waitForGateway();
    // A job kept running (the sandbox answers in a minute), then a burst of refusals: each logs a
    // line, together far more than the pipe's 64 KiB.
    const running = standin.slash({ ...alice, guildId: GUILD, channelId: CHANNEL }, 'imagine', {
      prompt: 'a quiet harbour',
    });
    await standin.waitFor(() => standin.original(running)?.history.length, 'the job to start');
    // ~200 bytes a line: 3,000 lines fill even a socket pair's larger buffer many times over.
    const records = Array.from({ length: 3_000 }, (_, index) =>
      standin.slash({ ...bob, guildId: GUILD, channelId: CHANNEL }, 'imagine', {
        prompt: `a forbidden harbour, take ${index}`,
      }),
    );
    // Until every request is answered, or none more is for 2 s (a logger blocked on the pipe blocks the bot).
    let answered = -1;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const now = records.filter((record) => record.callbacks.length > 0).length;
      if (now === records.length || now === answered) break;
      answered = now;
    }
    child.kill('SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000)),
    ]);
    assert.equal(code, 0, 'the bot exited on SIGTERM within 15 s');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await standin.close();
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  }
});
