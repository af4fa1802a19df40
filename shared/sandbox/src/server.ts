import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MESSAGES, errorAnswer, formatCredits, methodNotAllowedAnswer, type Answer } from './answers.ts';
import {
  handleCredits,
  handleTxt2Img,
  type Exchange,
  type ReadBody,
  type Reply,
  type SandboxState,
} from './endpoints.ts';
import {
  DEFAULT_CREDITS,
  applyOptions,
  checkCredits,
  defaultOptions,
  type ReceivedRequest,
  type Sandbox,
  type SandboxOptions,
} from './options.ts';
import { SlidingRateWindow } from './rate-window.ts';

/** Bodies above this are refused with 413, like any production gateway would. */
const MAX_BODY_BYTES = 1024 * 1024;
// Past this the sender is not a client worth answering: stop reading and hang up.
const MAX_DRAINED_BYTES = 16 * MAX_BODY_BYTES;

interface Endpoint {
  method: string;
  handle: (state: SandboxState, exchange: Exchange) => Reply | Promise<Reply>;
}

// Only under /v1, like the real base URL https://api.segmind.com/v1.
const ROUTES = new Map<string, Endpoint>([
  ['/v1/sdxl1.0-txt2img', { method: 'POST', handle: handleTxt2Img }],
  ['/v1/get-user-credits', { method: 'GET', handle: handleCredits }],
]);

/**
 * Starts a local server that speaks the hosted SDXL 1.0 API, with real JPEGs and scriptable faults.
 * @param options knobs (see {@link SandboxOptions}), plus `port` (default 0: any free port) and `host`
 * (default '127.0.0.1').
 */
export async function startSandbox(
  options: SandboxOptions & { port?: number; host?: string } = {},
): Promise<Sandbox> {
  const { port = 0, host = '127.0.0.1', ...knobs } = options;
  const state: SandboxState = {
    settings: applyOptions(defaultOptions(), knobs),
    balance: checkCredits(knobs.credits ?? DEFAULT_CREDITS),
    rateWindow: new SlidingRateWindow(),
  };
  const requests: ReceivedRequest[] = [];
  const inFlight = new Set<AbortController>();

  const server = createServer((request, response) => {
    serve(state, requests, inFlight, request, response).catch(() => response.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const boundPort = (server.address() as AddressInfo).port;

  let closed: Promise<void> | undefined;
  return {
    url: `http://${hostForUrl(host)}:${boundPort}/v1`,
    port: boundPort,
    requests,
    get credits() {
      return state.balance;
    },
    set credits(value: number) {
      state.balance = checkCredits(value);
    },
    configure(changes) {
      state.settings = applyOptions(state.settings, changes);
      if (changes.credits !== undefined) state.balance = checkCredits(changes.credits);
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const controller of inFlight) controller.abort();
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

async function serve(
  state: SandboxState,
  requests: ReceivedRequest[],
  inFlight: Set<AbortController>,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  // A client that vanishes mid-request must not surface as an unhandled 'error' event.
  request.on('error', () => {});
  response.on('error', () => {});
  const record: ReceivedRequest = {
    method: request.method ?? '',
    path: request.url ?? '',
    headers: { ...request.headers },
    body: undefined,
    status: 0,
    receivedAt: Date.now(),
  };
  requests.push(record);

  const controller = new AbortController();
  inFlight.add(controller);
  response.on('close', () => {
    inFlight.delete(controller);
    if (!response.writableFinished) controller.abort();
  });

  const body = await readBody(request);
  if (body === undefined) return;
  if (body.kind === 'text') record.body = body.json.ok ? body.json.value : body.text || undefined;

  const reply = await route(state, { headers: request.headers, body, signal: controller.signal }, request);
  if (controller.signal.aborted || response.destroyed) return;
  switch (reply.kind) {
    case 'abandoned':
      return;
    case 'drop':
      response.destroy();
      return;
    case 'answer':
      record.status = reply.answer.status;
      send(response, reply.answer, state.balance, reply.truncate === true);
  }
}

function route(state: SandboxState, exchange: Exchange, request: IncomingMessage): Reply | Promise<Reply> {
  const pathname = (request.url ?? '').split('?')[0] ?? '';
  const endpoint = ROUTES.get(pathname);
  if (!endpoint) return { kind: 'answer', answer: errorAnswer(404, MESSAGES.notFound) };
  if (request.method !== endpoint.method) {
    return { kind: 'answer', answer: methodNotAllowedAnswer(endpoint.method) };
  }
  return endpoint.handle(state, exchange);
}

function send(response: ServerResponse, answer: Answer, balance: number, truncate: boolean): void {
  response.writeHead(answer.status, {
    ...answer.headers,
    'content-length': String(answer.body.length),
    'x-remaining-credits': formatCredits(balance),
  });
  if (!truncate) {
    response.end(answer.body);
    return;
  }
  // The half must reach the client before the hang-up, or it would see a plain reset instead.
  response.write(answer.body.subarray(0, Math.floor(answer.body.length / 2)), () => response.destroy());
}

/** Reads the whole body; undefined when the client went away first. */
function readBody(request: IncomingMessage): Promise<ReadBody | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    request.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received <= MAX_BODY_BYTES) chunks.push(chunk);
      else if (received > MAX_DRAINED_BYTES) request.destroy();
    });
    request.on('end', () => {
      if (received > MAX_BODY_BYTES) {
        resolve({ kind: 'too-large' });
        return;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      resolve({ kind: 'text', text, json: parseJson(text) });
    });
    request.on('close', () => resolve(undefined));
  });
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** Wildcard addresses are fine to listen on but not to connect to. */
function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
