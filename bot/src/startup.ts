import { DiscordAPIError, HTTPError } from 'discord.js';
import { ConfigError, configSecrets, type BotConfig } from './config.ts';
import { RedisUnreachableError } from './redis/connection.ts';

/** Error codes of a connection that could not be made (Node's, and undici's under fetch). */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

function errorCode(error: unknown): unknown {
  const { code, cause } = (error ?? {}) as { code?: unknown; cause?: unknown };
  return code ?? (cause ? errorCode(cause) : undefined);
}

/**
 * What kept the bot from starting, as one line naming the variable to fix, and the exit code:
 * 2 for a setting that is wrong, 1 for a service that could not be reached. Undefined: a bug.
 */
export function startupFailure(
  error: unknown,
  config: BotConfig | undefined,
): { line: string; exitCode: number } | undefined {
  if (error instanceof ConfigError) return { line: error.message, exitCode: 2 };
  if (error instanceof RedisUnreachableError) return { line: error.message, exitCode: 1 };
  const code = errorCode(error);
  // discord.js's login says TokenInvalid; a REST call (a worker's check, the shard manager's) answers 401.
  if (
    code === 'TokenInvalid' ||
    ((error instanceof DiscordAPIError || error instanceof HTTPError) && error.status === 401)
  ) {
    return {
      line: 'DISCORD_TOKEN: Discord refused the token; copy it again from the Developer Portal (Bot \u2192 Reset Token)',
      exitCode: 2,
    };
  }
  if (typeof code === 'string' && UNREACHABLE.has(code)) {
    const where = config?.discordApiUrl ?? 'https://discord.com/api (the default)';
    return { line: `DISCORD_API_URL: could not reach Discord at ${where} (${code})`, exitCode: 1 };
  }
  return undefined;
}

/** Exits with one line for a failure a setting explains; anything else is a bug and keeps its stack. */
export function fail(error: unknown, config: BotConfig | undefined, heading: string): never {
  const failure = startupFailure(error, config);
  if (!failure) throw error;
  let line = failure.line;
  // The line is built from our own words and URLs, but a secret must never reach the terminal.
  for (const secret of config ? configSecrets(config) : [])
    if (secret) line = line.replaceAll(secret, '[redacted]');
  process.stderr.write(`${heading}: ${line}\nSee bot/.env.example for every variable.\n`);
  process.exit(failure.exitCode);
}
