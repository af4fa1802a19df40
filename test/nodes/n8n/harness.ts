// Runs the BUILT node (dist/, what ships) through the n8n interfaces it uses, with n8n's HTTP
// helper reproduced over real HTTP: the credential's `authenticate` applied, n8n's option handling
// (full response, arraybuffer, ignoreHttpStatusErrors, timeout, abort), and its errors (an axios-style
// error wrapped in NodeApiError). Nothing of the client is stubbed; the server is the sandbox.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
// Types from the n8n-workflow the node package builds against (a workspace devDependency, not hoisted).
import type * as N8nWorkflow from '../../../nodes/n8n/node_modules/n8n-workflow/dist/esm/index.js';
import type {
  IBinaryData,
  ICredentialDataDecryptedObject,
  IDataObject,
  IExecuteFunctions,
  IHttpRequestOptions,
  INode,
  INodeExecutionData,
  INodeType,
  NodeExecutionHint,
} from '../../../nodes/n8n/node_modules/n8n-workflow/dist/esm/index.js';

export type { INodeExecutionData };

const DIST = fileURLToPath(new URL('../../../nodes/n8n/dist/', import.meta.url));
const distRequire = createRequire(`${DIST}nodes/Sdxl/Sdxl.node.js`);

/** The same n8n-workflow the bundle requires, so `instanceof NodeApiError` means what it means in n8n. */
export const workflow = distRequire('n8n-workflow') as typeof N8nWorkflow;
export const { Sdxl } = distRequire('./Sdxl.node.js') as {
  Sdxl: (new () => INodeType) & { rateWindowMs: number; pollOptions: Record<string, number> };
};
export const { SdxlApi } = distRequire('../../credentials/SdxlApi.credentials.js') as {
  SdxlApi: new () => N8nWorkflow.ICredentialType;
};

export const DIST_DIR = DIST;

/** One request as the helper sent it, for tests that look at what went over the wire. */
export interface SentRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
}

/** Parameters of one item: `prompt`, `negativePrompt`, `options`. */
export type Parameters = Record<string, unknown>;

export interface RunOptions {
  credentials: ICredentialDataDecryptedObject;
  /** The same parameters for every item, or per item (as expressions would give). */
  parameters: Parameters | ((itemIndex: number) => Parameters);
  items?: INodeExecutionData[];
  continueOnFail?: boolean;
  /** The execution's cancel signal (n8n's `getExecutionCancelSignal`). */
  signal?: AbortSignal;
  /** `n8n-nodes-sdxl.sdxlTool` when an AI agent runs the node. */
  nodeType?: string;
  /** The node's Settings > On Error (n8n's `continueOnFail()` is true for both "Continue" choices). */
  onError?: INode['onError'];
}

export interface RunResult {
  items: INodeExecutionData[];
  hints: NodeExecutionHint[];
  sent: SentRequest[];
}

const NODE: INode = {
  id: 'c0ffee00-0000-4000-8000-000000000001',
  name: 'SDXL',
  type: 'n8n-nodes-sdxl.sdxl',
  typeVersion: 1,
  position: [0, 0],
  parameters: {},
};

function lookup(source: Parameters, path: string): unknown {
  let value: unknown = source;
  for (const key of path.split('.')) {
    if (!value || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** Resolves `={{$credentials.name}}` the way n8n's expression does for a generic credential. */
function resolveCredentialExpression(value: string, credentials: ICredentialDataDecryptedObject): string {
  const match = /^=\{\{\s*\$credentials\.(\w+)\s*\}\}$/.exec(value);
  return match ? String(credentials[match[1] as string] ?? '') : value;
}

/** What n8n's `CredentialsHelper.authenticate` does for `type: 'generic'`: adds the resolved headers. */
export function authenticate(
  options: IHttpRequestOptions,
  credentials: ICredentialDataDecryptedObject,
): IHttpRequestOptions {
  const credential = new SdxlApi();
  const generic = credential.authenticate as N8nWorkflow.IAuthenticateGeneric;
  const headers: IDataObject = { ...(options.headers ?? {}) };
  for (const [name, value] of Object.entries(generic.properties.headers ?? {})) {
    headers[name] = resolveCredentialExpression(String(value), credentials);
  }
  return { ...options, headers };
}

/** An error shaped like the AxiosError n8n's helper throws (and then wraps in NodeApiError). */
class AxiosLikeError extends Error {
  readonly code: string;
  readonly isAxiosError = true;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'AxiosError';
    this.code = code;
  }
}

interface WireResponse {
  statusCode: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Real HTTP with axios's failure vocabulary: ECONNABORTED on timeout, ERR_CANCELED on abort. */
export function sendHttp(
  options: { method: string; url: string; headers: Record<string, string>; body?: string | Buffer },
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
): Promise<WireResponse> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AxiosLikeError('canceled', 'ERR_CANCELED'));
      return;
    }
    const url = new URL(options.url);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const request = send(url, { method: options.method, headers: options.headers });
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      request.destroy();
      reject(error);
    };
    const onAbort = () => fail(new AxiosLikeError('canceled', 'ERR_CANCELED'));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs) {
      request.setTimeout(timeoutMs, () =>
        fail(new AxiosLikeError(`timeout of ${timeoutMs}ms exceeded`, 'ECONNABORTED')),
      );
    }
    request.on('error', (error: NodeJS.ErrnoException) =>
      fail(new AxiosLikeError(error.message, error.code ?? 'ERR_NETWORK')),
    );
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', (error: NodeJS.ErrnoException) =>
        fail(new AxiosLikeError(error.message, error.code ?? 'ECONNRESET')),
      );
      response.on('aborted', () => fail(new AxiosLikeError('aborted', 'ECONNRESET')));
      response.on('end', () => {
        if (settled) return;
        if (!response.complete) {
          fail(new AxiosLikeError('aborted', 'ECONNRESET'));
          return;
        }
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        resolve({
          statusCode: response.statusCode ?? 0,
          statusMessage: response.statusMessage ?? '',
          headers: response.headers,
          body: Buffer.concat(chunks),
        });
      });
    });
    request.end(options.body);
  });
}

function stringHeaders(headers: IDataObject | undefined): Record<string, string> {
  const result: Record<string, string> = { 'user-agent': 'n8n' };
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value !== undefined && value !== null) result[name.toLowerCase()] = String(value);
  }
  return result;
}

/** n8n's `httpRequest` for the options the node uses, over real HTTP. */
async function n8nHttpRequest(options: IHttpRequestOptions, sent: SentRequest[]): Promise<unknown> {
  const url = options.baseURL
    ? `${options.baseURL.replace(/\/+$/, '')}/${options.url.replace(/^\/+/, '')}`
    : options.url;
  const headers = stringHeaders(options.headers);
  const body = options.body === undefined || options.body === null ? undefined : options.body;
  if (typeof body === 'string' || Buffer.isBuffer(body))
    headers['content-length'] = String(Buffer.byteLength(body));
  const method = options.method ?? 'GET';
  sent.push({ method, url, headers });
  const response = await sendHttp(
    { method, url, headers, ...((typeof body === 'string' || Buffer.isBuffer(body)) && { body }) },
    options.timeout,
    options.abortSignal as AbortSignal | undefined,
  );
  const ok = response.statusCode >= 200 && response.statusCode < 300;
  if (!ok && !options.ignoreHttpStatusErrors) {
    throw new AxiosLikeError(`Request failed with status code ${response.statusCode}`, 'ERR_BAD_REQUEST');
  }
  const data = options.encoding === 'arraybuffer' ? response.body : response.body.toString('utf8');
  if (!options.returnFullResponse) return data;
  return {
    body: data,
    headers: response.headers,
    statusCode: response.statusCode,
    statusMessage: response.statusMessage,
  };
}

/** n8n's `prepareBinaryData` for in-memory binary mode: base64 data, MIME type, name, extension and size. */
async function prepareBinaryData(data: Buffer, filePath?: string, mimeType?: string): Promise<IBinaryData> {
  const fileName = filePath?.split('/').pop();
  const extension = fileName?.includes('.') ? fileName.split('.').pop() : undefined;
  return {
    data: data.toString('base64'),
    mimeType: mimeType ?? 'application/octet-stream',
    fileType: mimeType?.split('/')[0] === 'image' ? 'image' : undefined,
    ...(fileName && { fileName }),
    ...(extension && { fileExtension: extension }),
    fileSize: data.length < 1024 ? `${data.length} B` : `${(data.length / 1024).toFixed(1)} kB`,
    bytes: data.length,
  } as IBinaryData;
}

/** Runs the node's `execute` as n8n would for one execution. */
export async function runNode(options: RunOptions): Promise<RunResult> {
  const items: INodeExecutionData[] = options.items ?? [{ json: {} }];
  const hints: NodeExecutionHint[] = [];
  const sent: SentRequest[] = [];
  const node: INode = {
    ...NODE,
    type: options.nodeType ?? NODE.type,
    ...(options.onError && { onError: options.onError }),
  };
  const parametersFor = (itemIndex: number): Parameters =>
    typeof options.parameters === 'function' ? options.parameters(itemIndex) : options.parameters;

  const context = {
    getInputData: () => items,
    getNode: () => node,
    continueOnFail: () => options.continueOnFail === true,
    getExecutionCancelSignal: () => options.signal,
    addExecutionHints: (...added: NodeExecutionHint[]) => hints.push(...added),
    getCredentials: async (type: string) => {
      if (type !== 'sdxlApi') throw new Error(`no credentials of type ${type}`);
      return { ...options.credentials };
    },
    getNodeParameter: (name: string, itemIndex: number, fallback?: unknown) => {
      const value = lookup(parametersFor(itemIndex), name);
      if (value === undefined) {
        if (fallback === undefined) throw new Error(`Could not get parameter "${name}"`);
        return fallback;
      }
      return value;
    },
    helpers: {
      async httpRequestWithAuthentication(
        this: IExecuteFunctions,
        type: string,
        requestOptions: IHttpRequestOptions,
      ) {
        // As n8n does: the execution's cancel signal replaces whatever signal the node passed.
        const withSignal = { ...requestOptions, abortSignal: this.getExecutionCancelSignal() };
        try {
          if (type !== 'sdxlApi') throw new Error(`unexpected credential type ${type}`);
          return await n8nHttpRequest(authenticate(withSignal, options.credentials), sent);
        } catch (error) {
          throw new workflow.NodeApiError(this.getNode(), error as N8nWorkflow.JsonObject);
        }
      },
      // n8n's request without a credential (public output files), as n8n-core 2.40's is: bound to the
      // execution (a node may call it without `this`), the node's own abort signal kept, and the
      // HTTP library's error thrown as it is, not wrapped in a NodeApiError.
      async httpRequest(requestOptions: IHttpRequestOptions) {
        return await n8nHttpRequest(requestOptions, sent);
      },
      prepareBinaryData,
      // n8n's, for binary data kept in memory (base64 in the item); filesystem mode reads a file instead.
      async getBinaryDataBuffer(itemIndex: number, propertyName: string): Promise<Buffer> {
        const binary = items[itemIndex]?.binary?.[propertyName];
        if (!binary) throw new Error(`no binary field "${propertyName}" on item ${itemIndex}`);
        return Buffer.from(binary.data, 'base64');
      },
    },
  };
  const type = new Sdxl();
  const output = await (type.execute as (this: unknown) => Promise<INodeExecutionData[][]>).call(context);
  return { items: output[0] ?? [], hints, sent };
}

/** Runs the node's credential test as n8n's credential tester does, with the legacy `request` helper. */
export async function testCredential(credentials: ICredentialDataDecryptedObject) {
  const type = new Sdxl();
  const test = type.methods?.credentialTest?.sdxlApiCredentialTest;
  if (!test) throw new Error('the node declares no credential test');
  const sent: SentRequest[] = [];
  const context = {
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    helpers: {
      // n8n's legacy request: `uri`, `encoding: null` for bytes, `simple: false` for every status.
      async request(raw: Record<string, unknown>) {
        const headers = stringHeaders(raw.headers as IDataObject);
        const url = String(raw.uri);
        sent.push({ method: String(raw.method ?? 'GET'), url, headers });
        const response = await sendHttp(
          { method: String(raw.method ?? 'GET'), url, headers },
          raw.timeout as number | undefined,
          undefined,
        );
        const ok = response.statusCode >= 200 && response.statusCode < 300;
        // n8n's adapter hands error bodies back as text, success bodies as bytes.
        const body = ok && raw.encoding === null ? response.body : response.body.toString('utf8');
        return {
          body,
          headers: { ...response.headers },
          statusCode: response.statusCode,
          statusMessage: response.statusMessage,
        };
      },
    },
  };
  const result = await (
    test as (this: unknown, credential: unknown) => Promise<N8nWorkflow.INodeCredentialTestResult>
  ).call(context, { id: 'test', name: 'SDXL account', type: 'sdxlApi', data: credentials });
  return { result, sent };
}

/**
 * How n8n splits a node's output under "On Error: Continue (using error output)", as n8n-core 2.40.7's
 * `WorkflowExecute.handleNodeErrorOutput` does: an item goes to the error output when it carries
 * `error`, or when its JSON holds nothing but `error`, `message` and `details`; all others stay.
 */
export function splitErrorOutput(items: INodeExecutionData[]): {
  success: INodeExecutionData[];
  failed: INodeExecutionData[];
} {
  const isError = (item: INodeExecutionData) =>
    Boolean(item.error) ||
    (Boolean(item.json.error) &&
      Object.keys(item.json).every((key) => ['error', 'message', 'details'].includes(key)));
  return { success: items.filter((item) => !isError(item)), failed: items.filter(isError) };
}

/** Everything a user or a log could see of a value, hidden properties and causes included. */
export function everything(value: unknown): string {
  return inspect(value, { depth: 12, showHidden: true, getters: true }) + JSON.stringify(value ?? null);
}

/** What a run threw; fails the test when it did not throw. */
export async function failure(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  assert.fail('expected the run to fail');
}
