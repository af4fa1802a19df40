// What the API reported this account is billed, kept between runs: a cron batch's `--dry-run` and
// `--max-cost` check estimate at the price the account was billed yesterday, not the published one.
// A small JSON file beside the learnt job times, one entry per account (a hash of the API address and
// the key: the key itself is never written).
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PriceBook } from '@sdxl-kit/client/core';
import { cacheDir } from './job-times-file.ts';

/** Accounts kept; the least recently billed goes first. */
const MAX_ACCOUNTS = 16;

interface PricesFile {
  version: 1;
  /** Per account: when last reported (epoch ms), and the reports per model slug. */
  accounts: Record<string, { at: number; reported: Record<string, unknown[]> }>;
}

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
 * report back (through a temporary file, so a crash leaves the old one). A missing or unreadable file
 * is an empty one: it is only ever a cache, and a failed write costs the next run nothing but the
 * published prices.
 */
export async function keptPrices(file: string, account: string): Promise<PriceBook> {
  const book = new PriceBook((await read(file)).accounts[account]?.reported ?? {});
  let writing = Promise.resolve();
  book.onReport(() => {
    writing = writing.then(async () => {
      const kept = await read(file);
      kept.accounts[account] = { at: Date.now(), reported: book.reported() };
      const newest = Object.entries(kept.accounts)
        .sort(([, a], [, b]) => b.at - a.at)
        .slice(0, MAX_ACCOUNTS);
      await mkdir(path.dirname(file), { recursive: true });
      const temporary = `${file}.${process.pid}.tmp`;
      await writeFile(temporary, JSON.stringify({ version: 1, accounts: Object.fromEntries(newest) }));
      await rename(temporary, file);
    }).catch(() => {});
  });
  return book;
}

async function read(file: string): Promise<PricesFile> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return { version: 1, accounts: {} };
  }
  const accounts: PricesFile['accounts'] = {};
  const stored = (parsed as { accounts?: unknown } | null)?.accounts;
  if (stored && typeof stored === 'object') {
    for (const [account, entry] of Object.entries(stored as Record<string, unknown>)) {
      const { at, reported } = (entry ?? {}) as { at?: unknown; reported?: unknown };
      if (typeof at !== 'number' || !reported || typeof reported !== 'object') continue;
      accounts[account] = { at, reported: reported as Record<string, unknown[]> };
    }
  }
  return { version: 1, accounts };
}
