// A real n8n 2.x runs the packed n8n-nodes-sdxl in workflows against the sandbox, through its own
// CLI: import:credentials, import:workflow, execute. Run by e2e/n8n/run.sh, which installs n8n once
// into a cache folder and builds the package first; N8N_DIR and NODE24_BIN come from it.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { startSandbox, type Sandbox } from '@sdxl-kit/sandbox';
import { maskImage, pngImage } from '../../test/support/images.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const N8N_DIR = process.env.N8N_DIR ?? '';
const NODE24_BIN = process.env.NODE24_BIN ?? '';
const N8N_CLI = join(N8N_DIR, 'node_modules/n8n/bin/n8n');
const READY = N8N_DIR !== '' && existsSync(N8N_CLI) && existsSync(join(NODE24_BIN, 'node'));

const KEY = 'sk-e2e-real-n8n-4c1d9b7a2e6f';
const WRONG_KEY = 'sk-e2e-wrong-key-88e1f0a3';
const CREDENTIAL = { id: 'sdxlE2eCredGood1', name: 'SDXL sandbox' };
const WRONG_CREDENTIAL = { id: 'sdxlE2eCredWrong', name: 'SDXL wrong key' };
/** The same account through a front whose results point at output files on another origin. */
const FRONT_CREDENTIAL = { id: 'sdxlE2eCredFront', name: 'SDXL files elsewhere' };

interface Item {
  json: Record<string, unknown>;
  binary?: Record<string, { mimeType: string; fileName: string; id?: string; fileSize?: string }>;
  pairedItem?: { item: number };
}

interface Execution {
  status?: string;
  finished?: boolean;
  data: {
    resultData: {
      runData: Record<
        string,
        {
          data?: { main: Item[][] };
          error?: { message: string; description?: string };
          hints?: { type?: string; message: string }[];
        }[]
      >;
      error?: { message: string; description?: string; httpCode?: string };
    };
  };
}

let sandbox: Sandbox;
let front: Server;
let frontUrl: string;
/** What the front received: the API's calls, each with the key it carried. */
const frontSaw: { method: string; path: string; key: string | undefined }[] = [];
let work: string;
let userFolder: string;
/** Everything n8n printed, to search for the key at the end. */
const printed: string[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd ?? work,
        env: options.env ?? process.env,
        maxBuffer: 64 * 1024 * 1024,
        timeout: 180_000,
        // n8n's CLI can ignore SIGTERM while it waits on a stuck execution; a hang must fail, not stall CI.
        killSignal: 'SIGKILL',
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The environment the n8n CLI runs in: Node 24, a throwaway user folder, nothing phoning home. */
function n8nEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${NODE24_BIN}:${process.env.PATH ?? ''}`,
    N8N_USER_FOLDER: userFolder,
    N8N_RUNNERS_ENABLED: 'false',
    N8N_DIAGNOSTICS_ENABLED: 'false',
    N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
    N8N_RESTRICT_FILE_ACCESS_TO: join(work, 'files'),
    DB_SQLITE_POOL_SIZE: '2',
  };
}

/**
 * A front for the sandbox, as a gateway before Segmind's API would be: it passes every call on, and
 * in an async result points the output files at the sandbox's own origin, another than the Base URL's
 * (as Segmind's are on images.segmind.com). The sandbox serves them there too, without a key.
 */
async function startFront(): Promise<void> {
  front = createHttpServer((incoming, outgoing) => {
    const key = incoming.headers['x-api-key'];
    frontSaw.push({
      method: incoming.method ?? '',
      path: incoming.url ?? '',
      key: typeof key === 'string' ? key : undefined,
    });
    const target = new URL(sandbox.origin);
    // The Host stays the front's: the sandbox then gives status and result URLs on the front.
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          let body = Buffer.concat(chunks);
          if (/^\/v2\/requests\/[\w-]+$/.test(incoming.url ?? '')) {
            body = Buffer.from(
              body.toString('utf8').replaceAll(`${frontUrl}/files/`, `${sandbox.origin}/files/`),
            );
          }
          const headers = { ...answer.headers, 'content-length': String(body.length) };
          outgoing.writeHead(answer.statusCode ?? 502, headers).end(body);
        });
      },
    );
    upstream.on('error', () => outgoing.destroy());
    incoming.pipe(upstream);
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const { port } = front.address() as { port: number };
  frontUrl = `http://127.0.0.1:${port}`;
}

/** The n8n CLI under Node 24, with a throwaway user folder. */
async function n8n(...args: string[]) {
  // A port picked now, not once for the run: between two commands another run (CI, a worktree beside
  // this one) may take a port this one left free ("Task Broker's port … is already in use").
  const env = { ...n8nEnv(), N8N_RUNNERS_BROKER_PORT: String(await freePort()) };
  const result = await run(join(NODE24_BIN, 'node'), [N8N_CLI, ...args], { env });
  printed.push(result.stdout, result.stderr);
  return result;
}

/** `n8n start`, the server behind the editor, for what only its REST API does (the credential Test button). */
async function withServer<T>(
  use: (
    call: (path: string, body: unknown) => Promise<Response>,
    get: (path: string) => Promise<Response>,
  ) => Promise<T>,
): Promise<T> {
  const port = await freePort();
  const server = spawn(join(NODE24_BIN, 'node'), [N8N_CLI, 'start'], {
    env: {
      ...n8nEnv(),
      N8N_PORT: String(port),
      N8N_LISTEN_ADDRESS: '127.0.0.1',
      N8N_RUNNERS_BROKER_PORT: String(await freePort()),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (chunk: Buffer) => printed.push(chunk.toString()));
  server.stderr.on('data', (chunk: Buffer) => printed.push(chunk.toString()));
  const exited = new Promise((resolve) => server.once('exit', resolve));
  let cookie = '';
  const call = (path: string, body: unknown) =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'browser-id': 'sdxl-e2e', cookie },
      body: JSON.stringify(body),
    });
  try {
    // The port opens long before the REST routes: meanwhile n8n answers every path with
    // "200 n8n is starting up", then 404 until its controllers are registered. /healthz/readiness
    // turns 200 only once they are (measured), so wait for that before the owner setup.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const ready = await fetch(`http://127.0.0.1:${port}/healthz/readiness`).catch(() => undefined);
      if (ready?.status === 200) break;
      assert.ok(Date.now() < deadline, 'n8n start became ready within 2 minutes');
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const setup = await call('/rest/owner/setup', {
      email: 'owner@example.com',
      firstName: 'E2E',
      lastName: 'Owner',
      password: 'E2e-Passw0rd-Long',
    });
    // A second start finds the owner set up already: it signs in instead.
    const signedIn =
      setup.status === 200
        ? setup
        : await call('/rest/login', {
            emailOrLdapLoginId: 'owner@example.com',
            password: 'E2e-Passw0rd-Long',
          });
    assert.equal(signedIn.status, 200, await signedIn.clone().text());
    cookie = (signedIn.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    assert.match(cookie, /^n8n-auth=/, 'the owner setup signed the owner in');
    const get = (path: string) =>
      fetch(`http://127.0.0.1:${port}${path}`, { headers: { 'browser-id': 'sdxl-e2e', cookie } });
    return await use(call, get);
  } finally {
    server.kill('SIGTERM');
    await exited;
  }
}

async function execute(workflowId: string): Promise<{ code: number; execution: Execution; output: string }> {
  const result = await n8n('execute', `--id=${workflowId}`, '--rawOutput');
  // The JSON is pretty-printed: from a line holding "{" to the first line holding "}"; logs may follow.
  const start = result.stdout.search(/^\{$/m);
  const end = result.stdout.slice(Math.max(start, 0)).search(/^\}$/m);
  assert.ok(
    start >= 0 && end > 0,
    `n8n printed no execution for ${workflowId}:\n${result.stdout}\n${result.stderr}`,
  );
  const execution = JSON.parse(result.stdout.slice(start, start + end + 1)) as Execution;
  return { code: result.code, execution, output: result.stdout + result.stderr };
}

function sdxlItems(execution: Execution, nodeName = 'SDXL'): Item[] {
  const runs = execution.data.resultData.runData[nodeName];
  assert.ok(
    runs?.[0]?.data,
    `${nodeName} produced output: ${JSON.stringify(execution.data.resultData.error ?? null)}`,
  );
  return runs[0].data.main[0] ?? [];
}

/** Where n8n's filesystem binary mode keeps an item's file. */
async function storedFile(item: Item, field = 'data'): Promise<Buffer> {
  const id = item.binary?.[field]?.id ?? '';
  assert.match(id, /^filesystem-v2:/);
  return await readFile(join(userFolder, '.n8n/storage', id.slice('filesystem-v2:'.length)));
}

const start = {
  id: 'e2e00000-0000-4000-8000-000000000001',
  name: 'Start',
  type: 'n8n-nodes-base.manualTrigger',
  typeVersion: 1,
  position: [0, 0],
  parameters: {},
};

function sdxlNode(
  parameters: Record<string, unknown>,
  extra: Record<string, unknown> = {},
  credential = CREDENTIAL,
) {
  return {
    id: 'e2e00000-0000-4000-8000-000000000002',
    name: 'SDXL',
    type: 'n8n-nodes-sdxl.sdxl',
    typeVersion: 1,
    position: [440, 0],
    parameters,
    credentials: { sdxlApi: credential },
    ...extra,
  };
}

function chain(...names: string[]) {
  const connections: Record<string, unknown> = {};
  for (let i = 0; i < names.length - 1; i++) {
    connections[names[i] as string] = { main: [[{ node: names[i + 1], type: 'main', index: 0 }]] };
  }
  return connections;
}

function workflow(id: string, name: string, nodes: unknown[], connections: Record<string, unknown>) {
  return { id, name, active: false, nodes, connections, settings: { executionOrder: 'v1' } };
}

/** Manual Trigger → Set (a list) → Split Out → SDXL: several items, each prompt from an expression. */
const prompts = ['a red apple', 'a green pear', 'a yellow lemon'];
const severalItems = workflow(
  'sdxlE2eWfItems01',
  'SDXL e2e several items',
  [
    start,
    {
      id: 'e2e00000-0000-4000-8000-000000000003',
      name: 'Prompts',
      type: 'n8n-nodes-base.set',
      typeVersion: 3.4,
      position: [150, 0],
      parameters: { mode: 'raw', jsonOutput: JSON.stringify({ prompts }), options: {} },
    },
    {
      id: 'e2e00000-0000-4000-8000-000000000004',
      name: 'Split',
      type: 'n8n-nodes-base.splitOut',
      typeVersion: 1,
      position: [300, 0],
      parameters: { fieldToSplitOut: 'prompts', options: {} },
    },
    sdxlNode({ prompt: '={{ $json.prompts }}', options: { samples: 2, maxInFlight: 3 } }),
  ],
  chain('Start', 'Prompts', 'Split', 'SDXL'),
);

/** Another node of the workflow: an SDXL node with its own name and place, or any n8n node. */
function node(name: string, index: number, type: string, parameters: Record<string, unknown>, extra = {}) {
  return {
    id: `e2e00000-0000-4000-8000-0000000001${String(index).padStart(2, '0')}`,
    name,
    type,
    typeVersion: 1,
    position: [150 * index, 200],
    parameters,
    ...extra,
  };
}

function sdxlNamed(name: string, index: number, parameters: Record<string, unknown>) {
  return node(name, index, 'n8n-nodes-sdxl.sdxl', parameters, { credentials: { sdxlApi: CREDENTIAL } });
}

/** Read/Write Files reading one file into a binary field; it keeps the binary fields the item had. */
function readFileNode(name: string, index: number, path: string, field = 'data') {
  return node(name, index, 'n8n-nodes-base.readWriteFile', {
    operation: 'read',
    fileSelector: path,
    options: field === 'data' ? {} : { dataPropertyName: field },
  });
}

/** The shipped example with its Schedule Trigger swapped for a Manual Trigger the CLI can start. */
function exampleWorkflow() {
  const example = JSON.parse(
    readFileSync(join(REPO, 'nodes/n8n/examples/daily-images-to-disk.json'), 'utf8'),
  );
  const trigger = example.nodes.find(
    (node: { type: string }) => node.type === 'n8n-nodes-base.scheduleTrigger',
  );
  Object.assign(trigger, { type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, parameters: {} });
  const sdxl = example.nodes.find((node: { type: string }) => node.type === 'n8n-nodes-sdxl.sdxl');
  sdxl.credentials.sdxlApi = CREDENTIAL;
  const write = example.nodes.find((node: { type: string }) => node.type === 'n8n-nodes-base.readWriteFile');
  write.parameters.fileName = String(write.parameters.fileName).replace(
    '/home/node/.n8n-files',
    join(work, 'files'),
  );
  return { ...example, id: 'sdxlE2eWfExample', active: false };
}

/**
 * Max Credits per Execution: the three prompts of `severalItems`, two images each (6 x 0.00798 =
 * 0.04788 credits estimated), under a cap below that and under one above it.
 */
function budgetWorkflows() {
  const capped = (id: string, name: string, maxCredits: number) => {
    const [trigger, set, split, sdxl] = severalItems.nodes as [
      unknown,
      unknown,
      unknown,
      { parameters: object },
    ];
    return workflow(
      id,
      name,
      [
        trigger,
        set,
        split,
        {
          ...sdxl,
          parameters: { prompt: '={{ $json.prompts }}', options: { samples: 2, maxInFlight: 3, maxCredits } },
        },
      ],
      severalItems.connections,
    );
  };
  return [
    capped('sdxlE2eWfCapLow1', 'SDXL e2e cap below the estimate', 0.04),
    capped('sdxlE2eWfCapOk01', 'SDXL e2e cap that fits', 0.05),
  ];
}

describe(
  'n8n-nodes-sdxl in a real n8n',
  { skip: READY ? false : 'run e2e/n8n/run.sh (installs n8n)' },
  () => {
    before(async () => {
      sandbox = await startSandbox({ apiKey: KEY, credits: 100 });
      await startFront();
      work = await mkdtemp(join(tmpdir(), 'sdxl-n8n-e2e-'));
      userFolder = join(work, 'user');
      await mkdir(join(work, 'files/in'), { recursive: true });
      await writeFile(join(work, 'files/in/photo.png'), await pngImage(64, 48));
      await writeFile(join(work, 'files/in/mask.png'), await maskImage(64, 48, [16, 8, 24, 24]));

      // Exactly what npm would publish, where n8n loads community packages from.
      const packed = await run('npm', ['pack', '-w', 'nodes/n8n', '--pack-destination', work, '--silent'], {
        cwd: REPO,
      });
      assert.equal(packed.code, 0, packed.stderr);
      const tarball = (await readdir(work)).find((name) => name.endsWith('.tgz'));
      assert.ok(tarball, 'npm pack made a tarball');
      const packageDir = join(userFolder, '.n8n/nodes/node_modules/n8n-nodes-sdxl');
      await mkdir(packageDir, { recursive: true });
      const untar = await run('tar', ['-xzf', join(work, tarball), '-C', packageDir, '--strip-components=1']);
      assert.equal(untar.code, 0, untar.stderr);

      await writeFile(
        join(work, 'credentials.json'),
        JSON.stringify([
          { ...CREDENTIAL, type: 'sdxlApi', data: { apiKey: KEY, baseUrl: sandbox.url } },
          { ...WRONG_CREDENTIAL, type: 'sdxlApi', data: { apiKey: WRONG_KEY, baseUrl: sandbox.url } },
          { ...FRONT_CREDENTIAL, type: 'sdxlApi', data: { apiKey: KEY, baseUrl: `${frontUrl}/v1` } },
        ]),
      );
      const credentials = await n8n('import:credentials', `--input=${join(work, 'credentials.json')}`);
      assert.equal(credentials.code, 0, credentials.stderr);

      await writeFile(
        join(work, 'workflows.json'),
        JSON.stringify([
          workflow(
            'sdxlE2eWfOne0001',
            'SDXL e2e one image',
            [start, sdxlNode({ prompt: 'a lighthouse at dusk', options: { seed: 42 } })],
            chain('Start', 'SDXL'),
          ),
          workflow(
            'sdxlE2eWfFour001',
            'SDXL e2e four images',
            [
              start,
              sdxlNode({
                prompt: 'four cats',
                options: { samples: 4, seed: 7, scheduler: '={{ "DPM++ 2M Karras" }}' },
              }),
            ],
            chain('Start', 'SDXL'),
          ),
          severalItems,
          workflow(
            'sdxlE2eWfWrong01',
            'SDXL e2e wrong key',
            [start, sdxlNode({ prompt: 'x', options: {} }, {}, WRONG_CREDENTIAL)],
            chain('Start', 'SDXL'),
          ),
          workflow(
            'sdxlE2eWfWrongC1',
            'SDXL e2e wrong key, continue',
            [
              start,
              sdxlNode({ prompt: 'x', options: {} }, { onError: 'continueRegularOutput' }, WRONG_CREDENTIAL),
            ],
            chain('Start', 'SDXL'),
          ),
          workflow(
            'sdxlE2eWfWrongE1',
            'SDXL e2e wrong key, error output',
            [
              start,
              sdxlNode({ prompt: 'x', options: {} }, { onError: 'continueErrorOutput' }, WRONG_CREDENTIAL),
            ],
            chain('Start', 'SDXL'),
          ),
          exampleWorkflow(),
          workflow(
            'sdxlE2eWfChain01',
            'SDXL e2e generate then upscale',
            [
              start,
              sdxlNode({ prompt: 'a lighthouse', options: { seed: 42 } }),
              sdxlNamed('Upscale', 2, { operation: 'upscaleImage', options: { scale: 2 } }),
            ],
            chain('Start', 'SDXL', 'Upscale'),
          ),
          workflow(
            'sdxlE2eWfVary001',
            'SDXL e2e vary a file',
            [
              start,
              readFileNode('Read photo', 1, join(work, 'files/in/photo.png')),
              sdxlNamed('Vary', 2, {
                operation: 'varyImage',
                prompt: 'as a watercolour',
                options: { strength: 0.5, seed: 5 },
              }),
            ],
            chain('Start', 'Read photo', 'Vary'),
          ),
          workflow(
            'sdxlE2eWfInpaint',
            'SDXL e2e inpaint with a mask',
            [
              start,
              readFileNode('Read photo', 1, join(work, 'files/in/photo.png')),
              readFileNode('Read mask', 2, join(work, 'files/in/mask.png'), 'mask'),
              // Read/Write Files makes a new item per file: Merge by position puts both files on one item.
              node(
                'Merge',
                3,
                'n8n-nodes-base.merge',
                { mode: 'combine', combineBy: 'combineByPosition', options: {} },
                { typeVersion: 3 },
              ),
              sdxlNamed('Inpaint', 4, {
                operation: 'inpaintImage',
                prompt: 'a red hat',
                options: { seed: 8 },
              }),
            ],
            {
              Start: {
                main: [
                  [
                    { node: 'Read photo', type: 'main', index: 0 },
                    { node: 'Read mask', type: 'main', index: 0 },
                  ],
                ],
              },
              'Read photo': { main: [[{ node: 'Merge', type: 'main', index: 0 }]] },
              'Read mask': { main: [[{ node: 'Merge', type: 'main', index: 1 }]] },
              Merge: { main: [[{ node: 'Inpaint', type: 'main', index: 0 }]] },
            },
          ),
          ...budgetWorkflows(),
          workflow(
            'sdxlE2eWfFilesIn',
            'SDXL e2e async, output files on the Base URL origin',
            [start, sdxlNode({ prompt: 'a harbour at dawn', options: { api: 'async', seed: 11 } })],
            chain('Start', 'SDXL'),
          ),
          workflow(
            'sdxlE2eWfFilesEx',
            'SDXL e2e async, output files on another origin',
            [
              start,
              sdxlNode(
                { prompt: 'a harbour at dusk', options: { api: 'async', seed: 12 } },
                {},
                FRONT_CREDENTIAL,
              ),
            ],
            chain('Start', 'SDXL'),
          ),
          workflow(
            'sdxlE2eWfCancel1',
            'SDXL e2e cancel during a poll',
            [
              start,
              readFileNode('Read photo', 1, join(work, 'files/in/photo.png')),
              sdxlNamed('Upscale', 2, { operation: 'upscaleImage', options: { api: 'async' } }),
            ],
            chain('Start', 'Read photo', 'Upscale'),
          ),
        ]),
      );
      const workflows = await n8n('import:workflow', `--input=${join(work, 'workflows.json')}`);
      assert.equal(workflows.code, 0, workflows.stderr);
    });

    after(async () => {
      await sandbox?.close();
      await new Promise((resolve) => (front ? front.close(resolve) : resolve(undefined)));
      if (work && !process.env.SDXL_KEEP_E2E) await rm(work, { recursive: true, force: true });
    });

    it('generates one image: a JPEG in n8n binary storage, with the seed in its name and the credits left', async () => {
      const { code, execution } = await execute('sdxlE2eWfOne0001');
      assert.equal(code, 0);
      assert.equal(execution.status, 'success');
      const items = sdxlItems(execution);
      assert.equal(items.length, 1);
      const [item] = items as [Item];
      assert.equal(item.binary?.data?.mimeType, 'image/jpeg');
      assert.equal(item.binary?.data?.fileName, 'sdxl-42.jpg');
      assert.deepEqual((await storedFile(item)).subarray(0, 3), Buffer.from([0xff, 0xd8, 0xff]));
      assert.equal(item.json.seed, 42);
      assert.equal(typeof item.json.remainingCredits, 'number');
      assert.deepEqual(item.pairedItem, { item: 0 });
      // The credential added the key: the sandbox saw it on the request.
      const request = sandbox.requests.find((received) => received.method === 'POST');
      assert.equal(request?.headers['x-api-key'], KEY);
    });

    it('generates four images from one call as four paired items, with a scheduler from an expression', async () => {
      const before = sandbox.requests.length;
      const { execution } = await execute('sdxlE2eWfFour001');
      const items = sdxlItems(execution);
      assert.equal(items.length, 4);
      const posts = sandbox.requests.slice(before).filter((received) => received.method === 'POST');
      assert.equal(posts.length, 1);
      // A scheduler outside the drop-down's list, given as an expression, reaches the API as it is.
      assert.equal((posts[0]?.body as { scheduler?: string }).scheduler, 'DPM++ 2M Karras');
      for (const item of items) {
        assert.equal(item.binary?.data?.mimeType, 'image/jpeg');
        assert.deepEqual((await storedFile(item)).subarray(0, 3), Buffer.from([0xff, 0xd8, 0xff]));
        assert.deepEqual(item.pairedItem, { item: 0 });
      }
    });

    it('pairs images with their input items across several items, and warns when credits run low', async () => {
      // Six images at 0.008 take the balance from 0.9 to below the default threshold of 1.
      sandbox.credits = 0.9;
      const { execution } = await execute('sdxlE2eWfItems01');
      sandbox.credits = 100;
      const items = sdxlItems(execution);
      assert.ok(items.every((item) => item.json.lowCredits === true));
      const hints = execution.data.resultData.runData.SDXL?.[0]?.hints ?? [];
      assert.ok(
        hints.some((hint) => hint.type === 'warning' && /credits left/.test(hint.message)),
        JSON.stringify(hints),
      );
      assert.deepEqual(
        items.map((item) => [item.json.prompt, item.pairedItem?.item]),
        prompts.flatMap((prompt, index) => [
          [prompt, index],
          [prompt, index],
        ]),
      );
    });

    it('a wrong key fails the execution with a NodeApiError that says so, without the key', async () => {
      const { code, execution, output } = await execute('sdxlE2eWfWrong01');
      assert.notEqual(code, 0);
      assert.notEqual(execution.status, 'success');
      const error = execution.data.resultData.error;
      assert.match(error?.message ?? '', /refused the API key/);
      assert.ok(!output.includes(WRONG_KEY));
    });

    it('a wrong key with Continue On Fail gives an error item with the code, and the run succeeds', async () => {
      const { code, execution } = await execute('sdxlE2eWfWrongC1');
      assert.equal(code, 0);
      const items = sdxlItems(execution);
      assert.equal(items.length, 1);
      assert.equal(items[0]?.json.code, 'unauthorized');
      assert.match(String(items[0]?.json.error), /refused the API key/);
      assert.deepEqual(items[0]?.pairedItem, { item: 0 });
    });

    it('a wrong key with On Error "Continue (using error output)" sends the item down the error output', async () => {
      const { code, execution } = await execute('sdxlE2eWfWrongE1');
      assert.equal(code, 0);
      const outputs = execution.data.resultData.runData.SDXL?.[0]?.data?.main ?? [];
      assert.equal(outputs.length, 2, 'a success and an error output');
      assert.deepEqual(outputs[0], [], 'nothing on the success output');
      const failed = outputs[1] ?? [];
      assert.equal(failed.length, 1);
      assert.equal((failed[0]?.json.details as { code?: string } | undefined)?.code, 'unauthorized');
      assert.match(String(failed[0]?.json.error), /refused the API key/);
      assert.deepEqual(failed[0]?.pairedItem, { item: 0 });
    });

    it('runs the shipped example: SDXL → Write Files puts two JPEGs on disk', async () => {
      const { code, execution } = await execute('sdxlE2eWfExample');
      assert.equal(code, 0, JSON.stringify(execution.data.resultData.error ?? null));
      const written = sdxlItems(execution, 'Write image to disk');
      assert.equal(written.length, 2);
      const files = (await readdir(join(work, 'files'))).filter((name) => name !== 'in').sort();
      assert.equal(files.length, 2);
      for (const file of files) {
        assert.match(file, /^sdxl-\d+-[12]\.jpg$/);
        const bytes = await readFile(join(work, 'files', file));
        assert.deepEqual(bytes.subarray(0, 3), Buffer.from([0xff, 0xd8, 0xff]));
      }
    });

    it('chains Generate Image → Upscale Image: the generated file flows to the next node and comes out twice the size', async () => {
      const { code, execution } = await execute('sdxlE2eWfChain01');
      assert.equal(code, 0, JSON.stringify(execution.data.resultData.error ?? null));
      const [generated] = sdxlItems(execution) as [Item];
      const items = sdxlItems(execution, 'Upscale');
      assert.equal(items.length, 1);
      const [item] = items as [Item];
      assert.equal(item.binary?.data?.fileName, 'sdxl-42-x2.jpg');
      assert.equal(item.json.model, 'esrgan');
      assert.deepEqual(item.pairedItem, { item: 0 });
      const before = await sharp(await storedFile(generated)).metadata();
      const after = await sharp(await storedFile(item)).metadata();
      assert.deepEqual([after.width, after.height], [(before.width ?? 0) * 2, (before.height ?? 0) * 2]);
    });

    it('varies the image a Read/Write Files node read', async () => {
      const before = sandbox.requests.length;
      const { code, execution } = await execute('sdxlE2eWfVary001');
      assert.equal(code, 0, JSON.stringify(execution.data.resultData.error ?? null));
      const [item] = sdxlItems(execution, 'Vary') as [Item];
      assert.equal(item.binary?.data?.fileName, 'sdxl-vary-5.jpg');
      assert.deepEqual((await storedFile(item)).subarray(0, 3), Buffer.from([0xff, 0xd8, 0xff]));
      const posts = sandbox.requests.slice(before).filter((received) => received.method === 'POST');
      assert.deepEqual(
        posts.map((received) => received.path),
        ['/v1/sdxl-img2img'],
      );
      assert.equal((posts[0]?.body as { strength?: number }).strength, 0.5);
    });

    it('inpaints with the image and the mask read into two binary fields', async () => {
      const before = sandbox.requests.length;
      const { code, execution } = await execute('sdxlE2eWfInpaint');
      assert.equal(code, 0, JSON.stringify(execution.data.resultData.error ?? null));
      const [item] = sdxlItems(execution, 'Inpaint') as [Item];
      assert.equal(item.binary?.data?.fileName, 'sdxl-inpaint-8.jpg');
      const posts = sandbox.requests.slice(before).filter((received) => received.method === 'POST');
      assert.deepEqual(
        posts.map((received) => received.path),
        ['/upload-asset', '/v1/sdxl-inpaint'],
      );
    });

    it('async: the output file on the Base URL`s own origin is fetched without the key; the API calls carry it', async () => {
      const before = sandbox.requests.length;
      const { code, execution } = await execute('sdxlE2eWfFilesIn');
      assert.equal(code, 0, JSON.stringify(execution.data.resultData.error ?? null));
      const [item] = sdxlItems(execution) as [Item];
      assert.equal(item.json.api, 'async');
      assert.deepEqual((await storedFile(item)).subarray(0, 3), Buffer.from([0xff, 0xd8, 0xff]));
      const since = sandbox.requests.slice(before);
      const files = since.filter((received) => received.path.startsWith('/files/'));
      assert.equal(files.length, 1);
      assert.equal(files[0]?.headers.host, new URL(sandbox.url).host, 'the Base URL`s own origin');
      assert.equal(files[0]?.headers['x-api-key'], undefined, 'no key on a public file');
      const apiCalls = since.filter((received) => !received.path.startsWith('/files/'));
      assert.ok(apiCalls.length >= 3, 'submit, status, result');
      assert.ok(apiCalls.every((received) => received.headers['x-api-key'] === KEY));
    });

    it('async: the output file on another origin is fetched without the key', async () => {
      const before = sandbox.requests.length;
      frontSaw.length = 0;
      const { code, execution } = await execute('sdxlE2eWfFilesEx');
      assert.equal(code, 0, JSON.stringify(execution.data.resultData.error ?? null));
      const [item] = sdxlItems(execution) as [Item];
      assert.deepEqual((await storedFile(item)).subarray(0, 3), Buffer.from([0xff, 0xd8, 0xff]));
      // The API's calls went to the Base URL (the front), with the key; the file did not.
      assert.ok(frontSaw.length >= 3, 'submit, status, result through the front');
      assert.ok(frontSaw.every((call) => call.key === KEY));
      assert.ok(!frontSaw.some((call) => call.path.startsWith('/files/')));
      const files = sandbox.requests.slice(before).filter((received) => received.path.startsWith('/files/'));
      assert.equal(files.length, 1);
      assert.equal(files[0]?.headers.host, new URL(sandbox.url).host, 'another origin than the Base URL');
      assert.equal(files[0]?.headers['x-api-key'], undefined);
    });

    it('cancelling the execution during a poll stops it; nothing is submitted twice', async () => {
      sandbox.configure({ latencyMs: 30_000 });
      const before = sandbox.requests.length;
      const since = () => sandbox.requests.slice(before);
      try {
        await withServer(async (call) => {
          // What the editor's "Execute workflow" sends for a workflow saved with a Manual Trigger.
          const started = await call('/rest/workflows/sdxlE2eWfCancel1/run', {
            triggerToStartFrom: { name: 'Start' },
          });
          assert.equal(started.status, 200, await started.clone().text());
          const { data } = (await started.json()) as { data: { executionId: string } };
          const deadline = Date.now() + 60_000;
          while (!since().some((received) => received.method === 'GET' && /\/status$/.test(received.path))) {
            assert.ok(Date.now() < deadline, 'the node submitted and polled within a minute');
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          const stopped = await call(`/rest/executions/${data.executionId}/stop`, {});
          assert.equal(stopped.status, 200, await stopped.clone().text());
          const pollsAtStop = since().filter((received) => received.method === 'GET').length;
          await new Promise((resolve) => setTimeout(resolve, 3_000));
          assert.equal(
            since().filter((received) => received.method === 'GET').length,
            pollsAtStop,
            'no poll after the stop',
          );
        });
        const submits = since().filter(
          (received) => received.method === 'POST' && received.path === '/v2/esrgan',
        );
        assert.equal(submits.length, 1, 'one submit, never a second');
      } finally {
        sandbox.configure({ latencyMs: 0 });
      }
    });

    it('Max Credits per Execution below the estimate stops the execution before anything is sent, naming both', async () => {
      const before = sandbox.requests.length;
      const { code, execution, output } = await execute('sdxlE2eWfCapLow1');
      assert.notEqual(code, 0);
      const error = execution.data.resultData.error;
      assert.equal(
        error?.message,
        'This run would cost about 0.04788 credits, more than Max Credits per Execution (0.04)',
      );
      assert.match(error?.description ?? '', /3 calls for 6 images.*Nothing was sent\.$/);
      assert.equal(sandbox.requests.length, before, 'nothing sent');
      assert.ok(!output.includes(KEY));
    });

    it('under a Max Credits per Execution that fits, the items report what the sandbox billed, to the micro-credit', async () => {
      const billedBefore = sandbox.billed.length;
      const { code, execution } = await execute('sdxlE2eWfCapOk01');
      assert.equal(code, 0, JSON.stringify(execution.data.resultData.error ?? null));
      const items = sdxlItems(execution);
      assert.equal(items.length, 6);
      const billed = sandbox.billed.slice(billedBefore);
      assert.equal(billed.length, 3);
      const micro = (credits: number) => Math.round(credits * 1e6);
      for (const item of items) {
        const call = billed.find((candidate) => candidate.requestId === item.json.requestId);
        assert.ok(call, 'each item names a billed call');
        assert.equal(micro(item.json.cost as number), micro(call.cost));
      }
      // The images of one call share its cost: one per call adds up to what was billed.
      const perCall = items
        .filter((item) => item.json.index === 0)
        .map((item) => micro(item.json.cost as number));
      assert.equal(
        perCall.reduce((sum, cost) => sum + cost, 0),
        billed.reduce((sum, call) => sum + micro(call.cost), 0),
      );
    });

    it("the credential's Test button, through n8n's REST API: valid with the credits left, or why not", async () => {
      await withServer(async (call) => {
        const test = async (apiKey: string) => {
          const response = await call('/rest/credentials/test', {
            credentials: { ...CREDENTIAL, type: 'sdxlApi', data: { apiKey, baseUrl: sandbox.url } },
          });
          assert.equal(response.status, 200, await response.clone().text());
          return ((await response.json()) as { data: { status: string; message: string } }).data;
        };
        const valid = await test(KEY);
        assert.equal(valid.status, 'OK');
        assert.match(valid.message, /^Valid, \d+(\.\d+)? credits left$/);
        const wrong = await test(WRONG_KEY);
        assert.equal(wrong.status, 'Error');
        assert.match(wrong.message, /refused/);
        assert.ok(!wrong.message.includes(WRONG_KEY));
      });
    });

    it('the key appears in nothing n8n printed and is stored encrypted', async () => {
      for (const text of printed) {
        assert.ok(!text.includes(KEY) && !text.includes(WRONG_KEY), 'no key in any CLI output');
      }
      const database = await readFile(join(userFolder, '.n8n/database.sqlite'));
      assert.ok(
        !database.includes(KEY) && !database.includes(WRONG_KEY),
        'no key in plain text in the database',
      );
    });
  },
);
