import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as wait } from 'node:timers/promises';

/** Whether Debian's `redis-server` (or any on PATH) can be started here. */
export const redisAvailable = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * The `skip` option for a test that needs a real Redis: a reason on a machine without redis-server,
 * so `npm test` still passes for a newcomer; never under CI (`.ci/run` installs it), where a missing
 * server must fail loudly instead of hiding the tests.
 */
export const skipWithoutRedis: string | false =
  redisAvailable || process.env.CI ? false : 'redis-server is not installed (apt-get install redis-server)';

export interface TestRedis {
  /** `redis://127.0.0.1:PORT` (with the password, when one was set). */
  url: string;
  port: number;
  password?: string;
  /** Stops the server as an outage would; its data stays on disk for `restart`. `hard` kills it (SIGKILL). */
  stop(options?: { hard?: boolean }): Promise<void>;
  /** Starts it again on the same port and data (stopping it first if it runs). */
  restart(): Promise<void>;
  /** Stops it for good and removes its data. */
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once something accepts connections on `port`. */
async function accepting(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline)
      throw new Error(`redis-server did not listen on ${port} within 10 s: ${output()}`);
    await wait(20);
  }
}

/**
 * A throwaway real Redis on a loopback port, for tests. Its append-only file is fsynced on every write,
 * so a `stop` then `restart` keeps what was written, as a production Redis with AOF does; nothing else
 * on the machine is touched.
 */
export async function startRedis(options: { password?: string } = {}): Promise<TestRedis> {
  if (!redisAvailable) throw new Error('redis-server not found: install it (apt-get install redis-server)');
  const dir = await mkdtemp(join(tmpdir(), 'sdxl-redis-'));
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    // BullMQ refuses to run on a Redis that may evict its keys.
    '--maxmemory-policy',
    'noeviction',
    ...(options.password ? ['--requirepass', options.password] : []),
  ];
  let child: ChildProcess | undefined;
  let output = '';

  const start = async () => {
    output = '';
    const server = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000)));
    server.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000)));
    child = server;
    await accepting(port, server, () => output);
  };

  const stop = async ({ hard = false }: { hard?: boolean } = {}) => {
    const server = child;
    child = undefined;
    if (!server || server.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
    server.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };

  await start();
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  return {
    url: `redis://${auth}127.0.0.1:${port}`,
    port,
    password: options.password,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop({ hard: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
