// What npm would publish for @sdxl-kit/client, @sdxl-kit/sandbox and @sdxl-kit/cli, installed from
// the packed tarballs into a fresh project, the way a user gets them: the `sdxl` command makes an
// image, a script imports the client and the sandbox, and a TypeScript project type-checks against
// the shipped declarations. Run by e2e/packages/run.sh (and .ci/run).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { packPackages } from '../../scripts/pack-packages.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Node 24 (the repo's `node` devDependency) first on PATH, as for every script here.
const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      command,
      args,
      { cwd, env: { ...process.env, PATH, ...env }, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

let tarballs: string[];
let project: string;

describe('the published packages, installed from their tarballs', () => {
  before(async () => {
    tarballs = await packPackages();
    project = await mkdtemp(join(tmpdir(), 'sdxl-packages-'));
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'uses-sdxl-kit', private: true, type: 'module' }),
    );
    // Dependencies come from npm's cache when the repo's install already fetched them.
    const install = await run(
      'npm',
      // @types/node as in any TypeScript project for Node: the declarations speak of Buffer.
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        ...tarballs,
        '@types/node@24',
      ],
      project,
    );
    assert.equal(install.code, 0, install.stderr);
  });
  after(async () => {
    if (project) await rm(project, { recursive: true, force: true });
  });

  it('ship JavaScript and declarations, no TypeScript sources', async () => {
    for (const tarball of tarballs) {
      const listing = await run('tar', ['-tzf', tarball], ROOT);
      const files = listing.stdout.trim().split('\n');
      assert.ok(files.includes('package/LICENSE'), `${tarball} has a LICENSE`);
      assert.ok(files.some((file) => file.endsWith('.js')));
      assert.deepEqual(
        files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts')),
        [],
        `${tarball} ships no .ts sources`,
      );
    }
  });

  it('`sdxl imagine --sandbox` from the installed command writes a JPEG and says where', async () => {
    const out = join(project, 'images');
    const sdxl = join(project, 'node_modules/.bin/sdxl');
    const version = await run(sdxl, ['--version'], project);
    assert.equal(version.stdout.trim(), '0.1.0', version.stderr);
    const made = await run(
      sdxl,
      ['imagine', '--sandbox', 'a red apple', '--out', out, '--seed', '7'],
      project,
    );
    assert.equal(made.code, 0, made.stderr);
    const [file] = await readdir(out);
    assert.match(file ?? '', /^a-red-apple-7-0\.jpg$/);
    assert.match(made.stdout, new RegExp(`${out}/a-red-apple-7-0\\.jpg`));
    const bytes = await readFile(join(out, file as string));
    assert.deepEqual([...bytes.subarray(0, 3)], [0xff, 0xd8, 0xff]);
  });

  it('a script imports the client (both entries) and the sandbox, and makes an image', async () => {
    await writeFile(
      join(project, 'use.mjs'),
      `import { createClient, REQUEST_FIELDS } from '@sdxl-kit/client';
import { SdxlClient } from '@sdxl-kit/client/core';
import { startSandbox } from '@sdxl-kit/sandbox';
const sandbox = await startSandbox({ apiKey: 'k' });
try {
  const client = createClient({ apiKey: 'k', baseUrl: sandbox.url });
  const result = await client.generate({ prompt: 'a pear', samples: 2 });
  console.log(JSON.stringify({
    core: client instanceof SdxlClient,
    fields: REQUEST_FIELDS.length,
    images: result.images.map((image) => image.mimeType),
    credits: result.remainingCredits,
  }));
} finally {
  await sandbox.close();
}
`,
    );
    const used = await run(process.execPath, ['use.mjs'], project);
    assert.equal(used.code, 0, used.stderr);
    const answer = JSON.parse(used.stdout) as Record<string, unknown>;
    assert.equal(answer.core, true);
    assert.ok((answer.fields as number) >= 10);
    assert.deepEqual(answer.images, ['image/jpeg', 'image/jpeg']);
    assert.equal(typeof answer.credits, 'number');
  });

  it('a strict TypeScript project type-checks against the shipped declarations', async () => {
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2023',
          noEmit: true,
          types: ['node'],
        },
        files: ['use.ts'],
      }),
    );
    await writeFile(
      join(project, 'use.ts'),
      `import { createClient, SdxlError, type GenerateResult } from '@sdxl-kit/client';
const client = createClient({ apiKey: 'k' });
export async function first(prompt: string): Promise<Uint8Array | undefined> {
  try {
    const result: GenerateResult = await client.generate({ prompt, steps: 30 });
    return result.images[0]?.bytes;
  } catch (error) {
    if (error instanceof SdxlError) console.log(error.code);
    return undefined;
  }
}
// @ts-expect-error: the declarations are real, so a number is not a prompt
void client.generate({ prompt: 42 });
`,
    );
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const checked = await run(process.execPath, [tsc, '-p', project], project);
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
  });
});
