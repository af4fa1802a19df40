// The help panel and the README promise what the runtime does: every error code a Catch node can get,
// and what the account's shared limit counts.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { ERROR_HINTS } from '@sdxl-kit/client/core';

const read = (path: string) => readFile(new URL(`../../../nodes/node-red/${path}`, import.meta.url), 'utf8');

/** What reaches a Catch node: the client's codes, but not `aborted` (only a stopping flow aborts), and `internal`. */
const CAUGHT_CODES = [...Object.keys(ERROR_HINTS).filter((code) => code !== 'aborted'), 'internal'];

describe("the Node-RED package's documentation", () => {
  for (const [name, path] of [
    ['help panel', 'dist/sdxl.html'],
    ['README', 'README.md'],
  ] as const) {
    it(`${name} lists every error code a Catch node can receive`, async () => {
      const text = await read(path);
      const missing = CAUGHT_CODES.filter(
        (code) => !text.includes(`<code>${code}</code>`) && !text.includes(`\`${code}\``),
      );
      assert.deepEqual(missing, []);
    });

    it(`${name} says the account's limit counts calls, not images`, async () => {
      assert.doesNotMatch(await read(path), /images in flight/i);
    });
  }
});
