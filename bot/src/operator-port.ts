import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.ts';
import type { BotMetrics } from './metrics.ts';

/** What `/health` says: only `ready` answers 200, so a process manager or Kubernetes routes by it. */
export type HealthStatus = 'starting' | 'ready' | 'draining' | 'redis unreachable';

export interface OperatorPort {
  /** The port it listens on (the one asked for, or the free one picked for 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The optional port (`BOT_HTTP_PORT`) for whoever runs the copies: `GET /health` (200 `{"status":"ready"}`
 * once logged in with Redis answering, else 503 with the status: `starting`, `draining` after SIGTERM,
 * `redis unreachable`), `GET /live` (200 while the process runs) and `GET /metrics` (Prometheus's
 * text format). Nothing else is served, and nothing secret is: the body is the status or the metrics.
 */
export async function startOperatorPort(options: {
  host: string;
  port: number;
  metrics: BotMetrics;
  health: () => Promise<HealthStatus>;
  logger: Logger;
}): Promise<OperatorPort> {
  const { metrics, health, logger } = options;
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://bot').pathname;
    const json = (status: number, body: unknown) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const answer = async () => {
      if (request.method !== 'GET') return json(405, { error: 'only GET' });
      if (path === '/live') return json(200, { status: 'alive' });
      if (path === '/health') {
        const status = await health();
        return json(status === 'ready' ? 200 : 503, { status });
      }
      if (path === '/metrics') {
        const { contentType, body } = await metrics.scrape();
        return response.writeHead(200, { 'content-type': contentType }).end(body);
      }
      return json(404, { error: 'not found: /health, /live and /metrics are served' });
    };
    answer().catch((error: unknown) => {
      logger.warn({ err: error, path }, 'the operator port could not answer');
      if (!response.headersSent) json(500, { error: 'could not answer' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: options.host, port }, 'health and metrics served');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
