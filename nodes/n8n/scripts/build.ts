// Bundles the node and its credential into the CommonJS files n8n loads, with the shared client
// inside and n8n-workflow (the host's own copy) outside, then copies icons and the codex file.
import { build } from 'esbuild';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

await rm(dist, { recursive: true, force: true });
const result = await build({
  entryPoints: {
    'nodes/Sdxl/Sdxl.node': join(root, 'nodes/Sdxl/Sdxl.node.ts'),
    'credentials/SdxlApi.credentials': join(root, 'credentials/SdxlApi.credentials.ts'),
  },
  outdir: dist,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['n8n-workflow'],
  legalComments: 'none',
  logLevel: 'warning',
  // zod's JSON-schema export warns through the console; nothing here calls it, and a verified node logs nothing.
  drop: ['console', 'debugger'],
  metafile: true,
});
// The client's package root pulls in axios and Node timers; only its core entry may be bundled.
const forbidden = Object.keys(result.metafile.inputs).filter((input) =>
  /node_modules\/axios\/|shared\/src\/(index|axios-transport)\.ts$/.test(input),
);
if (forbidden.length > 0) throw new Error(`The bundle must not contain: ${forbidden.join(', ')}`);
// zod is set to run jitless (nodes/Sdxl/zod-jitless.ts) on the copy the node imports; a second copy,
// say one nested under the client, would compile its schemas with `new Function` regardless.
const zodCores = Object.keys(result.metafile.inputs).filter((input) => input.endsWith('zod/v4/core/core.js'));
if (zodCores.length > 1) throw new Error(`The bundle holds more than one zod: ${zodCores.join(', ')}`);
// The package is ESM for its TypeScript sources; what n8n requires is CommonJS.
await writeFile(join(dist, 'package.json'), '{ "type": "commonjs" }\n');
await mkdir(join(dist, 'icons'), { recursive: true });
for (const file of ['nodes/Sdxl/sdxl.svg', 'nodes/Sdxl/sdxl.dark.svg', 'nodes/Sdxl/Sdxl.node.json']) {
  await cp(join(root, file), join(dist, file));
}
for (const file of ['sdxl.svg', 'sdxl.dark.svg'])
  await cp(join(root, 'icons', file), join(dist, 'icons', file));
