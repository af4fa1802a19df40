import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A raw HTTP server on 127.0.0.1:0 whose every answer a test scripts, for transport edge cases. */
export async function rawServer(handler: (req: IncomingMessage, res: ServerResponse, count: number) => void) {
  let count = 0;
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    count++;
    req.resume();
    req.on('end', () => handler(req, res, count));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    get count() {
      return count;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Node's sleep, recording each wait the client asked for. */
export function recordingSleep() {
  const waits: number[] = [];
  const sleep = async (ms: number, signal?: AbortSignal) => {
    waits.push(ms);
    const { setTimeout } = await import('node:timers/promises');
    await setTimeout(ms, undefined, signal ? { signal } : undefined);
  };
  return { waits, sleep };
}
