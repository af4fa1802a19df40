import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startSandbox, type Sandbox, type SandboxOptions } from '@sdxl-kit/sandbox';
import { createBot, type Bot } from '../../bot/src/bot.ts';
import { loadConfig, type BotConfig } from '../../bot/src/config.ts';
import {
  startDiscordStandin,
  type Actor,
  type DiscordStandin,
  type InteractionRecord,
  type StandinOptions,
} from '../../bot/test-support/discord-standin/server.ts';
import type { StandinMessage } from '../../bot/test-support/discord-standin/messages.ts';

export const BOT_TOKEN = 'MTIzNDU2Nzg5MDEyMzQ1Njc4.GbOtTk.standin-bot-token-do-not-leak';
export const API_KEY = 'SG_test_secret_api_key_9f8e7d6c';
export const GUILD = '900000000000000001';
export const CHANNEL = '900000000000000010';
export const OTHER_CHANNEL = '900000000000000011';
export const ADMIN_CHANNEL = '900000000000000012';
export const ARTIST_ROLE = '900000000000000020';
export const MANAGE_GUILD = String(1n << 5n);
export const MANAGE_MESSAGES = String(1n << 13n);

export const alice: Actor = { userId: '800000000000000001', username: 'alice' };
export const bob: Actor = { userId: '800000000000000002', username: 'bob' };
export const moderator: Actor = {
  userId: '800000000000000003',
  username: 'mod',
  permissions: MANAGE_MESSAGES,
};
export const manager: Actor = { userId: '800000000000000004', username: 'boss', permissions: MANAGE_GUILD };

/** A running bot between a Discord stand-in and an SDXL sandbox, with everything it logged. */
export interface World {
  sandbox: Sandbox;
  standin: DiscordStandin;
  bot: Bot;
  config: BotConfig;
  logs: string[];
  /** Stops the bot (as on SIGTERM) and starts a new one on the same job store. */
  restart(): Promise<void>;
  close(): Promise<void>;
  /** Types /imagine and waits for the message the user ends up with (result, status or refusal). */
  imagine(actor: Actor, options: Record<string, string | number | boolean>): InteractionRecord;
  result(record: InteractionRecord, timeoutMs?: number): Promise<StandinMessage>;
  /** The private message the user got instead of a result. */
  privateReply(record: InteractionRecord): Promise<StandinMessage>;
  /** Clicks ℹ️ under a result and waits for the private answer. */
  info(actor: Actor, result: StandinMessage): Promise<StandinMessage>;
  /** Every text a user or admin could read: contents, embeds, components, file names. */
  everythingShown(): string;
}

export async function startWorld(
  env: Record<string, string> = {},
  sandboxOptions: SandboxOptions = {},
  standinOptions: Pick<StandinOptions, 'attachmentSizeLimit' | 'rateLimits' | 'ackDeadlineMs'> = {},
): Promise<World> {
  const sandbox = await startSandbox({ apiKey: API_KEY, ...sandboxOptions });
  const standin = await startDiscordStandin({
    token: BOT_TOKEN,
    guilds: [{ id: GUILD, channels: [CHANNEL, OTHER_CHANNEL, ADMIN_CHANNEL], roles: [ARTIST_ROLE] }],
    ...standinOptions,
  });
  const dir = await mkdtemp(join(tmpdir(), 'sdxl-bot-'));
  const config = loadConfig({
    DISCORD_TOKEN: BOT_TOKEN,
    DISCORD_API_URL: standin.apiUrl,
    SDXL_API_KEY: API_KEY,
    SDXL_BASE_URL: sandbox.url,
    BOT_DATABASE: join(dir, 'jobs.sqlite'),
    BOT_ADMIN_CHANNEL_ID: ADMIN_CHANNEL,
    BOT_REQUESTS_PER_MINUTE: '100',
    BOT_MAX_IN_FLIGHT: '2',
    BOT_SHUTDOWN_GRACE_MS: '5000',
    // The composed-grid layout, which most tests read (embed fields); gallery.test.ts turns the gallery on.
    BOT_MEDIA_GALLERY: 'false',
    // The sandbox answers in milliseconds: the first status check need not wait for a real model's time.
    BOT_POLL_FIRST_MS: '20',
    LOG_LEVEL: 'debug',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const boot = async () => {
    const bot = createBot(config, { logDestination: sink });
    await bot.start();
    return bot;
  };
  let bot = await boot();
  const world: World = {
    sandbox,
    standin,
    get bot() {
      return bot;
    },
    config,
    logs,
    async restart() {
      await bot.stop();
      bot = await boot();
    },
    async close() {
      await bot.stop();
      await standin.close();
      await sandbox.close();
      await rm(dir, { recursive: true, force: true });
      // Every test, whatever it was about: neither secret reached a Discord message or a log line.
      const everything = logs.join('') + world.everythingShown();
      for (const [name, secret] of [
        ['API key', config.sdxlApiKey],
        ['bot token', BOT_TOKEN],
      ] as const) {
        if (secret && everything.includes(secret))
          throw new Error(`the ${name} leaked into a message or the log`);
      }
      // An interaction token lets anyone answer as the bot for 15 minutes: none may reach the log.
      const logText = logs.join('');
      for (const record of standin.interactions.values()) {
        if (logText.includes(record.token)) throw new Error('an interaction token leaked into the log');
      }
    },
    imagine: (actor, options) =>
      standin.slash({ guildId: GUILD, channelId: CHANNEL, ...actor }, 'imagine', options),
    result: (record, timeoutMs) =>
      standin.waitFor(
        () => {
          const message = standin.original(record);
          return message && !message.deleted && message.attachments.length > 0 ? message : undefined;
        },
        'a result with images',
        timeoutMs,
      ),
    privateReply: (record) =>
      standin.waitFor(
        () =>
          [...(record.originalMessageId ? [record.originalMessageId] : []), ...record.followupIds]
            .map((id) => standin.message(id))
            .find((message) => message && !message.deleted && message.ephemeral && message.content),
        'a private reply',
      ),
    info(actor, result) {
      const id = buttonIds(result).find((custom) => custom.includes(':info:'));
      assert.ok(id, 'the result has an \u2139\ufe0f button');
      return this.privateReply(standin.clickButton(actor, result, id));
    },
    everythingShown: () =>
      standin.messages
        .map((message) =>
          JSON.stringify({
            history: message.history,
            embeds: message.embeds,
            components: message.components,
            files: message.attachments.map((attachment) => attachment.filename),
          }),
        )
        .join('\n'),
  };
  return world;
}

/** The custom_ids of a message's buttons, in order. */
export function buttonIds(message: StandinMessage): string[] {
  return message.components.flatMap((row) =>
    ((row.components ?? []) as { custom_id?: string }[]).map((button) => button.custom_id ?? ''),
  );
}

export function buttonLabels(message: StandinMessage): string[] {
  return message.components.flatMap((row) =>
    ((row.components ?? []) as { label?: string }[]).map((button) => button.label ?? ''),
  );
}

/** The custom_id of the button labelled `label` on a message. */
export function button(message: StandinMessage, label: string): string {
  const index = buttonLabels(message).indexOf(label);
  assert.ok(index >= 0, `a "${label}" button on the message`);
  return buttonIds(message)[index]!;
}
