import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AbortedError,
  BadResponseError,
  ConnectionError,
  DEFAULT_RETRY_POLICY,
  InvalidRequestError,
  TimeoutError,
  backoffDelay,
  decideRetry,
  errorFromResponse,
  type SdxlError,
} from '@sdxl-kit/client/core';

const NOW = Date.parse('2026-11-25T12:00:00Z');
const policy = { ...DEFAULT_RETRY_POLICY };
const noJitter = () => 0;

function decide(
  error: SdxlError,
  overrides: { retriesDone?: number; idempotent?: boolean; opt?: boolean } = {},
) {
  return decideRetry(
    {
      error,
      retriesDone: overrides.retriesDone ?? 0,
      idempotent: overrides.idempotent ?? false,
      now: NOW,
      random: noJitter,
    },
    { ...policy, retryBrokenConnections: overrides.opt ?? false },
  );
}

const status = (code: number, headers: Record<string, string> = {}) => errorFromResponse(code, '', headers);

describe('retry policy: the table', () => {
  const table: Array<
    [name: string, error: SdxlError, options: Parameters<typeof decide>[1], expected: number | false]
  > = [
    [
      '429 with x-rate-limit-reset-at-utc waits until the reset',
      status(429, { 'x-rate-limit-reset-at-utc': '2026-11-25T12:00:07Z' }),
      {},
      7000,
    ],
    [
      '429 reset given without a zone is read as UTC',
      status(429, { 'x-rate-limit-reset-at-utc': '2026-11-25 12:00:03' }),
      {},
      3000,
    ],
    [
      '429 reset given as epoch seconds',
      status(429, { 'x-rate-limit-reset-at-utc': String(NOW / 1000 + 2) }),
      {},
      2000,
    ],
    ['429 with Retry-After seconds', status(429, { 'retry-after': '4' }), {}, 4000],
    [
      '429 with Retry-After as a date',
      status(429, { 'retry-after': 'Wed, 25 Nov 2026 12:00:05 GMT' }),
      {},
      5000,
    ],
    [
      '429 far in the future is capped',
      status(429, { 'x-rate-limit-reset-at-utc': '2026-11-25T13:00:00Z' }),
      {},
      60_000,
    ],
    ['429 with no hint backs off', status(429), {}, 500],
    ['500 backs off', status(500), {}, 500],
    ['502 backs off', status(502), {}, 500],
    ['503 backs off, doubling', status(503), { retriesDone: 1 }, 1000],
    ['504 backs off', status(504), {}, 500],
    ['connection refused before sending backs off', new ConnectionError('refused', false), {}, 500],
    ['connection broken after sending is not retried', new ConnectionError('reset', true), {}, false],
    [
      'connection broken after sending is retried when opted in',
      new ConnectionError('reset', true),
      { opt: true },
      500,
    ],
    [
      'connection broken on an idempotent GET is retried',
      new ConnectionError('reset', true),
      { idempotent: true },
      500,
    ],
    ['timeout after sending is not retried', new TimeoutError('slow'), {}, false],
    ['timeout is retried when opted in', new TimeoutError('slow'), { opt: true }, 500],
    ['the caller abort is never retried', new AbortedError(), { idempotent: true, opt: true }, false],
    ['401 is final', status(401), {}, false],
    ['404 is final', status(404), {}, false],
    ['405 is final', status(405), {}, false],
    ['406 (credits) is final', status(406), {}, false],
    ['422 is final', status(422), {}, false],
    ['a bad body is final', new BadResponseError('no image'), {}, false],
    ['invalid input is final', new InvalidRequestError([]), {}, false],
    ['no retries left', status(503), { retriesDone: 2 }, false],
  ];
  for (const [name, error, options, expected] of table) {
    it(name, () => {
      const decision = decide(error, options);
      if (expected === false) assert.equal(decision.retry, false, decision.reason);
      else
        assert.deepEqual(
          { retry: decision.retry, delayMs: decision.retry ? decision.delayMs : -1 },
          { retry: true, delayMs: expected },
        );
    });
  }
});

describe('retry policy: backoff', () => {
  it('doubles from the base up to the cap', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, noJitter));
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
  });
  it('takes off at most a quarter as jitter, so concurrent callers spread out', () => {
    assert.equal(
      backoffDelay(2, policy, () => 0.999999),
      1500,
    );
    assert.equal(
      backoffDelay(2, policy, () => 0.5),
      1750,
    );
  });
});
