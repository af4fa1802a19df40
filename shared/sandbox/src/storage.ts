import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where a stored file is served: `/assets/<name>` (uploads) or `/files/<name>` (v2 outputs). */
export type StoredKind = 'assets' | 'files';

interface Entry {
  kind: StoredKind;
  contentType: string;
  size: number;
  storedAt: number;
}

export interface StoredFile {
  name: string;
  contentType: string;
  size: number;
}

/**
 * Files the sandbox serves, kept on disk in a temp folder (removed on close) with only a small index
 * in memory, so uploads and outputs do not grow the heap. Each file lives `ttlMs` from when it was
 * stored; after that it reads as missing and a sweep deletes it.
 */
export class FileStore {
  readonly #dir = mkdtempSync(join(tmpdir(), 'sdxl-sandbox-'));
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  async put(kind: StoredKind, bytes: Buffer, contentType: string, now: number): Promise<StoredFile> {
    const name = `${randomUUID()}.${extensionOf(contentType)}`;
    await writeFile(join(this.#dir, name), bytes);
    // A close during the write removed the folder already; the file went with it or will not matter.
    this.#entries.set(name, { kind, contentType, size: bytes.length, storedAt: now });
    return { name, contentType, size: bytes.length };
  }

  /** The file's bytes and type, or undefined when unknown, of another kind, or older than `ttlMs`. */
  async read(
    kind: StoredKind,
    name: string,
    now: number,
    ttlMs: number,
  ): Promise<{ bytes: Buffer; contentType: string } | undefined> {
    const entry = this.#entries.get(name);
    if (!entry || entry.kind !== kind) return undefined;
    if (now - entry.storedAt >= ttlMs) {
      this.#forget(name);
      return undefined;
    }
    try {
      return { bytes: await readFile(join(this.#dir, name)), contentType: entry.contentType };
    } catch {
      return undefined;
    }
  }

  /** Forgets and deletes every file older than `ttlMs`. */
  sweep(now: number, ttlMs: number): void {
    for (const [name, entry] of this.#entries) {
      if (now - entry.storedAt >= ttlMs) this.#forget(name);
    }
  }

  /** How many files are held (for tests of the sweep). */
  get size(): number {
    return this.#entries.size;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#entries.clear();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #forget(name: string): void {
    this.#entries.delete(name);
    if (!this.#closed) rm(join(this.#dir, name), { force: true }).catch(() => {});
  }
}

export function extensionOf(contentType: string): string {
  switch (contentType) {
    case 'image/png':
      return 'png';
    case 'image/webp':
      return 'webp';
    default:
      return 'jpeg';
  }
}
