#!/usr/bin/env node
// The `sdxl` command. In the repository Node 24 runs the TypeScript sources directly; the published
// package carries them bundled (scripts/pack-packages.ts).
import { enableCompileCache } from 'node:module';

// V8 keeps the code it compiled on disk for the next start (Node's cache in the temporary folder).
// It applies to what loads after this line, hence the imports below are dynamic.
enableCompileCache();
await import('../src/young-generation.ts');
const { main } = await import('../src/main.ts');

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
