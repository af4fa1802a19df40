import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { after, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { gzipSync } from 'node:zlib';
import {
  createAxiosTransport,
  createClient as createDefaultClient,
  createHttpTransport,
  type SdxlError,
  type Transport,
} from '@sdxl-kit/client';
import { closedPort, rawServer, recordingSleep } from '../support/http.ts';
import { failure as failureOf } from '../support/failure.ts';

const KEY = 'SG_transportsecret0001';
/** The error, checked for the key in every view of it. */
const failure = (promise: Promise<unknown>) => failureOf(promise, KEY);
const fastRetries = { retryBaseDelayMs: 5, retryMaxDelayMs: 20 };

function assertNoKey(error: unknown) {
  const views = [
    String(error),
    (error as Error).stack ?? '',
    JSON.stringify(error),
    inspect(error, { depth: Infinity, showHidden: true }),
  ];
  for (const view of views) assert.ok(!view.includes(KEY), `key leaked in: ${view.slice(0, 300)}`);
}

// Node's HTTP is the default; axios is used where the environment names a proxy. Both keep one contract.
const transports: Array<[name: string, make: (options?: { maxBodyBytes?: number }) => Transport]> = [
  ['node:http', createHttpTransport],
  ['axios', createAxiosTransport],
];

for (const [transportName, makeTransport] of transports)
  describe(`${transportName} transport over real sockets`, () => {
    const servers: Array<{ close(): Promise<void> }> = [];
    after(() => Promise.all(servers.map((server) => server.close())));
    const createClient = (options: Parameters<typeof createDefaultClient>[0]) =>
      createDefaultClient({ transport: makeTransport(), ...options });

    it('gives up after the timeout when the server never answers, without a retry that could bill twice', async () => {
      const server = await rawServer(() => undefined);
      servers.push(server);
      // A second is long enough for the server to see the request even on a loaded machine (at 150 ms,
      // under a load of 25 on two cores, the client sometimes gave up before the server had read it).
      const client = createClient({ apiKey: KEY, baseUrl: server.url, timeoutMs: 1_000 });
      const error = await failure(client.generate({ prompt: 'slow' }));
      assert.equal(error.code, 'timeout');
      assert.equal(server.count, 1);
      assertNoKey(error);
    });

    it('reports a body cut off mid-way as a broken connection and does not retry it', async () => {
      const server = await rawServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': '5000' });
        res.write(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
        setTimeout(() => res.socket?.destroy(), 20);
      });
      servers.push(server);
      const client = createClient({ apiKey: KEY, baseUrl: server.url, ...fastRetries });
      const error = await failure(client.generate({ prompt: 'cut' }));
      assert.equal(error.code, 'connection');
      assert.equal((error as SdxlError & { sent: boolean }).sent, true);
      assert.match(error.message, /may have been billed/);
      assert.equal(server.count, 1);
      assertNoKey(error);
    });

    it('refuses a 200 whose JSON does not parse', async () => {
      const server = await rawServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"image": "abc');
      });
      servers.push(server);
      const error = await failure(
        createClient({ apiKey: KEY, baseUrl: server.url }).generate({ prompt: 'x' }),
      );
      assert.equal(error.code, 'bad_response');
      assert.match(error.message, /neither an image nor JSON/);
    });

    it("keeps the server's words when a 200 holds JSON with no image, without the key", async () => {
      const server = await rawServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'error', message: `NSFW content detected for ${KEY}` }));
      });
      servers.push(server);
      const error = await failure(
        createClient({ apiKey: KEY, baseUrl: server.url }).generate({ prompt: 'x' }),
      );
      assert.equal(error.code, 'bad_response');
      assert.match(
        error.message,
        /^The API answered with JSON that holds no image: NSFW content detected for \[redacted\]/,
      );
      assertNoKey(error);
    });

    it('refuses a 200 with an HTML page instead of an image', async () => {
      const server = await rawServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>maintenance</body></html>');
      });
      servers.push(server);
      const error = await failure(
        createClient({ apiKey: KEY, baseUrl: server.url }).generate({ prompt: 'x' }),
      );
      assert.equal(error.code, 'bad_response');
    });

    it('recognises a PNG by its bytes even when the header says otherwise', async () => {
      const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
      const server = await rawServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-remaining-credits': '12.5' });
        res.end(png);
      });
      servers.push(server);
      const result = await createClient({ apiKey: KEY, baseUrl: server.url }).generate({ prompt: 'x' });
      assert.equal(result.images[0]?.mimeType, 'image/png');
      assert.equal(result.remainingCredits, 12.5);
    });

    it('waits for x-rate-limit-reset-at-utc after a 429, then succeeds', async () => {
      const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0, 0xff, 0xd9]);
      const server = await rawServer((_req, res, count) => {
        if (count === 1) {
          const reset = new Date(Date.now() + 300).toISOString();
          res.writeHead(429, { 'content-type': 'application/json', 'x-rate-limit-reset-at-utc': reset });
          res.end('{"error":"Rate limit exceeded"}');
          return;
        }
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        res.end(jpeg);
      });
      servers.push(server);
      const { waits, sleep } = recordingSleep();
      const client = createClient({ apiKey: KEY, baseUrl: server.url, sleep });
      const result = await client.generate({ prompt: 'x' });
      assert.equal(result.images.length, 1);
      assert.equal(server.count, 2);
      const slept = waits.reduce((a, b) => a + b, 0);
      assert.ok(slept >= 150 && slept <= 400, `waited ${slept} ms for a reset about 300 ms away`);
    });

    it('retries a refused connection with backoff, then says it could not connect', async () => {
      const port = await closedPort();
      const { waits, sleep } = recordingSleep();
      const client = createClient({
        apiKey: KEY,
        baseUrl: `http://127.0.0.1:${port}/v1`,
        sleep,
        ...fastRetries,
      });
      const error = await failure(client.generate({ prompt: 'x' }));
      assert.equal(error.code, 'connection');
      assert.equal((error as SdxlError & { sent: boolean }).sent, false);
      assert.match(error.message, /ECONNREFUSED/);
      assert.equal(waits.length, 2, 'two retries, each after a wait');
      assert.ok(waits[1]! >= waits[0]!, `backoff grows: ${waits}`);
      assertNoKey(error);
    });

    it('stops at once when the caller aborts an answer in progress, and does not retry', async () => {
      const controller = new AbortController();
      // Aborted once the server has the request: a fixed delay can abort first on a busy machine.
      const server = await rawServer(() => controller.abort());
      servers.push(server);
      const client = createClient({ apiKey: KEY, baseUrl: server.url });
      const pending = client.generate({ prompt: 'x' }, { signal: controller.signal });
      const error = await failure(pending);
      assert.equal(error.code, 'aborted');
      assert.equal(server.count, 1);
    });

    it("works where Node lacks AbortSignal.any (Node-RED 4 on an older Node), and leaves no listener on the caller's signal", async () => {
      const server = await rawServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        res.end(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0, 0xff, 0xd9]));
      });
      servers.push(server);
      const client = createClient({ apiKey: KEY, baseUrl: server.url });
      const longLived = new AbortController();
      const any = Object.getOwnPropertyDescriptor(AbortSignal, 'any');
      Reflect.deleteProperty(AbortSignal, 'any');
      try {
        for (let i = 0; i < 3; i++) {
          const result = await client.generate({ prompt: `call ${i}` }, { signal: longLived.signal });
          assert.equal(result.images[0]?.mimeType, 'image/jpeg');
        }
        assert.equal(
          getEventListeners(longLived.signal, 'abort').length,
          0,
          'every call let go of the signal',
        );
        const hanging = await rawServer(() => undefined);
        servers.push(hanging);
        const aborted = createClient({ apiKey: KEY, baseUrl: hanging.url }).generate(
          { prompt: 'stop me' },
          { signal: longLived.signal },
        );
        setTimeout(() => longLived.abort(), 50);
        assert.equal((await failure(aborted)).code, 'aborted');
      } finally {
        if (any) Object.defineProperty(AbortSignal, 'any', any);
      }
    });

    it('reads a gzip-encoded JSON answer as the JSON it holds', async () => {
      const server = await rawServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(JSON.stringify({ credits: 12.5, 'free-credits': 0.5 })));
      });
      servers.push(server);
      const balance = await createClient({ apiKey: KEY, baseUrl: server.url }).getCredits();
      assert.equal(balance.total, 13);
    });

    it('refuses an answer larger than the body limit as a broken connection', async () => {
      const server = await rawServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        res.end(Buffer.alloc(64 * 1024, 0xff));
      });
      servers.push(server);
      const client = createDefaultClient({
        apiKey: KEY,
        baseUrl: server.url,
        transport: makeTransport({ maxBodyBytes: 1024 }),
      });
      const error = await failure(client.generate({ prompt: 'x' }));
      assert.equal(error.code, 'connection');
      assert.match(error.message, /cut off or too large/);
      assert.equal(server.count, 1);
    });

    const bodies: Array<
      [name: string, status: number, type: string, body: string, message: RegExp, code: string]
    > = [
      [
        'JSON',
        401,
        'application/json',
        '{"error":"Unauthorized. API key is invalid"}',
        /^401 Unauthorized\. API key is invalid$/,
        'unauthorized',
      ],
      [
        'HTML',
        405,
        'text/html',
        '<html><head><title>405 Not Allowed</title></head><body>nginx</body></html>',
        /^405 405 Not Allowed$/,
        'method_not_allowed',
      ],
      [
        'plain text',
        406,
        'text/plain',
        'Insufficient credits: balance 0, needed 0.008',
        /^406 Insufficient credits: balance 0/,
        'insufficient_credits',
      ],
      ['empty', 404, 'text/plain', '', /^404 Not Found$/, 'not_found'],
      ['long', 422, 'text/plain', 'x'.repeat(5000), /^422 x{290,300}\.\.\.$/, 'unprocessable'],
      [
        'JSON echoing the key',
        401,
        'application/json',
        `{"error":"key ${KEY} is invalid"}`,
        /^401 key \[redacted\] is invalid$/,
        'unauthorized',
      ],
    ];
    for (const [name, status, type, body, message, code] of bodies) {
      it(`builds a readable ${status} error from a ${name} body`, async () => {
        const server = await rawServer((_req, res) => {
          // A server that echoes the key in a header too: it must not reach util.inspect(error).
          res.writeHead(status, { 'content-type': type, 'x-request-id': 'req-1', 'x-echo': `key=${KEY}` });
          res.end(body);
        });
        servers.push(server);
        const error = await failure(
          createClient({ apiKey: KEY, baseUrl: server.url }).generate({ prompt: 'x' }),
        );
        assert.equal(error.code, code);
        assert.match(error.message, message);
        assert.equal((error as SdxlError & { requestId?: string }).requestId, 'req-1');
        assertNoKey(error);
      });
    }
  });
