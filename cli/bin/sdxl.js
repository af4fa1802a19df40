#!/usr/bin/env node
// Node 24 runs the TypeScript sources directly; this file only gives npm a JavaScript bin to link.
import { main } from '../src/main.ts';

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
