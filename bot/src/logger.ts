import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Field paths that carry credentials wherever they turn up in a log object. */
const REDACTED_PATHS = [
  'token',
  'apiKey',
  'discordToken',
  'sdxlApiKey',
  '*.token',
  '*.apiKey',
  '*.discordToken',
  '*.sdxlApiKey',
  'headers.authorization',
  'headers["x-api-key"]',
  '*.headers.authorization',
  '*.headers["x-api-key"]',
];

/**
 * Errors as pino serializes them, minus what discord.js attaches of the failed request: its
 * `requestBody` carries every uploaded file, so one failed result post would log megabytes of image bytes.
 */
function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const { requestBody: _requestBody, ...serialized } = stdSerializers.err(error) as Record<string, unknown>;
  return serialized;
}

const INTERACTION_TOKEN_IN_URL = /((?:webhooks|interactions)\/\d{15,21})\/[\w-]{20,}/g;

/**
 * A pino logger that redacts credentials twice: by field path, and by value on every line written,
 * because a token can also hide inside a message string or an error from a library.
 */
export function createLogger(
  options: { level?: string; secrets?: readonly (string | undefined)[] },
  destination?: DestinationStream,
): Logger {
  const secrets = (options.secrets ?? []).filter((secret): secret is string =>
    Boolean(secret && secret.length >= 4),
  );
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: serializeError },
      hooks: {
        streamWrite(line) {
          // Interaction tokens ride in webhook and callback URLs of Discord errors: each lets anyone answer as the bot.
          let safe = line.replace(INTERACTION_TOKEN_IN_URL, '$1/[redacted]');
          for (const secret of secrets) safe = safe.split(secret).join('[redacted]');
          return safe;
        },
      },
    },
    destination,
  );
}
