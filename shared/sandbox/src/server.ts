import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pollEndpoint, submitEndpoint, sweepJobs } from './async.ts';
import { MESSAGES, errorAnswer, formatCredits, methodNotAllowedAnswer, type Answer } from './answers.ts';
import {
  generationEndpoint,
  handleCredits,
  type Exchange,
  type ReadBody,
  type Reply,
  type SandboxState,
} from './endpoints.ts';
import { GENERATION_MODELS, LARGE_BODY_BYTES, SMALL_BODY_BYTES } from './models.ts';
import {
  DEFAULT_CREDITS,
  applyOptions,
  checkCredits,
  defaultOptions,
  type BilledCall,
  type ReceivedRequest,
  type Sandbox,
  type SandboxOptions,
} from './options.ts';
import { SlidingRateWindow } from './rate-window.ts';
import { elideBody, elideString } from './record.ts';
import { FileStore } from './storage.ts';
import { fileEndpoint, handleUpload } from './uploads.ts';

// Past the limit plus this, the sender is not a client worth answering: stop reading and hang up.
const DRAIN_ALLOWANCE = 16 * SMALL_BODY_BYTES;
// Expired files and results are swept at most this often (and looked up with their TTL regardless).
const SWEEP_EVERY_MS = 1000;

interface Endpoint {
  method: string;
  /** Bodies above this are refused with 413, like any production gateway would. */
  bodyLimit: number;
  handle: (state: SandboxState, exchange: Exchange, parameter: string) => Reply | Promise<Reply>;
}

const STATIC_ROUTES = new Map<string, Endpoint>([
  ['/v1/get-user-credits', { method: 'GET', bodyLimit: SMALL_BODY_BYTES, handle: handleCredits }],
  // At the root, not under /v1: the client derives it from the base URL by dropping the /v1.
  ['/upload-asset', { method: 'POST', bodyLimit: LARGE_BODY_BYTES, handle: handleUpload }],
]);

const V1_MODELS = new Map<string, Endpoint>(
  [...GENERATION_MODELS.values()].map((model) => [
    model.slug,
    { method: 'POST', bodyLimit: model.bodyLimit, handle: generationEndpoint(model) },
  ]),
);

const V2_MODELS = new Map<string, Endpoint>(
  [...GENERATION_MODELS.values()].map((model) => [
    model.slug,
    { method: 'POST', bodyLimit: model.bodyLimit, handle: submitEndpoint(model) },
  ]),
);

const STATUS: Endpoint = { method: 'GET', bodyLimit: SMALL_BODY_BYTES, handle: pollEndpoint(false) };
const RESULT: Endpoint = { method: 'GET', bodyLimit: SMALL_BODY_BYTES, handle: pollEndpoint(true) };

const FILES: Record<string, Endpoint> = {
  assets: { method: 'GET', bodyLimit: SMALL_BODY_BYTES, handle: fileEndpoint('assets') },
  files: { method: 'GET', bodyLimit: SMALL_BODY_BYTES, handle: fileEndpoint('files') },
};

/** The endpoint for a path and the path parameter it takes (a slug, a file name), if any. */
function findRoute(pathname: string): { endpoint: Endpoint; parameter: string } | undefined {
  const fixed = STATIC_ROUTES.get(pathname);
  if (fixed) return { endpoint: fixed, parameter: '' };
  const [, first, second, ...rest] = pathname.split('/');
  if (first === undefined || second === undefined || second === '') return undefined;
  // Polls: /v2/requests/<id>/status, /v2/requests/<id>, and the v1 poll_url /v1/requests/<id>.
  if (second === 'requests' && rest[0]) {
    const id = rest[0];
    if (first === 'v2' && rest.length === 2 && rest[1] === 'status')
      return { endpoint: STATUS, parameter: id };
    if (first === 'v2' && rest.length === 1) return { endpoint: RESULT, parameter: id };
    if (first === 'v1' && rest.length === 1) return { endpoint: STATUS, parameter: id };
    return undefined;
  }
  if (rest.length > 0) return undefined;
  // Models only under /v1 and /v2, like the real base URL https://api.segmind.com/v1.
  if (first === 'v1' || first === 'v2') {
    const endpoint = (first === 'v1' ? V1_MODELS : V2_MODELS).get(second);
    return endpoint && { endpoint, parameter: second };
  }
  const files = Object.hasOwn(FILES, first) ? FILES[first] : undefined;
  return files && { endpoint: files, parameter: decodeURIComponent(second) };
}

/**
 * Starts a local server that speaks the hosted SDXL 1.0 API, with real JPEGs and scriptable faults.
 * @param options knobs (see {@link SandboxOptions}), plus `port` (default 0: any free port) and `host`
 * (default '127.0.0.1').
 */
export async function startSandbox(
  options: SandboxOptions & { port?: number; host?: string } = {},
): Promise<Sandbox> {
  const { port = 0, host = '127.0.0.1', ...knobs } = options;
  const settings = applyOptions(defaultOptions(), knobs);
  const balance = checkCredits(knobs.credits ?? DEFAULT_CREDITS);
  const requests: ReceivedRequest[] = [];
  const billed: BilledCall[] = [];
  const inFlight = new Set<AbortController>();
  const store = new FileStore();
  const lifetime = new AbortController();
  const state: SandboxState = {
    settings,
    balance,
    rateWindow: new SlidingRateWindow(),
    store,
    billed,
    jobs: new Map(),
    lifetime: lifetime.signal,
  };

  let boundPort = 0;
  let lastSweep = 0;
  const server = createServer((request, response) => {
    const now = Date.now();
    if (now - lastSweep >= SWEEP_EVERY_MS) {
      lastSweep = now;
      store.sweep(now, state.settings.resultTtlMs);
      sweepJobs(state, now);
    }
    const context = { state, requests, inFlight, port: boundPort, listenHost: hostForUrl(host) };
    serve(context, request, response).catch(() => response.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: unknown) => {
    store.close();
    throw error;
  });
  boundPort = (server.address() as AddressInfo).port;
  const origin = `http://${hostForUrl(host)}:${boundPort}`;

  let closed: Promise<void> | undefined;
  return {
    url: `${origin}/v1`,
    origin,
    port: boundPort,
    requests,
    billed,
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
        server.close(() => {
          store.close();
          resolve();
        });
        lifetime.abort();
        for (const controller of inFlight) controller.abort();
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

interface ServeContext {
  state: SandboxState;
  requests: ReceivedRequest[];
  inFlight: Set<AbortController>;
  port: number;
  /** The listening address as a URL host (127.0.0.1, [::1]). */
  listenHost: string;
}

async function serve(
  context: ServeContext,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const { state, requests, inFlight } = context;
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
  const limit = state.settings.recordLimit;
  if (requests.length > limit) requests.splice(0, requests.length - limit);

  const controller = new AbortController();
  inFlight.add(controller);
  response.on('close', () => {
    inFlight.delete(controller);
    if (!response.writableFinished) controller.abort();
  });

  const pathname = (request.url ?? '').split('?')[0] ?? '';
  let route: ReturnType<typeof findRoute>;
  try {
    route = findRoute(pathname);
  } catch {
    route = undefined; // a malformed %-escape in a file name
  }
  const body = await readBody(request, route?.endpoint.bodyLimit ?? SMALL_BODY_BYTES);
  if (body === undefined) return;
  if (body.kind === 'text')
    record.body = body.json.ok ? elideBody(body.json.value) : elideString(body.text) || undefined;

  const hostHeader = request.headers.host;
  const reachedAs =
    hostHeader !== undefined && /^[\w.-]+(:\d+)?$|^\[[\d:a-f.]+\](:\d+)?$/i.test(hostHeader)
      ? hostHeader
      : `${context.listenHost}:${context.port}`;
  const exchange: Exchange = {
    headers: request.headers,
    body,
    signal: controller.signal,
    origin: `http://${reachedAs}`,
    isOwn: (url) =>
      url.protocol === 'http:' &&
      url.port === String(context.port) &&
      (LOOPBACK.has(url.hostname) || url.host === reachedAs || url.hostname === context.listenHost),
  };
  const reply = await dispatch(state, exchange, route, request.method ?? '');
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

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function dispatch(
  state: SandboxState,
  exchange: Exchange,
  route: ReturnType<typeof findRoute>,
  method: string,
): Reply | Promise<Reply> {
  if (!route) return { kind: 'answer', answer: errorAnswer(404, MESSAGES.notFound) };
  const { endpoint, parameter } = route;
  if (method !== endpoint.method) {
    return { kind: 'answer', answer: methodNotAllowedAnswer(endpoint.method) };
  }
  return endpoint.handle(state, exchange, parameter);
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
function readBody(request: IncomingMessage, limit: number): Promise<ReadBody | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    request.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received <= limit) chunks.push(chunk);
      else {
        chunks.length = 0;
        if (received > limit + DRAIN_ALLOWANCE) request.destroy();
      }
    });
    request.on('end', () => {
      if (received > limit) {
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
