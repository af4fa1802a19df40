// What npm publishes: dist/ is git-ignored, so a publish from a clean checkout ships the built nodes
// only if packing builds them first.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

const packageDir = fileURLToPath(new URL('../../../nodes/node-red/', import.meta.url));

interface PackageJson {
  scripts?: Record<string, string>;
  'node-red': { nodes: Record<string, string> };
}

describe('the published node-red-contrib-sdxl package', () => {
  it('builds dist/ before packing, so a clean checkout does not publish a package without its nodes', async () => {
    const manifest = JSON.parse(await readFile(`${packageDir}package.json`, 'utf8')) as PackageJson;
    assert.equal(manifest.scripts?.prepack, manifest.scripts?.build, 'prepack runs the build');
    assert.ok(manifest.scripts?.build?.includes('scripts/build.ts'));
  });

  it('lists every node file Node-RED loads, with its editor .html beside it', async () => {
    const manifest = JSON.parse(await readFile(`${packageDir}package.json`, 'utf8')) as PackageJson;
    // --ignore-scripts: the file list only; rebuilding dist/ here would race the runtime tests reading it.
    const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: packageDir,
    });
    const [packed] = JSON.parse(stdout) as [{ files: { path: string }[] }];
    const files = packed.files.map((file) => file.path);
    for (const runtime of Object.values(manifest['node-red'].nodes)) {
      assert.ok(files.includes(runtime), `${runtime} is packed`);
      assert.ok(files.includes(runtime.replace(/\.js$/, '.html')), `${runtime}'s editor is packed`);
    }
    assert.ok(files.includes('dist/icons/sdxl.svg'));
    assert.ok(files.includes('dist/package.json'), 'the CommonJS marker is packed');
  });
});
