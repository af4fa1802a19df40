// What the API reported this account is billed, kept between runs: a cron batch's `--dry-run` and
// `--max-cost` check estimate at the price the account was billed yesterday, not the published one.
// A small JSON file beside the learnt job times, one entry per account (a hash of the API address and
// the key: the key itself is never written).
import { createHash } from 'node:crypto';
import path from 'node:path';
import { PriceBook } from '@sdxl-kit/client/core';
import { JsonCache, cacheDir } from './cache-file.ts';

/** Accounts kept; the least recently billed goes first. */
const MAX_ACCOUNTS = 16;

/** Where reported prices are kept: `prices.json` in the cache folder (see `cacheDir`). */
export function pricesPath(env: NodeJS.ProcessEnv): string | undefined {
  const dir = cacheDir(env);
  return dir ? path.join(dir, 'prices.json') : undefined;
}

/** The account's entry name: not reversible to the key. */
export function accountOf(baseUrl: string, apiKey: string): string {
  return createHash('sha256').update(`${baseUrl}\n${apiKey}`).digest('hex').slice(0, 32);
}

/**
 * A price book that starts from what earlier runs on this account were billed and writes every new
 * report back. A failed write costs the next run nothing but the published prices.
 */
export async function keptPrices(file: string, account: string): Promise<PriceBook> {
  const cache = new JsonCache<{ reported: Record<string, unknown[]> }>({
    file,
    section: 'accounts',
    max: MAX_ACCOUNTS,
    readEntry: ({ reported }) =>
      reported && typeof reported === 'object'
        ? { reported: reported as Record<string, unknown[]> }
        : undefined,
  });
  const book = new PriceBook((await cache.get(account))?.reported ?? {});
  book.onReport(() => void cache.update(account, () => ({ reported: book.reported() })).catch(() => {}));
  return book;
}
