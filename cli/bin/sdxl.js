#!/usr/bin/env node
// The `sdxl` command. In the repository Node 24 runs the TypeScript sources directly; the published
// package carries them compiled, and scripts/pack-packages.ts points this import at the JavaScript.
import '../src/young-generation.ts';
import { main } from '../src/main.ts';

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
