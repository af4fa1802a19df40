// A batch's journal in --out: one JSON line per event, appended and flushed to disk before the
// batch goes on, so a batch run again after a crash, kill -9 or reboot knows what it submitted (and
// collects it instead of paying again), what it saved (and skips it) and what it paid for and lost.
//
// The format, one object a line (a line cut off by a crash, an unknown event or a line of an older
// sdxl without `request` is skipped):
//
//   {"event":"run","pid":1234,"host":"web1","startedAt":"2026-12-06T07:00:00.000Z"}
//       a run took --out's lock (out-lock.ts); names the holder to a run that finds it taken
//   {"event":"sending","key":K,"request":R}
//       an attempt of the prompt's call is going out: until an answer says otherwise it may be billed
//   {"event":"refused","key":K,"code":"rate_limited"}
//       the API answered that attempt and accepted nothing (429, 406, 5xx, ...): the "sending" is void
//   {"event":"submitted","key":K,"request":R,"requestId":ID}
//       the async submit was accepted: the job is billed, and collected by ID
//   {"event":"saved","key":K,"request":R,"requestId":ID|null,"cost":C,"remainingCredits":N|null,"images":[I...]}
//       the images are on disk (I as `--json` prints an image); `cost` is the credits the call was
//       billed as the API reported them, absent when it did not say
//   {"event":"expired","key":K,"request":R,"requestId":ID}
//       the API no longer knows ID (Segmind keeps results an hour): paid for, and its images lost
//
// K is `<fingerprint>#<copy>`: the fingerprint digests R, the whole request with every default filled
// (the prompt included, the seed as asked: -1 for a random one), and `copy` counts the same request
// met earlier in the batch, so a file that asks twice for one request gets two.
import { createHash } from 'node:crypto';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** The journal's file name inside --out. */
export const JOURNAL_FILE = '.sdxl-journal.jsonl';

/** A prompt's whole request as the journal keeps it: camelCase, every default filled. */
export type JournaledRequest = Readonly<Record<string, unknown>>;

/** An image as the journal remembers it: what `--json` prints of it. */
export interface JournaledImage {
  path: string;
  seed: number | null;
  index: number;
  bytes: number;
  mimeType: string;
}

/** A call whose images were saved. */
export interface SavedCall {
  /** The async request id, or the synchronous answer's `x-request-id`; null when the API gave none. */
  requestId: string | null;
  /** Credits the call was billed, as the API reported them; absent when it did not say. */
  cost?: number;
  remainingCredits: number | null;
  images: JournaledImage[];
}

/** What the journal knows of one prompt. */
export interface JournalEntry {
  request: JournaledRequest;
  /** An attempt went out and no answer was read: if the API accepted it, it was billed. */
  sending: boolean;
  /** The async job accepted and not yet saved nor expired: billed, to be collected. */
  requestId?: string;
  /** The saved call, once its images are on disk. */
  saved?: SavedCall;
  /** Request ids that expired before their images were collected: paid for and lost. */
  expired: string[];
}

/** The run that holds (or last held) --out, as its `run` event says. */
export interface RunHolder {
  pid: number;
  host: string;
  startedAt: string;
}

type Event =
  | ({ event: 'run' } & RunHolder)
  | { event: 'sending'; key: string; request: JournaledRequest }
  | { event: 'refused'; key: string; code: string }
  | { event: 'submitted'; key: string; request: JournaledRequest; requestId: string }
  | ({ event: 'saved'; key: string; request: JournaledRequest } & SavedCall)
  | { event: 'expired'; key: string; request: JournaledRequest; requestId: string };

/** The digest of a whole request: the same request gives the same fingerprint in every run. */
export function fingerprint(request: JournaledRequest): string {
  const canonical = JSON.stringify(request, Object.keys(request).sort());
  return createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}

/** The journal key of a request: its fingerprint and which copy of it in the batch this is, from 0. */
export function promptKey(request: JournaledRequest, copy: number): string {
  return `${fingerprint(request)}#${copy}`;
}

export class Journal {
  private readonly entries = new Map<string, JournalEntry>();
  private readonly file: string;
  private handle: FileHandle | undefined;
  private writing: Promise<void> = Promise.resolve();
  private holder: RunHolder | undefined;

  private constructor(file: string) {
    this.file = file;
  }

  /** Where the journal of `outDir` lives. */
  static fileIn(outDir: string): string {
    return path.join(outDir, JOURNAL_FILE);
  }

  /** The run that last took `outDir`'s lock, as its journal says (undefined when none did). */
  static async lastRun(outDir: string): Promise<RunHolder | undefined> {
    const journal = new Journal(Journal.fileIn(outDir));
    journal.read(await readIfAny(journal.file));
    return journal.holder;
  }

  /** Reads the journal in `outDir` without opening it to write, nor taking the lock (a dry run's view). */
  static async read(outDir: string): Promise<Journal> {
    const journal = new Journal(Journal.fileIn(outDir));
    journal.read(await readIfAny(journal.file));
    return journal;
  }

  /** Reads the journal in `outDir` (a missing one is empty) and opens it to append. */
  static async open(outDir: string): Promise<Journal> {
    const journal = new Journal(Journal.fileIn(outDir));
    const text = await readIfAny(journal.file);
    journal.read(text);
    journal.handle = await open(journal.file, 'a');
    // A line cut off by a crash is ended, so the next event starts a line of its own.
    if (text && !text.endsWith('\n')) await journal.handle.write('\n');
    return journal;
  }

  private read(text: string): void {
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let event: Event;
      try {
        event = JSON.parse(line) as Event;
      } catch {
        continue;
      }
      if (event.event === 'run') {
        this.holder = { pid: event.pid, host: event.host, startedAt: event.startedAt };
        continue;
      }
      if (event.event === 'refused') {
        const entry = this.entries.get(event.key);
        if (entry) entry.sending = false;
        continue;
      }
      // A line of an older sdxl keyed a prompt without its whole request: it cannot be matched.
      if (typeof event.request !== 'object' || event.request === null) continue;
      const entry = this.entries.get(event.key) ?? { request: event.request, sending: false, expired: [] };
      entry.request = event.request;
      switch (event.event) {
        case 'sending':
          entry.sending = true;
          break;
        case 'submitted':
          entry.sending = false;
          entry.requestId = event.requestId;
          break;
        case 'saved':
          entry.sending = false;
          delete entry.requestId;
          entry.saved = {
            requestId: event.requestId ?? null,
            ...(typeof event.cost === 'number' && { cost: event.cost }),
            remainingCredits: event.remainingCredits ?? null,
            images: event.images,
          };
          break;
        case 'expired':
          if (!entry.expired.includes(event.requestId)) entry.expired.push(event.requestId);
          if (entry.requestId === event.requestId) delete entry.requestId;
          break;
        default:
          continue;
      }
      this.entries.set(event.key, entry);
    }
  }

  /** What earlier runs recorded of a prompt. */
  entry(key: string): JournalEntry | undefined {
    return this.entries.get(key);
  }

  /** Every prompt earlier runs recorded, by key. */
  recorded(): IterableIterator<[string, JournalEntry]> {
    return this.entries.entries();
  }

  /** How many prompts earlier runs recorded. */
  get size(): number {
    return this.entries.size;
  }

  /** Records the run that now holds --out, so a run refused meanwhile can name it. */
  ran(holder: RunHolder): Promise<void> {
    return this.append({ event: 'run', ...holder });
  }

  /**
   * Records that an attempt of a prompt's call is going out. Not awaited by the caller (the request
   * must not wait for the disk), so it lands before the answer in all but the narrowest crash.
   */
  sending(key: string, request: JournaledRequest): Promise<void> {
    return this.append({ event: 'sending', key, request });
  }

  /** Records that the API answered an attempt and accepted nothing, so it was not billed. */
  refused(key: string, code: string): Promise<void> {
    return this.append({ event: 'refused', key, code });
  }

  /** Records an accepted submit; resolves once it is on disk, so the id survives a crash from then on. */
  submitted(key: string, request: JournaledRequest, requestId: string): Promise<void> {
    return this.append({ event: 'submitted', key, request, requestId });
  }

  /** Records the saved images; from then on a run again skips the prompt. */
  saved(key: string, request: JournaledRequest, call: SavedCall): Promise<void> {
    const { requestId, cost, remainingCredits, images } = call;
    return this.append({
      event: 'saved',
      key,
      request,
      requestId,
      ...(cost !== undefined && { cost }),
      remainingCredits,
      images,
    });
  }

  /** Records that a submitted request expired before its images were collected. */
  expired(key: string, request: JournaledRequest, requestId: string): Promise<void> {
    return this.append({ event: 'expired', key, request, requestId });
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

async function readIfAny(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return '';
  }
}
