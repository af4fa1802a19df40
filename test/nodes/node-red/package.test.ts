// What npm publishes: dist/ is git-ignored, so a publish from a clean checkout ships the built nodes
// only if packing builds them first; and what the Flow Library and the palette manager read of it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

const packageDir = fileURLToPath(new URL('../../../nodes/node-red/', import.meta.url));

interface PackageJson {
  name: string;
  description: string;
  keywords: string[];
  repository?: unknown;
  bugs?: unknown;
  scripts?: Record<string, string>;
  'node-red': { nodes: Record<string, string> };
}

const run = promisify(execFile);

describe('the published @sdxl-kit/node-red-sdxl package', () => {
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

  describe('as packed: what the palette manager and the help panel show', () => {
    let unpacked: string;
    let manifest: PackageJson;
    before(async () => {
      const work = await mkdtemp(join(tmpdir(), 'sdxl-node-red-pack-'));
      // --ignore-scripts: dist/ as the test run built it; rebuilding here would race the runtime tests.
      const { stdout } = await run(
        'npm',
        ['pack', '--json', '--ignore-scripts', '--pack-destination', work],
        { cwd: packageDir },
      );
      const [packed] = JSON.parse(stdout) as [{ filename: string }];
      await run('tar', ['-xzf', join(work, packed.filename), '-C', work]);
      unpacked = join(work, 'package');
      manifest = JSON.parse(await readFile(join(unpacked, 'package.json'), 'utf8')) as PackageJson;
    });
    after(async () => {
      if (unpacked) await rm(join(unpacked, '..'), { recursive: true, force: true });
    });

    it('has a scoped name, as the Flow Library asks of new packages, and keeps the node types', async () => {
      assert.equal(manifest.name, '@sdxl-kit/node-red-sdxl');
      assert.deepEqual(Object.keys(manifest['node-red'].nodes).sort(), ['sdxl', 'sdxl-config']);
      const editor = await readFile(join(unpacked, 'dist/sdxl.html'), 'utf8');
      assert.match(editor, /registerType\('sdxl',/);
    });

    it('is found by the palette manager`s search for each operation', () => {
      // The palette manager matches a search against the catalogue entry's id, keywords and node
      // types (Node-RED 5's editor, palette-editor.js), not its description.
      const index = [manifest.name, ...manifest.keywords, ...Object.keys(manifest['node-red'].nodes)]
        .join(',')
        .toLowerCase();
      for (const term of ['generate', 'vary', 'inpaint', 'upscale', 'sdxl']) {
        assert.ok(index.includes(term), `a search for "${term}" finds it: ${index}`);
      }
      assert.ok(manifest.keywords.includes('node-red'), 'the keyword the Flow Library requires');
      for (const operation of ['generate', 'vary', 'inpaint', 'upscale']) {
        assert.match(manifest.description, new RegExp(`\\b${operation}\\b`));
      }
    });

    it('opens its help with the four operations and the image input, and says where inpaint and upscale images go', async () => {
      const editor = await readFile(join(unpacked, 'dist/sdxl.html'), 'utf8');
      const help = editor.slice(editor.indexOf('data-help-name="sdxl"'));
      const opening = help.slice(help.indexOf('<p>'), help.indexOf('</p>'));
      for (const operation of ['generate', 'vary', 'inpaint', 'upscale']) {
        assert.match(opening, new RegExp(`<i>${operation}</i>`), `the first paragraph names ${operation}`);
      }
      const inputs = help.slice(help.indexOf('<h3>Inputs</h3>'), help.indexOf('</dl>'));
      assert.match(inputs, /payload <span class="property-type">string \| Buffer<\/span>/);
      assert.match(inputs, /the image, a Buffer/);
      assert.match(inputs, /mask <span class="property-type">Buffer<\/span>/);
      assert.match(
        help.replace(/\s+/g, ' '),
        /<i>inpaint<\/i> and <i>upscale<\/i> first upload .* to Segmind's storage, which gives it a public URL/,
      );
    });

    it("keeps the account's Budget and the node's Metadata switch, in the form and in the help", async () => {
      const account = await readFile(join(unpacked, 'dist/sdxl-config.html'), 'utf8');
      assert.match(account, /budget: \{\s*value: '',/, 'an account starts with no budget');
      assert.match(account, /budgetWindow: \{\s*value: 'day',/);
      assert.match(account, /id="node-config-input-budget"/);
      assert.match(account, /<option value="hour">hour<\/option>/);
      const accountHelp = account.slice(account.indexOf('data-help-name="sdxl-config"')).replace(/\s+/g, ' ');
      assert.match(accountHelp, /<dt class="optional">Budget/);
      assert.match(accountHelp, /<code>budget_exceeded<\/code>/);

      const node = await readFile(join(unpacked, 'dist/sdxl.html'), 'utf8');
      assert.match(node, /embedParameters: \{ value: true \}/, 'Metadata is ticked by default');
      assert.match(node, /<label for="node-input-embedParameters">.*Metadata<\/label>/);
      const nodeHelp = node.slice(node.indexOf('data-help-name="sdxl"')).replace(/\s+/g, ' ');
      assert.match(
        nodeHelp,
        /Unless <i>Metadata<\/i> is unticked, each image carries its generation parameters/,
      );
    });

    it('gives no repository or bugs address, none existing yet, and its README says so', async () => {
      assert.equal(manifest.repository, undefined);
      assert.equal(manifest.bugs, undefined);
      const readme = (await readFile(join(unpacked, 'README.md'), 'utf8')).replace(/\s+/g, ' ');
      assert.match(readme, /no public repository or issue tracker yet/);
      assert.match(readme, /npm install @sdxl-kit\/node-red-sdxl/);
    });
  });
});
