// A batch's journal in --out: one JSON line per event, appended and flushed to disk before the
// batch goes on, so a batch run again after a crash, kill -9 or reboot knows what it submitted (and
// collects it instead of paying again) and what it saved (and skips it).
import { createHash } from 'node:crypto';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** The journal's file name inside --out. */
export const JOURNAL_FILE = '.sdxl-journal.jsonl';

/** An image as the journal remembers it: what `--json` prints of it. */
export interface JournaledImage {
  path: string;
  seed: number | null;
  index: number;
  bytes: number;
  mimeType: string;
}

/** What the journal knows of one prompt. */
export interface JournalEntry {
  /** An earlier run was sending it: if no request id followed, it may have been accepted (and billed). */
  sending?: boolean;
  /** The async request id, once the submit was accepted. */
  requestId?: string;
  /** The images, once saved. */
  saved?: JournaledImage[];
  remainingCredits?: number | null;
}

type Event =
  | { event: 'sending'; key: string }
  | { event: 'submitted'; key: string; requestId: string }
  | { event: 'saved'; key: string; images: JournaledImage[]; remainingCredits: number | null };

/**
 * The key of a prompt: a digest of what it asks for (the prompt and its options as given, before
 * defaults or a drawn seed) and which copy of the same request in the batch it is.
 */
export function promptKey(request: Record<string, unknown>, copy: number): string {
  const canonical = JSON.stringify(request, Object.keys(request).sort());
  return `${createHash('sha256').update(canonical).digest('hex').slice(0, 32)}#${copy}`;
}

export class Journal {
  private readonly entries = new Map<string, JournalEntry>();
  private readonly file: string;
  private handle: FileHandle | undefined;
  private writing: Promise<void> = Promise.resolve();

  private constructor(file: string) {
    this.file = file;
  }

  /** Reads the journal in `outDir` (a missing one is empty; a line cut off by a crash is skipped). */
  static async open(outDir: string): Promise<Journal> {
    const journal = new Journal(path.join(outDir, JOURNAL_FILE));
    let text = '';
    try {
      text = await readFile(journal.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let event: Event;
      try {
        event = JSON.parse(line) as Event;
      } catch {
        continue;
      }
      const entry = journal.entries.get(event.key) ?? {};
      if (event.event === 'sending') entry.sending = true;
      else if (event.event === 'submitted') entry.requestId = event.requestId;
      else if (event.event === 'saved') {
        entry.saved = event.images;
        entry.remainingCredits = event.remainingCredits;
      }
      journal.entries.set(event.key, entry);
    }
    journal.handle = await open(journal.file, 'a');
    // A line cut off by a crash is ended, so the next event starts a line of its own.
    if (text && !text.endsWith('\n')) await journal.handle.write('\n');
    return journal;
  }

  /** What an earlier run recorded of a prompt. */
  entry(key: string): JournalEntry | undefined {
    return this.entries.get(key);
  }

  /** How many prompts an earlier run recorded. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Records that a prompt's request is going out. Not awaited by the caller (the request must not wait
   * for the disk), so it lands before the answer in all but the narrowest crash.
   */
  sending(key: string): Promise<void> {
    return this.append({ event: 'sending', key });
  }

  /** Records an accepted submit; resolves once it is on disk, so the id survives a crash from then on. */
  submitted(key: string, requestId: string): Promise<void> {
    return this.append({ event: 'submitted', key, requestId });
  }

  /** Records the saved images; from then on a run again skips the prompt. */
  saved(key: string, images: JournaledImage[], remainingCredits: number | null): Promise<void> {
    return this.append({ event: 'saved', key, images, remainingCredits });
  }

  async close(): Promise<void> {
    await this.writing.catch(() => {});
    await this.handle?.close();
    this.handle = undefined;
  }

  private append(event: Event): Promise<void> {
    const line = `${JSON.stringify(event)}\n`;
    // One write at a time, each flushed before the next, so lines never interleave or reorder.
    const write = this.writing.then(async () => {
      if (!this.handle) throw new Error('the journal is closed');
      await this.handle.write(line);
      await this.handle.datasync();
    });
    this.writing = write.catch(() => {});
    return write;
  }
}
