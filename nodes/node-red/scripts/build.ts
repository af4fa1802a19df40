// Builds the installable package: CommonJS runtime files with the client bundled in, their editor
// .html beside them (fields generated from the client's REQUEST_FIELDS), and the icons.
import { build } from 'esbuild';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderEditor } from '../src/editor/render.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = `${root}dist`;
const NODES = ['sdxl', 'sdxl-config'];

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

await build({
  entryPoints: NODES.map((name) => `${root}src/${name}.ts`),
  outdir: dist,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  // Node-RED 4 runs on Node 18+, but the client needs AbortSignal.any (Node 20.3).
  target: 'node20.3',
  logLevel: 'warning',
  legalComments: 'eof',
});
// The workspace is ESM for its TypeScript; the runtime files are CommonJS, which Node-RED 4 require()s.
await writeFile(`${dist}/package.json`, `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);

for (const name of NODES) {
  const template = await readFile(`${root}src/editor/${name}.html`, 'utf8');
  await writeFile(`${dist}/${name}.html`, renderEditor(template));
}
await cp(`${root}icons`, `${dist}/icons`, { recursive: true });
