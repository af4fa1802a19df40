import { EnvSettingError, settingsFromEnv } from '@sdxl-kit/client';
import type { BudgetSettings } from './budget/settings.ts';

/** Everything the bot reads from its environment, typed and checked. */
export interface BotConfig {
  /** DISCORD_TOKEN: the bot token. */
  discordToken: string;
  /** DISCORD_APPLICATION_ID: needed by deploy-commands; the running bot learns it on login. */
  applicationId: string | undefined;
  /** DISCORD_GUILD_ID: deploy-commands registers in this guild only (instant); unset = global. */
  deployGuildId: string | undefined;
  /** DISCORD_API_URL: Discord's REST base without version, for a local stand-in. @default Discord's */
  discordApiUrl: string | undefined;
  /** SDXL_API_KEY: required unless SDXL_BASE_URL points at a sandbox on this machine (loopback). */
  sdxlApiKey: string | undefined;
  /** SDXL_BASE_URL */
  sdxlBaseUrl: string | undefined;
  /** SDXL_LOW_CREDITS: below this the reply warns and admins are told once. @default 1 */
  lowCreditsThreshold: number;
  /**
   * BOT_MAX_IN_FLIGHT: images being made at once, across jobs (a 4-image job takes 4; a job larger
   * than this runs alone). @default 4
   */
  maxInFlight: number;
  /** BOT_REQUESTS_PER_MINUTE: generations started per minute. @default 5 (the free plan) */
  requestsPerMinute: number;
  /** BOT_RATE_WINDOW_MS: the window requests per minute counts over. @default 60000 */
  rateWindowMs: number;
  /** BOT_USER_QUEUE_LIMIT: jobs one user may have queued or running. @default 3 */
  userQueueLimit: number;
  /** BOT_USER_DAILY_IMAGES: images one user may make per UTC day; 0 = no daily limit. @default 25 */
  userDailyImages: number;
  /** BOT_ALLOWED_GUILDS / BOT_ALLOWED_CHANNELS / BOT_ALLOWED_ROLES: comma-separated ids; empty = any. */
  allowedGuilds: string[];
  allowedChannels: string[];
  allowedRoles: string[];
  /** BOT_ADMIN_ROLES: roles that may use /sdxl-admin and delete any result, besides server managers. */
  adminRoles: string[];
  /** BOT_BANNED_WORDS: comma-separated words or phrases refused in prompts (case-insensitive). */
  bannedWords: string[];
  /** BOT_SPOILER: post results as spoilers. @default false */
  spoiler: boolean;
  /**
   * BOT_MEDIA_GALLERY: results as a Components V2 message, the images in Discord's native media gallery
   * (alt text from the prompt, spoilered with BOT_SPOILER); false: the composed 2x2 grid in an embed.
   * Discord has offered Components V2 to every bot since April 2025, so it is on unless turned off (for
   * clients or proxies that do not show V2 messages). @default true
   */
  mediaGallery: boolean;
  /**
   * BOT_EMBED_PARAMETERS: write each image's generation parameters (prompt, seed, settings) into the
   * file the bot posts and stores, where AUTOMATIC1111's PNG Info and Civitai read them; false keeps
   * prompts out of the files (privacy). @default true
   */
  embedParameters: boolean;
  /** BOT_ADMIN_CHANNEL_ID: where low-credit and out-of-credit notices go. */
  adminChannelId: string | undefined;
  /** BOT_DATABASE: the SQLite file that keeps jobs (and so buttons) across restarts. @default ./sdxl-bot.sqlite */
  databasePath: string;
  /** BOT_JOB_TTL_HOURS: how long a result's buttons keep working. @default 168 (7 days) */
  jobTtlHours: number;
  /**
   * BOT_JOB_DEADLINE_MS: a job still unfinished this long after the command was typed is stopped, so
   * the user hears about it before Discord's 15-minute interaction token expires. @default 840000
   */
  jobDeadlineMs: number;
  /**
   * BOT_POLL_FIRST_MS: the first status check of a submitted job while nothing is learnt of its model,
   * in ms after the submit; then checks follow the model's learnt job time. @default unset: 250 ms
   */
  pollFirstMs: number | undefined;
  /** BOT_SHUTDOWN_GRACE_MS: on SIGTERM, how long running jobs may take to finish. @default 30000 */
  shutdownGraceMs: number;
  /** LOG_LEVEL @default 'info' */
  logLevel: string;
  /**
   * REDIS_URL: when set, the queue, quotas, account pace, job store and credit notices live on this
   * Redis (BullMQ), shared by every bot process pointed at it; BOT_DATABASE is then unused.
   */
  redisUrl: string | undefined;
  /** BOT_REDIS_PREFIX: the first part of every key, so one Redis can serve several bots. @default 'sdxl-bot' */
  redisPrefix: string;
  /**
   * BOT_JOB_LOCK_MS: how long a process's claim on a running job lasts unrenewed (renewed every half
   * of it); a job whose process died is taken over by another within this plus BOT_STALLED_CHECK_MS.
   * @default 30000
   */
  jobLockMs: number;
  /** BOT_STALLED_CHECK_MS: how often each process looks for jobs whose process died. @default 15000 */
  stalledCheckMs: number;
  /**
   * BOT_ROLE: what this process does. `all` takes commands and runs jobs; `gateway` logs in and takes
   * commands (acknowledges, queues, shows positions, cancels, buttons) and leaves the jobs to the
   * others; `worker` runs jobs only, without logging in to the gateway, and answers through Discord's
   * REST API. `gateway` and `worker` need REDIS_URL (the line they share). @default 'all'
   */
  role: BotRole;
  /**
   * BOT_HTTP_PORT: a port serving `/health`, `/live` and `/metrics` (Prometheus) for a process manager
   * or Kubernetes; 0 picks a free one (logged). @default unset: no port
   */
  httpPort: number | undefined;
  /** BOT_HTTP_HOST: the address that port listens on. @default 127.0.0.1 (in a container: 0.0.0.0) */
  httpHost: string;
  /**
   * BOT_BUDGET_SERVER_DAY, BOT_BUDGET_SERVER_MONTH, BOT_BUDGET_MEMBER_DAY (credits per server per UTC
   * day and month, per member per UTC day) and BOT_BUDGET_ROLES (`roleId:credits,…`, a member's daily
   * budget for members with that role): every server's budgets until `/sdxl-admin budget` changes
   * its own. @default none
   */
  budgets: BudgetSettings;
}

export const BOT_ROLES = ['all', 'gateway', 'worker'] as const;
export type BotRole = (typeof BOT_ROLES)[number];

/** A variable that is missing or malformed; the message names it and says what is allowed. */
export class ConfigError extends Error {
  readonly variable: string;

  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

/** The password in a `redis://user:password@host` URL, so that it can be redacted. */
function redisPassword(url: string): string | undefined {
  try {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}

/** What no log line, error or message may show: the Discord token, the API key and Redis's password. */
export function configSecrets(config: BotConfig): (string | undefined)[] {
  return [config.discordToken, config.sdxlApiKey, config.redisUrl && redisPassword(config.redisUrl)];
}

/** Whether a URL points at this machine. */
export function isLoopback(url: string): boolean {
  try {
    return ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname);
  } catch {
    return false;
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const FIFTEEN_MINUTES = 15 * 60_000;

/**
 * Reads the bot's configuration from the environment.
 * @throws {ConfigError} naming the first variable that is missing or malformed.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  options: { requireSdxl?: boolean } = {},
): BotConfig {
  const text = (name: string): string | undefined => env[name]?.trim() || undefined;
  const list = (name: string): string[] =>
    (text(name) ?? '')
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
  const whole = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
      throw new ConfigError(name, `"${raw}" is not allowed; allowed: a whole number ${range}`);
    }
    return value;
  };
  const flag = (name: string, fallback = false): boolean => {
    const raw = text(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    throw new ConfigError(name, `"${raw}" is not allowed; allowed: true or false`);
  };

  const discordToken = text('DISCORD_TOKEN');
  if (!discordToken) {
    throw new ConfigError('DISCORD_TOKEN', 'required: the bot token from the Discord developer portal');
  }
  const discordApiUrl = text('DISCORD_API_URL');
  if (discordApiUrl && !/^https?:\/\//.test(discordApiUrl)) {
    throw new ConfigError('DISCORD_API_URL', `"${discordApiUrl}" is not allowed; allowed: an http(s) URL`);
  }
  let sdxl;
  try {
    sdxl = settingsFromEnv(env);
  } catch (error) {
    if (error instanceof EnvSettingError) throw new ConfigError(error.variable, error.detail);
    throw error;
  }
  if (!sdxl.apiKey && !sdxl.baseUrl && options.requireSdxl !== false) {
    throw new ConfigError(
      'SDXL_API_KEY',
      'required for the hosted API (or set SDXL_BASE_URL to a local sandbox, which needs no hosted key)',
    );
  }
  if (sdxl.baseUrl && !/^https?:\/\//.test(sdxl.baseUrl)) {
    throw new ConfigError('SDXL_BASE_URL', `"${sdxl.baseUrl}" is not allowed; allowed: an http(s) URL`);
  }
  // Without a key the bot sends the sandbox's default one: only a sandbox on this machine takes that,
  // and a remote service would get a key that is known to everyone.
  if (!sdxl.apiKey && sdxl.baseUrl && !isLoopback(sdxl.baseUrl) && options.requireSdxl !== false) {
    throw new ConfigError(
      'SDXL_API_KEY',
      `required for ${sdxl.baseUrl}: only a sandbox on this machine (127.0.0.1, localhost, ::1) needs no key`,
    );
  }
  const logLevel = text('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `"${logLevel}" is not allowed; allowed: ${LOG_LEVELS.join(', ')}`);
  }
  const redisUrl = text('REDIS_URL');
  if (redisUrl && !/^rediss?:\/\/[^/]/.test(redisUrl)) {
    // The value may hold a password: the message shows its scheme only.
    throw new ConfigError(
      'REDIS_URL',
      `a URL starting "${redisUrl.split(':')[0]}:" is not allowed; allowed: redis://[user:password@]host[:port][/db] or rediss://…`,
    );
  }
  const redisPrefix = text('BOT_REDIS_PREFIX') ?? 'sdxl-bot';
  if (!/^[\w.-]{1,64}$/.test(redisPrefix)) {
    throw new ConfigError(
      'BOT_REDIS_PREFIX',
      `"${redisPrefix}" is not allowed; allowed: 1 to 64 letters, digits, '_', '.' or '-'`,
    );
  }
  const credits = (name: string): number | undefined => {
    const raw = text(name);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || !/^[\d.]+$/.test(raw)) {
      throw new ConfigError(
        name,
        `"${raw}" is not allowed; allowed: a number of credits, 0 or more (e.g. 0.5)`,
      );
    }
    return value;
  };
  const roleBudgets: Record<string, number> = {};
  for (const entry of list('BOT_BUDGET_ROLES')) {
    const [roleId, amount, ...rest] = entry.split(':').map((part) => part.trim());
    const value = Number(amount);
    if (
      !/^\d{1,20}$/.test(roleId ?? '') ||
      rest.length > 0 ||
      !/^[\d.]+$/.test(amount ?? '') ||
      !Number.isFinite(value)
    ) {
      throw new ConfigError(
        'BOT_BUDGET_ROLES',
        `"${entry}" is not allowed; allowed: roleId:credits pairs separated by commas (e.g. 900000000000000020:0.5)`,
      );
    }
    roleBudgets[roleId!] = value;
  }
  const role = (text('BOT_ROLE')?.toLowerCase() ?? 'all') as BotRole;
  if (!BOT_ROLES.includes(role)) {
    throw new ConfigError(
      'BOT_ROLE',
      `"${text('BOT_ROLE')}" is not allowed; allowed: ${BOT_ROLES.join(', ')} (the default: commands and jobs)`,
    );
  }
  if (role !== 'all' && !redisUrl) {
    throw new ConfigError(
      'REDIS_URL',
      `required with BOT_ROLE=${role}: gateway and worker processes share their queue and jobs through Redis (set REDIS_URL=redis://host:6379, or BOT_ROLE=all for one process)`,
    );
  }
  return {
    discordToken,
    applicationId: text('DISCORD_APPLICATION_ID'),
    deployGuildId: text('DISCORD_GUILD_ID'),
    discordApiUrl,
    sdxlApiKey: sdxl.apiKey,
    sdxlBaseUrl: sdxl.baseUrl,
    lowCreditsThreshold: sdxl.lowCreditsThreshold ?? 1,
    maxInFlight: whole('BOT_MAX_IN_FLIGHT', 4, 1, 64),
    requestsPerMinute: whole('BOT_REQUESTS_PER_MINUTE', 5, 1),
    rateWindowMs: whole('BOT_RATE_WINDOW_MS', 60_000, 1),
    userQueueLimit: whole('BOT_USER_QUEUE_LIMIT', 3, 1),
    userDailyImages: whole('BOT_USER_DAILY_IMAGES', 25, 0),
    allowedGuilds: list('BOT_ALLOWED_GUILDS'),
    allowedChannels: list('BOT_ALLOWED_CHANNELS'),
    allowedRoles: list('BOT_ALLOWED_ROLES'),
    adminRoles: list('BOT_ADMIN_ROLES'),
    bannedWords: list('BOT_BANNED_WORDS').map((word) => word.toLowerCase()),
    spoiler: flag('BOT_SPOILER'),
    mediaGallery: flag('BOT_MEDIA_GALLERY', true),
    embedParameters: flag('BOT_EMBED_PARAMETERS', true),
    adminChannelId: text('BOT_ADMIN_CHANNEL_ID'),
    databasePath: text('BOT_DATABASE') ?? './sdxl-bot.sqlite',
    jobTtlHours: whole('BOT_JOB_TTL_HOURS', 168, 1),
    jobDeadlineMs: whole('BOT_JOB_DEADLINE_MS', FIFTEEN_MINUTES - 60_000, 1_000, FIFTEEN_MINUTES - 1_000),
    pollFirstMs:
      text('BOT_POLL_FIRST_MS') === undefined ? undefined : whole('BOT_POLL_FIRST_MS', 0, 0, 600_000),
    shutdownGraceMs: whole('BOT_SHUTDOWN_GRACE_MS', 30_000, 0),
    logLevel,
    redisUrl,
    redisPrefix,
    jobLockMs: whole('BOT_JOB_LOCK_MS', 30_000, 1_000),
    stalledCheckMs: whole('BOT_STALLED_CHECK_MS', 15_000, 500),
    role,
    httpPort: text('BOT_HTTP_PORT') === undefined ? undefined : whole('BOT_HTTP_PORT', 0, 0, 65_535),
    httpHost: text('BOT_HTTP_HOST') ?? '127.0.0.1',
    budgets: {
      serverDay: credits('BOT_BUDGET_SERVER_DAY'),
      serverMonth: credits('BOT_BUDGET_SERVER_MONTH'),
      memberDay: credits('BOT_BUDGET_MEMBER_DAY'),
      roles: roleBudgets,
    },
  };
}
