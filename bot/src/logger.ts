import { fstatSync } from 'node:fs';
import { Socket } from 'node:net';
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

/** What may wait in memory for a slow reader of stdout before lines are dropped. */
const PIPE_BACKLOG_BYTES = 4 * 1024 * 1024;

/** stdout through a non-blocking socket; `dropped` counts lines a reader gone or far behind never got. */
export interface StdoutDestination extends DestinationStream {
  /** Calls back once what is waiting has been written, or after `timeoutMs` if the reader does not take it. */
  flush(callback: () => void, timeoutMs?: number): void;
  readonly dropped: number;
}

/**
 * stdout as a destination that never blocks the process. A synchronous write to a pipe nobody reads
 * waits forever once the pipe's 64 KiB are full (and with it the SIGTERM handler), so a pipe or socket
 * is written through a non-blocking socket: lines wait in memory up to a bound, then are dropped.
 * A file or a terminal keeps pino's own synchronous writer.
 */
export function stdoutDestination(fd = 1): DestinationStream {
  let kind: 'stream' | 'other' = 'other';
  try {
    const stat = fstatSync(fd);
    if (stat.isFIFO() || stat.isSocket()) kind = 'stream';
  } catch {
    kind = 'other';
  }
  if (kind === 'other') return pino.destination({ dest: fd, sync: true });
  const socket = new Socket({ fd, readable: false, writable: true });
  socket.unref();
  let broken = false;
  let dropped = 0;
  socket.on('error', () => {
    // EPIPE: the reader is gone; nothing more can be written.
    broken = true;
  });
  const destination: StdoutDestination = {
    write(line: string) {
      if (broken || socket.writableLength > PIPE_BACKLOG_BYTES) {
        dropped += 1;
        return;
      }
      socket.write(line);
    },
    flush(callback, timeoutMs = 2_000) {
      if (broken || socket.writableLength === 0) {
        callback();
        return;
      }
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.off('drain', finish);
        callback();
      };
      const timer = setTimeout(finish, timeoutMs);
      socket.once('drain', finish);
    },
    get dropped() {
      return dropped;
    },
  };
  return destination;
}

/**
 * Writes out what the logger still holds, waiting at most `timeoutMs`: a reader that does not read
 * must not keep the process from exiting.
 */
export function flushLogger(logger: Logger, timeoutMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    try {
      logger.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

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
    destination ?? stdoutDestination(),
  );
}
