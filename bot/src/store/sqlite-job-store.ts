import { DatabaseSync } from 'node:sqlite';
import type { JobRecord, JobStore, StoredImage } from './job-store.ts';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    guild_id TEXT,
    channel_id TEXT,
    input TEXT NOT NULL,
    samples INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    seed INTEGER,
    remaining_credits REAL,
    error TEXT,
    operation TEXT,
    request_id TEXT,
    reply TEXT,
    reservation TEXT
  );
  CREATE INDEX IF NOT EXISTS jobs_by_user ON jobs (user_id, created_at);
  CREATE TABLE IF NOT EXISTS images (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    mime_type TEXT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (job_id, idx)
  );
  CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

interface JobRow {
  id: string;
  user_id: string;
  guild_id: string | null;
  channel_id: string | null;
  input: string;
  samples: number;
  status: JobRecord['status'];
  created_at: number;
  finished_at: number | null;
  seed: number | null;
  remaining_credits: number | null;
  error: string | null;
  operation: string | null;
  request_id: string | null;
  reply: string | null;
  reservation: string | null;
}

const COLUMNS: Record<string, string> = {
  status: 'status',
  finishedAt: 'finished_at',
  seed: 'seed',
  remainingCredits: 'remaining_credits',
  error: 'error',
  input: 'input',
  samples: 'samples',
  guildId: 'guild_id',
  channelId: 'channel_id',
  operation: 'operation',
  requestId: 'request_id',
  reply: 'reply',
  reservation: 'reservation',
};

/** Columns stored as JSON text. */
const JSON_COLUMNS = new Set(['input', 'operation', 'reply', 'reservation']);

/** Columns later versions added, with their types: a store made before them gets them in place. */
const ADDED_COLUMNS: [string, string][] = [
  ['operation', 'TEXT'],
  ['request_id', 'TEXT'],
  ['reply', 'TEXT'],
  ['reservation', 'TEXT'],
];

function fromRow(row: JobRow): JobRecord {
  return {
    id: row.id,
    userId: row.user_id,
    guildId: row.guild_id,
    channelId: row.channel_id,
    input: JSON.parse(row.input) as JobRecord['input'],
    samples: row.samples,
    status: row.status,
    createdAt: row.created_at,
    ...(row.finished_at !== null && { finishedAt: row.finished_at }),
    ...(row.seed !== null && { seed: row.seed }),
    ...(row.remaining_credits !== null && { remainingCredits: row.remaining_credits }),
    ...(row.error !== null && { error: row.error }),
    ...(row.operation !== null &&
      row.operation !== undefined && { operation: JSON.parse(row.operation) as JobRecord['operation'] }),
    ...(row.request_id !== null && row.request_id !== undefined && { requestId: row.request_id }),
    ...(row.reply !== null &&
      row.reply !== undefined && { reply: JSON.parse(row.reply) as JobRecord['reply'] }),
    ...(row.reservation !== null &&
      row.reservation !== undefined && {
        reservation: JSON.parse(row.reservation) as JobRecord['reservation'],
      }),
  };
}

/** The embedded job store: one SQLite file through Node's built-in `node:sqlite` (no native addon). */
export class SqliteJobStore implements JobStore {
  private readonly db: DatabaseSync;

  /** @param path a file path, or ':memory:' */
  constructor(path: string) {
    this.db = new DatabaseSync(path);
    // WAL with synchronous=NORMAL: no fsync per write (a write blocks the event loop, and with it every
    // other interaction's acknowledgement); a power cut may lose the last jobs, never corrupt the file.
    this.db.exec(
      'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;',
    );
    this.db.exec(SCHEMA);
    // A store made by an earlier version lacks the columns added since (operation for V1–V4 and the
    // upscale buttons, request_id and reply for resuming after a restart, reservation for budgets): add
    // them in place.
    const columns = this.db.prepare('PRAGMA table_info(jobs)').all() as { name: string }[];
    for (const [name, type] of ADDED_COLUMNS)
      if (!columns.some((column) => column.name === name))
        this.db.exec(`ALTER TABLE jobs ADD COLUMN ${name} ${type}`);
  }

  async createWithinQuota(
    job: JobRecord,
    quota: { since: number; limit: number },
  ): Promise<{ created: true } | { created: false; used: number }> {
    // Synchronous inside one transaction: no other request can count or insert in between.
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const used = this.usedSince(job.userId, quota.since);
      if (used + job.samples > quota.limit) {
        this.db.exec('ROLLBACK');
        return { created: false, used };
      }
      this.db
        .prepare(
          `INSERT INTO jobs (id, user_id, guild_id, channel_id, input, samples, status, created_at, operation,
             request_id, reply, reservation)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          job.id,
          job.userId,
          job.guildId,
          job.channelId,
          JSON.stringify(job.input),
          job.samples,
          job.status,
          job.createdAt,
          job.operation ? JSON.stringify(job.operation) : null,
          job.requestId ?? null,
          job.reply ? JSON.stringify(job.reply) : null,
          job.reservation ? JSON.stringify(job.reservation) : null,
        );
      this.db.exec('COMMIT');
      return { created: true };
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row && fromRow(row);
  }

  async update(id: string, changes: Partial<JobRecord>): Promise<void> {
    const sets: string[] = [];
    const values: (string | number | null)[] = [];
    for (const [key, value] of Object.entries(changes)) {
      const column = COLUMNS[key];
      if (!column) continue;
      sets.push(`${column} = ?`);
      values.push(
        JSON_COLUMNS.has(key) && value !== undefined
          ? JSON.stringify(value)
          : ((value as string | number | undefined) ?? null),
      );
    }
    if (sets.length === 0) return;
    this.db.prepare(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
  }

  async saveImages(images: readonly StoredImage[]): Promise<void> {
    const insert = this.db.prepare(
      'INSERT OR REPLACE INTO images (job_id, idx, seed, mime_type, bytes) VALUES (?, ?, ?, ?, ?)',
    );
    this.db.exec('BEGIN');
    try {
      for (const image of images)
        insert.run(image.jobId, image.index, image.seed, image.mimeType, image.bytes);
      this.db.exec('COMMIT');
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  async image(jobId: string, index: number): Promise<StoredImage | undefined> {
    const row = this.db
      .prepare('SELECT seed, mime_type, bytes FROM images WHERE job_id = ? AND idx = ?')
      .get(jobId, index) as { seed: number; mime_type: string; bytes: Uint8Array } | undefined;
    if (!row) return undefined;
    return { jobId, index, seed: row.seed, mimeType: row.mime_type, bytes: Buffer.from(row.bytes) };
  }

  /** Images a user asked for since `since` in jobs that were not refused or failed. */
  private usedSince(userId: string, since: number): number {
    const row = this.db
      .prepare(
        `SELECT COALESCE(SUM(samples), 0) AS total FROM jobs
         WHERE user_id = ? AND created_at >= ? AND status NOT IN ('refused', 'failed')`,
      )
      .get(userId, since) as { total: number };
    return Number(row.total);
  }

  async unfinished(): Promise<JobRecord[]> {
    const rows = this.db
      .prepare("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at, rowid")
      .all() as unknown as JobRow[];
    return rows.map(fromRow);
  }

  async purgeCreatedBefore(before: number): Promise<number> {
    const result = this.db.prepare('DELETE FROM jobs WHERE created_at < ?').run(before);
    return Number(result.changes);
  }

  async getSetting(key: string): Promise<string | undefined> {
    const row = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as
      { value: string } | undefined;
    return row?.value;
  }

  async setSetting(key: string, value: string | undefined): Promise<void> {
    if (value === undefined) this.db.prepare('DELETE FROM settings WHERE key = ?').run(key);
    else this.db.prepare('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)').run(key, value);
  }

  async claimSetting(key: string, value: string): Promise<boolean> {
    const result = this.db
      .prepare('INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)')
      .run(key, value);
    return Number(result.changes) === 1;
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}
