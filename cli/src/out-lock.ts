// One journaled run at a time in an --out folder. The lock is SQLite's write lock on an empty database
// file, which SQLite takes with a POSIX fcntl lock: the kernel drops it with the process, however the
// process ends (kill -9, a crash, the machine going down), so no pid file is left to go stale and no
// run has to guess whether another is alive.
import { hostname } from 'node:os';
import path from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { UsageError } from './exit.ts';
import { Journal, type RunHolder } from './journal.ts';

/** The lock's file name inside --out. It stays there: it holds nothing but the lock. */
export const LOCK_FILE = '.sdxl-journal.lock';

/** SQLite's SQLITE_BUSY: another connection holds the lock. */
const SQLITE_BUSY = 5;

/** Another run holds the --out folder: exits {@link EXIT.outInUse}, nothing sent. */
export class OutInUseError extends Error {
  readonly code = 'out_in_use';
  /** The run holding it, as the journal names it (undefined if it has not written its name yet). */
  readonly holder: RunHolder | undefined;

  constructor(message: string, holder: RunHolder | undefined) {
    super(message);
    this.name = 'OutInUseError';
    this.holder = holder;
  }
}

/** This process's name in the journal for the run that holds the lock. */
export function thisRun(now = new Date()): RunHolder {
  return { pid: process.pid, host: hostname(), startedAt: now.toISOString() };
}

function describeHolder(holder: RunHolder | undefined, now: number): string {
  if (!holder) return 'another sdxl run';
  const started = Date.parse(holder.startedAt);
  const minutes = Number.isFinite(started) ? Math.max(0, Math.round((now - started) / 60_000)) : undefined;
  const since = minutes === undefined ? '' : `, started ${holder.startedAt} (${minutes} min ago)`;
  return `another sdxl run (pid ${holder.pid} on ${holder.host}${since})`;
}

/**
 * Takes the lock of `outDir` for this process until `release`. Refuses at once, naming the run that
 * holds it, when another process does; never waits.
 * @throws {OutInUseError} when another run holds it; {@link UsageError} when it cannot be taken at all.
 */
export async function lockOut(outDir: string): Promise<{ release(): void }> {
  const file = path.join(outDir, LOCK_FILE);
  const { DatabaseSync } = await import('node:sqlite');
  let database: DatabaseSync | undefined;
  try {
    // No busy timeout: a run that finds --out taken says so at once.
    database = new DatabaseSync(file, { timeout: 0 });
    // Nothing is ever written, so no rollback journal file is needed beside it (nor left by a kill).
    database.exec('PRAGMA journal_mode = MEMORY');
    // A write transaction that is never committed holds SQLite's RESERVED lock and writes nothing.
    database.exec('BEGIN IMMEDIATE');
  } catch (error) {
    database?.close();
    if ((error as { errcode?: unknown }).errcode === SQLITE_BUSY) {
      const holder = await Journal.lastRun(outDir).catch(() => undefined);
      throw new OutInUseError(
        `--out "${outDir}" is in use by ${describeHolder(holder, Date.now())}. Nothing was sent. That run carries the batch on; run again once it has ended and only what is still missing is sent.`,
        holder,
      );
    }
    throw new UsageError(
      `--out: cannot lock "${file}" (${(error as Error).message}). Nothing was sent. Use a folder on a local disk, or --no-journal (no lock, and a batch run again bills every prompt).`,
    );
  }
  return { release: () => database.close() };
}
