// Builds what npm would publish for the client, the sandbox and the `sdxl` command, and packs each
// into out/packages/*.tgz. In the repository they are TypeScript that Node 24 runs directly; Node does
// not strip types under node_modules, so the published packages carry tsc's JavaScript and
// declarations instead (relative `.ts` imports rewritten to `.js`), with package.json pointing at them.
// Usage: npm run pack:packages   (then `npm publish out/packages/<name>` for each, or install the .tgz)
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
  [field: string]: unknown;
}

/** Workspace folder → where tsc put its JavaScript (relative to out/publish). */
const WORKSPACES = [
  { dir: 'shared', folder: 'client' },
  { dir: 'shared/sandbox', folder: 'sandbox' },
  { dir: 'cli', folder: 'cli' },
] as const;

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
    await cp(join(EMITTED, dir, 'src'), join(target, 'src'), { recursive: true });
    const published: Manifest = { ...manifest, files: ['src', ...(manifest.bin ? ['bin'] : [])] };
    if (manifest.exports) published.exports = publishedExports(manifest.exports);
    if (manifest.bin) {
      await mkdir(join(target, 'bin'), { recursive: true });
      for (const file of Object.values(manifest.bin)) {
        const source = await readFile(join(ROOT, dir, file), 'utf8');
        await writeFile(
          join(target, file),
          source.replace(/((?:from|import) '\.\.\/src\/[\w-]+)\.ts'/g, "$1.js'"),
        );
      }
    }
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
