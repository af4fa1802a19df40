import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import type { SdxlError } from '@sdxl-kit/client';

/**
 * The error `promise` rejects with (the test fails if it resolves). With `secret`, every way a host
 * might show the error (its string, stack, JSON and a deep inspect) is checked for it first.
 */
export async function failure(promise: Promise<unknown>, secret?: string): Promise<SdxlError> {
  try {
    await promise;
  } catch (error) {
    if (secret !== undefined) {
      const views = [
        String(error),
        (error as Error).stack,
        JSON.stringify(error),
        inspect(error, { depth: Infinity }),
      ];
      for (const view of views) assert.ok(!view?.includes(secret), `the secret leaked: ${view}`);
    }
    return error as SdxlError;
  }
  assert.fail('expected a failure');
}
