// Starts a real Node-RED (its own red.js, in a child process) with this package installed in a
// temporary user directory, an embedded sandbox standing in for the API, and the example flow
// deployed against it. Used by `npm run node-red` and by the browser end-to-end test.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SANDBOX_DEFAULT_API_KEY, startSandbox, type Sandbox } from '@sdxl-kit/sandbox';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
/** The package's name (scoped): where npm would install it in a user directory's node_modules. */
export const PACKAGE_NAME = (require(join(packageDir, 'package.json')) as { name: string }).name;

export const EXAMPLE_FLOW = join(packageDir, 'examples', 'generate-images.json');
/** The other examples `npm run node-red` deploys beside it, each on its own tab. */
export const MORE_EXAMPLE_FLOWS = ['generate-then-upscale.json', 'inpaint-with-mask.json'].map((name) =>
  join(packageDir, 'examples', name),
);
export const EXAMPLE_ACCOUNT_ID = 'sdxl-example-account';
export const EXAMPLE_INJECT_ID = 'sdxl-example-inject';

export interface LaunchOptions {
  /** Port for the editor; 0 picks a free one. @default 0 */
  port?: number;
  /** Forward Node-RED's own log lines to this process's output. @default false */
  showLog?: boolean;
  /** Sandbox behaviour, e.g. latency, so a newcomer sees the status change. */
  sandboxLatencyMs?: number;
  /** Another node-red package folder, e.g. a Node-RED 4 install. @default this workspace's node-red */
  nodeRedDir?: string;
  /** The Node.js binary that runs Node-RED. @default the one running this script */
  nodeBinary?: string;
  /**
   * `link`: the workspace folder, linked (quick; what `npm install <folder>` does). `tarball`: `npm pack`
   * and install the tarball, so only what would be published is there. @default 'link'
   */
  install?: 'link' | 'tarball';
  /**
   * Also deploy the generate → upscale and inpaint examples, their files in Node-RED's user folder
   * (a photo and a mask to inpaint are written there). @default false
   */
  moreExamples?: boolean;
}

export interface RunningNodeRed {
  /** The editor, e.g. http://127.0.0.1:1880/ */
  editorUrl: string;
  sandbox: Sandbox;
  /** The key the account was given; it must never come back out of Node-RED. */
  apiKey: string;
  /** Everything Node-RED printed. */
  output: () => string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Node-RED settings that keep it on loopback, quiet and offline (no catalogue, no update check). */
function settingsFile(port: number): string {
  const settings = {
    uiHost: '127.0.0.1',
    uiPort: port,
    flowFile: 'flows.json',
    credentialSecret: randomBytes(16).toString('hex'),
    logging: { console: { level: 'info', metrics: false, audit: false } },
    diagnostics: { enabled: false },
    telemetry: { enabled: false, updateNotification: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    editorTheme: { tours: false, palette: { catalogues: [] }, projects: { enabled: false } },
  };
  return `module.exports = ${JSON.stringify(settings, null, 2)};\n`;
}

/** Starts everything and deploys the example flow; resolves once the flow is running. */
export async function launchNodeRed(options: LaunchOptions = {}): Promise<RunningNodeRed> {
  const apiKey = SANDBOX_DEFAULT_API_KEY;
  const sandbox = await startSandbox({ port: 0, apiKey, latencyMs: options.sandboxLatencyMs ?? 0 });
  const userDir = await mkdtemp(join(tmpdir(), 'sdxl-node-red-'));
  let child: ChildProcess | undefined;
  let output = '';

  const stop = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await sandbox.close();
    await rm(userDir, { recursive: true, force: true });
  };

  try {
    await writeFile(
      join(userDir, 'package.json'),
      JSON.stringify({ name: 'node-red-project', private: true }),
    );
    if (options.install === 'tarball') {
      await installTarball(userDir);
    } else {
      // What `npm install <folder>` does: a link in the user directory's node_modules.
      const installed = join(userDir, 'node_modules', PACKAGE_NAME);
      await mkdir(dirname(installed), { recursive: true });
      await symlink(packageDir, installed, 'dir');
    }
    const port = options.port || (await freePort());
    await writeFile(join(userDir, 'settings.js'), settingsFile(port));

    const redJs = options.nodeRedDir
      ? join(options.nodeRedDir, 'red.js')
      : require.resolve('node-red/red.js');
    child = spawn(
      options.nodeBinary ?? process.execPath,
      [redJs, '--userDir', userDir, '--settings', join(userDir, 'settings.js')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const started = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        const text = chunk.toString();
        output += text;
        if (options.showLog) process.stdout.write(text);
        if (output.includes('Started flows') || output.includes('Server now running')) {
          if (output.includes('Server now running')) resolve();
        }
      };
      child?.stdout?.on('data', onData);
      child?.stderr?.on('data', onData);
      child?.once('exit', (code) =>
        reject(new Error(`Node-RED exited (${code}) before starting:\n${output}`)),
      );
    });
    const timeout = setTimeout(() => child?.kill('SIGKILL'), 60_000);
    await started.finally(() => clearTimeout(timeout));

    const editorUrl = `http://127.0.0.1:${port}/`;
    const files = options.moreExamples ? [EXAMPLE_FLOW, ...MORE_EXAMPLE_FLOWS] : [EXAMPLE_FLOW];
    const flow: Record<string, unknown>[] = [];
    for (const file of files)
      flow.push(...(JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>[]));
    if (options.moreExamples) await writeExampleImages(userDir);
    for (const node of flow) {
      if (node.type === 'sdxl-config') {
        node.baseUrl = sandbox.url;
        // Credentials travel with the deploy and are stored apart from the flow, encrypted.
        node.credentials = { apiKey };
      }
      // The examples read and write /tmp/sdxl-*; here they use Node-RED's own folder.
      if ((node.type === 'file' || node.type === 'file in') && typeof node.filename === 'string') {
        node.filename = join(userDir, basename(node.filename));
      }
    }
    const deployed = await fetch(`${editorUrl}flows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'node-red-deployment-type': 'full' },
      body: JSON.stringify(flow),
    });
    if (!deployed.ok)
      throw new Error(`deploying the example flow failed: ${deployed.status} ${await deployed.text()}`);
    await waitFor(() => output.includes('Started flows'), 'the example flow to start');

    return { editorUrl, sandbox, apiKey, output: () => output, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A photo and a mask (white repaints the left half) for the inpaint example to read. */
async function writeExampleImages(userDir: string): Promise<void> {
  const { default: sharp } = await import('sharp');
  const size = 512;
  const photo = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) photo.set([(x * 255) / size, (y * 255) / size, 160], (y * size + x) * 3);
  }
  const mask = Buffer.alloc(size * size);
  for (let y = 0; y < size; y++) mask.fill(255, y * size, y * size + size / 2);
  await sharp(photo, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toFile(join(userDir, 'sdxl-photo.png'));
  await sharp(mask, { raw: { width: size, height: size, channels: 1 } })
    .png()
    .toFile(join(userDir, 'sdxl-mask.png'));
}

/** Packs the workspace as npm would publish it and installs the tarball, offline (it has no dependencies). */
async function installTarball(userDir: string): Promise<void> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const packed = await run(npm, ['pack', '--silent', '--pack-destination', userDir], packageDir);
  const tarball = join(userDir, packed.trim().split('\n').at(-1) ?? '');
  await run(npm, ['install', '--offline', '--no-audit', '--no-fund', '--no-save', tarball], userDir);
}

async function run(command: string, args: string[], cwd: string): Promise<string> {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${code}): ${stderr}`);
  return stdout;
}

/** Presses the example's inject button through the admin API, as the editor's button does. */
export async function pressInject(editorUrl: string, id = EXAMPLE_INJECT_ID): Promise<void> {
  const response = await fetch(`${editorUrl}inject/${id}`, { method: 'POST' });
  if (!response.ok) throw new Error(`inject failed: ${response.status}`);
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
