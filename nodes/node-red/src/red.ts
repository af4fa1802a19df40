// The slice of Node-RED's runtime API these nodes use. @types/node-red describes Node-RED 1.x and
// lags the runtime, so the few shapes we rely on are written out here instead.

/** A message as it travels a flow. */
export interface NodeMessage {
  _msgid?: string;
  payload?: unknown;
  parts?: MessageParts;
  [property: string]: unknown;
}

/** What Split sets and Join reads to rebuild a sequence. */
export interface MessageParts {
  id: string;
  index: number;
  count: number;
  type?: 'array' | 'string' | 'object' | 'buffer';
  len?: number;
  /** The sequence this one was nested in, restored by Join. */
  parts?: MessageParts;
}

export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

/** The `this` of a node constructor once `createNode` has run. */
export interface RuntimeNode<TCredentials = Record<string, never>> {
  readonly id: string;
  readonly type: string;
  name?: string;
  credentials: Partial<TCredentials>;
  on(event: 'input', listener: (msg: NodeMessage, send: Send, done: Done) => void): void;
  on(event: 'close', listener: (removed: boolean, done: () => void) => void): void;
  status(status: NodeStatus | Record<string, never>): void;
  log(message: unknown): void;
  warn(message: unknown): void;
  debug(message: unknown): void;
  trace(message: unknown): void;
  error(error: unknown, msg?: NodeMessage): void;
}

/** One entry per output; an array in a slot sends several messages from that output. */
export type Send = (messages: (NodeMessage | NodeMessage[] | null)[] | NodeMessage) => void;
export type Done = (error?: Error) => void;

export interface NodeAPI {
  nodes: {
    createNode(node: object, config: object): void;
    getNode(id: string): unknown;
    registerType(
      type: string,
      constructor: (this: never, config: never) => void,
      options?: { credentials?: Record<string, { type: 'text' | 'password' }> },
    ): void;
  };
  util: {
    cloneMessage<T extends NodeMessage>(msg: T): T;
    generateId(): string;
    getMessageProperty(msg: NodeMessage, expression: string): unknown;
  };
  /** The runtime's settings (settings.js); read-only here. */
  settings?: Record<string, unknown>;
}
