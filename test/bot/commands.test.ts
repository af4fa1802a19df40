import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parseEnv } from 'node:util';
import { REQUEST_FIELDS } from '@sdxl-kit/client';
import { startSandbox } from '@sdxl-kit/sandbox';
import type { ConfigError } from '../../bot/src/config.ts';
import { loadConfig } from '../../bot/src/config.ts';
import { commandBodies, deployCommands } from '../../bot/src/deploy-commands.ts';
import type { Logger } from '../../bot/src/logger.ts';
import { createSdxlClient } from '../../bot/src/sdxl.ts';
import { decodeCustomId, encodeCustomId } from '../../bot/src/interactions/custom-id.ts';
import { parsePromptFlags } from '../../bot/src/prompt-flags.ts';
import { applyPromptFlags } from '../../bot/src/commands/imagine.ts';
import { startDiscordStandin } from '../../bot/test-support/discord-standin/server.ts';
import { BOT_TOKEN } from './world.ts';

interface OptionJson {
  name: string;
  type: number;
  required?: boolean;
  min_value?: number;
  max_value?: number;
  autocomplete?: boolean;
}

describe('/imagine options', () => {
  const imagine = (commandBodies() as { name: string; options: OptionJson[] }[]).find(
    (c) => c.name === 'imagine',
  )!;
  const option = (name: string) => imagine.options.find((candidate) => candidate.name === name)!;

  it('declares the contract bounds from REQUEST_FIELDS so Discord enforces them', () => {
    const spec = (name: string) => REQUEST_FIELDS.find((field) => field.name === name)!;
    assert.equal(option('prompt').required, true);
    for (const [optionName, field] of [
      ['samples', 'samples'],
      ['steps', 'steps'],
      ['guidance', 'guidanceScale'],
      ['seed', 'seed'],
      ['high_noise_fraction', 'highNoiseFraction'],
      ['refiner_strength', 'strength'],
    ] as const) {
      assert.equal(option(optionName).min_value, spec(field).min, `${optionName} min`);
      assert.equal(option(optionName).max_value, spec(field).max, `${optionName} max`);
    }
    assert.deepEqual([option('samples').min_value, option('samples').max_value], [1, 4]);
    assert.equal(option('style').autocomplete, true);
    assert.equal(option('scheduler').autocomplete, true);
    assert.equal(option('refiner').type, 5);
    assert.equal(option('negative_prompt').type, 3);
  });

  it('reads --no and --seed from the end of a prompt', () => {
    assert.deepEqual(parsePromptFlags('a cat --no dogs, birds --seed 42'), {
      prompt: 'a cat',
      negative: 'dogs, birds',
      seed: 42,
    });
    assert.deepEqual(parsePromptFlags('a cat on a mat'), { prompt: 'a cat on a mat' });
    assert.deepEqual(parsePromptFlags('a--no-thing'), { prompt: 'a--no-thing' });
    assert.match(parsePromptFlags('a cat --seed 42 --ar 16:9').error ?? '', /--ar is not supported/);
  });

  it('reads flags typed with smart punctuation or in capitals, and refuses any other flag wherever it is', () => {
    for (const typed of [
      'a cat \u2014no dogs',
      'a cat \u2013no dogs',
      'a cat --NO dogs',
      'a cat --No dogs',
    ]) {
      assert.deepEqual(parsePromptFlags(typed), { prompt: 'a cat', negative: 'dogs' }, typed);
    }
    assert.deepEqual(parsePromptFlags('a cat \u2014seed 7'), { prompt: 'a cat', seed: 7 });
    for (const typed of ['a cat --ar 16:9 --no dogs', 'a cat --no dogs --ar 16:9', 'a cat \u2014ar 16:9']) {
      assert.match(
        parsePromptFlags(typed).error ?? '',
        /^(--|\u2014)ar is not supported; supported at the end of the prompt: --no <words>, --seed <number>$/,
        typed,
      );
    }
    assert.match(parsePromptFlags('a cat --no-watermark').error ?? '', /^--no-watermark is not supported/);
    assert.match(
      parsePromptFlags('--no dogs').error ?? '',
      /^The prompt is empty once `--no dogs` is taken out/,
    );
    // A prose dash is not a flag.
    assert.deepEqual(parsePromptFlags('a cat \u2014 and -- a dog'), { prompt: 'a cat \u2014 and -- a dog' });
  });

  it("takes --seed -1 as the seed option does: a random seed; refuses with the option's range", () => {
    assert.deepEqual(applyPromptFlags({ prompt: 'a cat --seed -1' }), { prompt: 'a cat', seed: -1 });
    assert.match(
      parsePromptFlags('a cat --seed -2').error ?? '',
      /--seed: "-2" is not allowed; allowed: a whole number from -1 to 999999999999999 \(-1 picks a random seed\)/,
    );
  });

  it('round-trips button state through custom_id within 100 characters', () => {
    const id = encodeCustomId({ action: 'upscale', jobId: 'f'.repeat(32), index: 3 });
    assert.ok(id.length <= 100);
    assert.deepEqual(decodeCustomId(id), { action: 'upscale', jobId: 'f'.repeat(32), index: 3 });
    assert.equal(decodeCustomId('other-bot:thing'), undefined);
  });
});

describe('configuration', () => {
  const base = { DISCORD_TOKEN: 'token', SDXL_API_KEY: 'key' };

  it('names the variable that is missing or malformed', () => {
    assert.throws(
      () => loadConfig({ SDXL_API_KEY: 'key' }),
      (error: ConfigError) => error.variable === 'DISCORD_TOKEN',
    );
    assert.throws(
      () => loadConfig({ DISCORD_TOKEN: 'token' }),
      (error: ConfigError) => error.variable === 'SDXL_API_KEY',
    );
    assert.throws(
      () => loadConfig({ ...base, BOT_USER_QUEUE_LIMIT: 'lots' }),
      /BOT_USER_QUEUE_LIMIT: "lots" is not allowed; allowed: a whole number 1 or more/,
    );
    assert.throws(() => loadConfig({ ...base, BOT_SPOILER: 'maybe' }), /BOT_SPOILER/);
    assert.throws(
      () => loadConfig({ ...base, SDXL_LOW_CREDITS: '-1' }),
      (error: ConfigError) =>
        error.variable === 'SDXL_LOW_CREDITS' &&
        /^SDXL_LOW_CREDITS: "-1" is not allowed; allowed: a number of credits, 0 or more$/.test(
          error.message,
        ),
    );
  });

  it("sends the sandbox's default key only to a sandbox on this machine, else asks for SDXL_API_KEY", () => {
    for (const url of ['http://127.0.0.1:8787/v1', 'http://localhost:8787/v1', 'http://[::1]:8787/v1']) {
      assert.equal(loadConfig({ DISCORD_TOKEN: 'token', SDXL_BASE_URL: url }).sdxlBaseUrl, url);
    }
    for (const url of [
      'https://sdxl.example.com/v1',
      'http://10.0.0.5:8787/v1',
      'http://127.0.0.1.example.com/v1',
    ]) {
      assert.throws(
        () => loadConfig({ DISCORD_TOKEN: 'token', SDXL_BASE_URL: url }),
        (error: ConfigError) =>
          error.variable === 'SDXL_API_KEY' && error.message.includes(`required for ${url}`),
        url,
      );
    }
    assert.equal(
      loadConfig({ DISCORD_TOKEN: 'token', SDXL_BASE_URL: 'https://sdxl.example.com/v1', SDXL_API_KEY: 'k' })
        .sdxlApiKey,
      'k',
    );
  });

  it('.env.example lists every variable the bot reads, and works once the token is filled in', async () => {
    const example = parseEnv(await readFile(new URL('../../bot/.env.example', import.meta.url), 'utf8'));
    const source = await readFile(new URL('../../bot/src/config.ts', import.meta.url), 'utf8');
    const read = new Set([...source.matchAll(/'((?:DISCORD|BOT|LOG)_[A-Z_]+)'/g)].map((match) => match[1]!));
    for (const variable of [...read, 'SDXL_API_KEY', 'SDXL_BASE_URL', 'SDXL_LOW_CREDITS']) {
      assert.ok(variable in example, `${variable} is in .env.example`);
    }
    const config = loadConfig({ ...example, DISCORD_TOKEN: 'token', SDXL_API_KEY: 'key' });
    assert.equal(config.requestsPerMinute, 5);
  });

  it('defaults to the free plan and needs no hosted key with a sandbox URL', () => {
    const config = loadConfig({ DISCORD_TOKEN: 'token', SDXL_BASE_URL: 'http://127.0.0.1:8787/v1' });
    assert.equal(config.requestsPerMinute, 5);
    assert.equal(config.maxInFlight, 4);
    assert.equal(config.sdxlApiKey, undefined);
    assert.ok(config.jobDeadlineMs < 15 * 60_000);
    const lists = loadConfig({ ...base, BOT_ALLOWED_ROLES: ' 1, 2 ,', BOT_BANNED_WORDS: 'Gore' });
    assert.deepEqual(lists.allowedRoles, ['1', '2']);
    assert.deepEqual(lists.bannedWords, ['gore']);
  });

  it('talks to a sandbox started with its default key when no SDXL_API_KEY is set', async () => {
    const sandbox = await startSandbox();
    try {
      const config = loadConfig({ DISCORD_TOKEN: 'token', SDXL_BASE_URL: sandbox.url });
      const quiet = { debug: () => undefined, warn: () => undefined } as unknown as Logger;
      const balance = await createSdxlClient(config, quiet).getCredits();
      assert.equal(balance.total, sandbox.credits);
    } finally {
      await sandbox.close();
    }
  });
});

describe('npm run deploy-commands', () => {
  it('registers every command in one guild, or globally', async () => {
    const standin = await startDiscordStandin({ token: BOT_TOKEN, applicationId: '700000000000000001' });
    try {
      const env = {
        DISCORD_TOKEN: BOT_TOKEN,
        DISCORD_APPLICATION_ID: '700000000000000001',
        DISCORD_API_URL: standin.apiUrl,
      };
      assert.deepEqual(await deployCommands({ ...env, DISCORD_GUILD_ID: '42' }), {
        scope: 'guild 42',
        count: 4,
      });
      assert.deepEqual(
        standin.commands.get('42')?.map((command) => command.name),
        ['imagine', 'settings', 'quota', 'sdxl-admin'],
      );
      const admin = standin.commands.get('42')?.find((command) => command.name === 'sdxl-admin');
      assert.equal(admin?.default_member_permissions, String(1n << 5n), 'server managers only by default');
      const imagine = standin.commands.get('42')?.find((command) => command.name === 'imagine');
      const options = imagine?.options as {
        name: string;
        type: number;
        min_value?: number;
        max_value?: number;
      }[];
      assert.equal(options.find((option) => option.name === 'image')?.type, 11, 'an attachment option');
      const strength = options.find((option) => option.name === 'strength');
      assert.deepEqual(
        [strength?.type, strength?.min_value, strength?.max_value],
        [10, 0, 1],
        'img2img bounds',
      );
      assert.deepEqual(await deployCommands(env), { scope: 'global', count: 4 });
      await assert.rejects(
        deployCommands({ DISCORD_TOKEN: BOT_TOKEN, DISCORD_API_URL: standin.apiUrl }),
        /DISCORD_APPLICATION_ID: required/,
      );
    } finally {
      await standin.close();
    }
  });
});
