// Loads the built package into a real Node-RED runtime through node-red-node-test-helper.
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const packageDir = fileURLToPath(new URL('../../../nodes/node-red/', import.meta.url));

/** Set SDXL_NODE_RED to another node-red's package folder to run the same tests on Node-RED 4. */
const nodeRedMain = process.env.SDXL_NODE_RED
  ? require.resolve(process.env.SDXL_NODE_RED)
  : require.resolve('node-red');
const nodeRedRequire = createRequire(nodeRedMain);

type NodeModule = (RED: unknown) => void;

export interface FlowNode {
  id: string;
  type: string;
  [key: string]: unknown;
}

/** The slice of node-red-node-test-helper these tests use. */
export interface TestHelper {
  init(runtimePath: string, settings?: Record<string, unknown>): void;
  load(
    nodes: NodeModule[],
    flow: FlowNode[],
    credentials?: Record<string, Record<string, string>>,
  ): Promise<void>;
  unload(): Promise<void>;
  setFlows(
    flow: FlowNode[],
    type: 'full' | 'flows' | 'nodes',
    credentials?: Record<string, Record<string, string>>,
  ): Promise<void>;
  getNode(id: string): RuntimeNode | null;
  log(): { args: unknown[][] };
  _redNodes: { getFlows(): unknown };
}

export interface RuntimeNode {
  id: string;
  receive(msg: Record<string, unknown>): void;
  on(event: string, listener: (...args: never[]) => void): void;
  status: { args: unknown[][] };
  warn: { args: unknown[][] };
  error: { args: unknown[][] };
  log: { args: unknown[][] };
}

function builtNode(file: string): NodeModule {
  const path = `${packageDir}dist/${file}`;
  if (!existsSync(path)) throw new Error(`${path} is missing: run "npm run build -w nodes/node-red" first`);
  return (require(path) as { default: NodeModule }).default;
}

export const helper = require('node-red-node-test-helper') as TestHelper;
// A close that never ends is reported as an error after nodeCloseTimeout; 15 s by default, shorter here so
// a test that stops the flow sees that error soon.
// sdxlPoll: async jobs are polled every few ms rather than after half a model's typical time.
helper.init(nodeRedMain, {
  logging: { console: { level: 'off' } },
  nodeCloseTimeout: 3000,
  sdxlPoll: { firstDelayMs: 20, intervalMs: 20, maxIntervalMs: 60 },
});

export const nodeRedVersion = (nodeRedRequire('node-red/package.json') as { version: string }).version;

/** The package's two node types as Node-RED loads them, plus the real Join node. */
export const NODES: NodeModule[] = [
  builtNode('sdxl-config.js'),
  builtNode('sdxl.js'),
  nodeRedRequire('@node-red/nodes/core/sequence/17-split.js') as NodeModule,
];

export interface LogRecord {
  level: number;
  id?: string;
  msg?: unknown;
}

interface RuntimeLog {
  addHandler(handler: EventEmitter): void;
  removeHandler(handler: EventEmitter): void;
  ERROR: number;
}

const runtimeLog = (nodeRedRequire('@node-red/util') as { log: RuntimeLog }).log;
export const LOG_ERROR = runtimeLog.ERROR;

/**
 * What the runtime logs until `stop()`, spies or not: helper.unload() removes its spies before it
 * stops the flow, so errors raised while stopping only show here.
 */
export function watchRuntimeLog(): { records: LogRecord[]; stop(): void } {
  const records: LogRecord[] = [];
  const handler = new EventEmitter();
  handler.on('log', (record: LogRecord) => records.push(record));
  runtimeLog.addHandler(handler);
  return { records, stop: () => runtimeLog.removeHandler(handler) };
}

/** Waits until `check` holds, polling every few ms; fails naming `what` after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Messages reaching node `id` until the test ends, each also put in `captured` (searched for the key
 * afterwards), for asserting what arrived and that nothing else did.
 */
export function record<T = Record<string, unknown>>(id: string, captured: unknown[]): T[] {
  const running = helper.getNode(id);
  if (!running) throw new Error(`node ${id} is not running`);
  const messages: T[] = [];
  running.on('input', (msg: never) => {
    messages.push(msg);
    captured.push(msg);
  });
  return messages;
}
