// Builds what npm would publish for the client, the sandbox and the `sdxl` command, and packs each
// into out/packages/*.tgz. In the repository they are TypeScript that Node 24 runs directly; Node does
// not strip types under node_modules, so the client and the sandbox carry tsc's JavaScript and
// declarations instead (relative `.ts` imports rewritten to `.js`), with package.json pointing at them.
// The `sdxl` command is a program, not a library: it ships bundled (see `bundleCommand`).
// Usage: npm run pack:packages   (then `npm publish out/packages/<name>` for each, or install the .tgz)
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const EMITTED = join(ROOT, 'out/publish');
const PACKAGES = join(ROOT, 'out/packages');

interface Manifest {
  name: string;
  version: string;
  exports?: Record<string, string | { types: string; default: string }>;
  bin?: Record<string, string>;
  files?: string[];
  dependencies?: Record<string, string>;
  [field: string]: unknown;
}

/** Workspace folder → where tsc put its JavaScript (relative to out/publish). */
const WORKSPACES = [
  { dir: 'shared', folder: 'client' },
  { dir: 'shared/sandbox', folder: 'sandbox' },
  { dir: 'cli', folder: 'cli' },
] as const;

/**
 * The command's dependencies that stay outside its bundle: the sandbox (a package of its own, loaded
 * only by `--sandbox` and `sdxl sandbox`) and the ones loaded only when used (Redis with
 * `SDXL_REDIS_URL`, axios behind a proxy, sharp's native library).
 */
const COMMAND_EXTERNALS = ['@sdxl-kit/sandbox', 'ioredis', 'axios', 'sharp'];

/**
 * `bin/sdxl.js` and the chunks each command loads when it runs, the client, zod and image-size inside.
 * Loading the ~170 files they are otherwise cost Node's module loader more than the code itself: the
 * first request of `sdxl imagine` left a fresh process after 212 ms, where Node alone starts in 40
 * (`npm run bench:async`). The chunks sit beside the entry, so `../package.json` is the package's own.
 */
async function bundleCommand(target: string): Promise<void> {
  await build({
    entryPoints: [join(ROOT, 'cli/bin/sdxl.js')],
    outdir: join(target, 'bin'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    external: COMMAND_EXTERNALS,
    chunkNames: '[name]-[hash]',
    legalComments: 'linked',
    logLevel: 'warning',
  });
}

/** `./src/index.ts` → `{ types: './src/index.d.ts', default: './src/index.js' }`. */
function publishedExports(exports: NonNullable<Manifest['exports']>): Manifest['exports'] {
  return Object.fromEntries(
    Object.entries(exports).map(([subpath, target]) => {
      const base = String(target).replace(/\.ts$/, '');
      return [subpath, { types: `${base}.d.ts`, default: `${base}.js` }];
    }),
  );
}

export async function packPackages(): Promise<string[]> {
  await rm(EMITTED, { recursive: true, force: true });
  await rm(PACKAGES, { recursive: true, force: true });
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.publish.json')], { stdio: 'inherit' });

  const tarballs: string[] = [];
  for (const { dir, folder } of WORKSPACES) {
    const manifest = JSON.parse(await readFile(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest;
    const target = join(PACKAGES, folder);
    await mkdir(target, { recursive: true });
    const published: Manifest = { ...manifest };
    if (manifest.bin) {
      await bundleCommand(target);
      published.files = ['bin'];
      // What the bundle holds is not installed again.
      published.dependencies = Object.fromEntries(
        Object.entries(manifest.dependencies ?? {}).filter(([name]) => COMMAND_EXTERNALS.includes(name)),
      );
    } else {
      await cp(join(EMITTED, dir, 'src'), join(target, 'src'), { recursive: true });
      published.files = ['src'];
    }
    if (manifest.exports) published.exports = publishedExports(manifest.exports);
    await writeFile(join(target, 'package.json'), `${JSON.stringify(published, null, 2)}\n`);
    await cp(join(ROOT, 'LICENSE'), join(target, 'LICENSE'));
    await writeFile(
      join(target, 'README.md'),
      `# ${manifest.name}\n\n${String(manifest.description ?? '')}\n\nPart of sdxl-kit; see its README for usage.\n`,
    );
    const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', PACKAGES], {
      cwd: target,
      encoding: 'utf8',
    });
    tarballs.push(join(PACKAGES, packed.trim().split('\n').at(-1) as string));
  }
  return tarballs;
}

if (import.meta.main) {
  for (const tarball of await packPackages()) console.log(tarball);
}
