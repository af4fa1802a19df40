// The contact sheet: `index.html` in --out, one card per prompt of a batch (its images as thumbnails
// linking to the files, prompt, seed, model, cost, time, request id; a failed or skipped prompt with
// its reason), totals at the top. Each ended prompt is appended to a records file beside it, and the
// page is written from that file line by line into a temporary file that then replaces the page, so a
// page is always whole and memory does not grow with the batch. Self-contained: no script, no network.
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { finished } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { errorJson } from './exit.ts';
import { shortCredits } from './io.ts';

/** The page's name inside --out. */
export const CONTACT_SHEET_FILE = 'index.html';
/** What the page is made from: one JSON line per ended prompt, this run's only. */
export const SHEET_RECORDS_FILE = '.sdxl-sheet.jsonl';

/** How a prompt ended, as the sheet shows it. */
export type SheetStatus = 'saved' | 'earlier' | 'failed' | 'skipped';

/** One ended prompt, as the records file keeps it. */
export interface SheetRecord {
  /** The prompt's place in the batch, from 0. */
  index: number;
  prompt: string;
  status: SheetStatus;
  /** Each image: its `src` relative to the page (or a file URL when it was kept elsewhere) and seed. */
  images: { src: string; seed: number | null }[];
  model?: string;
  /** Credits, where the API reported what the call cost. */
  cost?: number;
  requestId?: string;
  /** Seconds the API says the image took, where it says. */
  generationTime?: number;
  /** When the prompt ended, ms since the epoch. */
  at: number;
  /** Why it failed or was skipped. */
  reason?: string;
  /** Settings this prompt has of its own (a grid cell's), shown on its card. */
  settings?: Record<string, string | number | boolean>;
}

/** What the sheet needs of a prompt that ended: `imagine`'s outcome has this shape. */
export interface EndedPrompt {
  index: number;
  prompt: string;
  result?: { seed?: number; cost?: number; requestId?: string; generationTime?: number; model?: string };
  saved?: { path: string; image: { seed?: number } }[];
  journaled?: { path: string; seed: number | null }[];
  error?: unknown;
}

export interface ContactSheetOptions {
  /** The page's heading, e.g. `sdxl imagine --prompts night.txt`. */
  title: string;
  /** Prompts in the batch. */
  total: number;
  /** The model the batch uses, for prompts whose result does not say. */
  model: string;
  /** Shortest time between two rewrites while the batch runs, in ms. @default 1000 */
  minIntervalMs?: number;
  /** An image shown above the cards once the batch is done (a grid's labelled picture), relative to --out. */
  heroImage?: string;
  /** Settings of a prompt by its place (a grid cell's axis values), shown on its card. */
  settingsOf?: (index: number) => Record<string, string | number | boolean> | undefined;
}

interface Totals {
  ended: number;
  saved: number;
  earlier: number;
  failed: number;
  skipped: number;
  images: number;
  /** The sum of the costs the API reported, and how many prompts reported one. */
  cost: number;
  costed: number;
}

/**
 * A batch's contact sheet. `add` each prompt as it ends, `close` at the end: the page is rewritten
 * as the batch goes (at most once per `minIntervalMs`, and never more than a fifth of the time), always
 * by replacing it whole.
 */
export class ContactSheet {
  private readonly page: string;
  private readonly records: string;
  private readonly startedAt = Date.now();
  private readonly totals: Totals = {
    ended: 0,
    saved: 0,
    earlier: 0,
    failed: 0,
    skipped: 0,
    images: 0,
    cost: 0,
    costed: 0,
  };
  private handle: FileHandle | undefined;
  private appending: Promise<void> = Promise.resolve();
  private rendering: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastRender = { at: 0, took: 0 };
  private dirty = false;
  /** Bytes of whole lines in the records file: a page reads no further, so never half a line. */
  private written = 0;
  private done = false;

  private readonly outDir: string;
  private readonly options: ContactSheetOptions;

  private constructor(outDir: string, options: ContactSheetOptions) {
    this.outDir = outDir;
    this.options = options;
    this.page = path.join(outDir, CONTACT_SHEET_FILE);
    this.records = path.join(outDir, SHEET_RECORDS_FILE);
  }

  /** Starts this run's records (an earlier run's are replaced) and writes the page with nothing ended. */
  static async start(outDir: string, options: ContactSheetOptions): Promise<ContactSheet> {
    const sheet = new ContactSheet(outDir, options);
    sheet.handle = await open(sheet.records, 'w');
    await sheet.render();
    return sheet;
  }

  /** Records a prompt that ended and has the page rewritten soon. */
  add(ended: EndedPrompt): Promise<void> {
    const record = this.recordOf(ended);
    const line = `${JSON.stringify(record)}\n`;
    const append = this.appending.then(async () => {
      if (!this.handle) throw new Error('the contact sheet is closed');
      await this.handle.write(line);
      // Counted once on disk, so a page's totals always match the cards it shows.
      this.count(record);
      this.written += Buffer.byteLength(line);
    });
    this.appending = append.catch(() => {});
    return append.then(() => this.schedule());
  }

  /** Writes the final page (no more refreshing) and closes the records. */
  async close(): Promise<void> {
    this.done = true;
    clearTimeout(this.timer);
    await this.appending;
    await this.rendering;
    await this.render();
    await this.handle?.close();
    this.handle = undefined;
  }

  private recordOf(ended: EndedPrompt): SheetRecord {
    const { result, error } = ended;
    const code = error === undefined ? undefined : errorJson(error).code;
    const status: SheetStatus =
      error !== undefined
        ? code === 'skipped'
          ? 'skipped'
          : 'failed'
        : ended.journaled
          ? 'earlier'
          : 'saved';
    const images = ended.journaled
      ? ended.journaled.map(({ path: file, seed }) => ({ src: this.srcOf(file), seed }))
      : (ended.saved ?? []).map(({ path: file, image }) => ({
          src: this.srcOf(file),
          seed: image.seed ?? result?.seed ?? null,
        }));
    const settings = this.options.settingsOf?.(ended.index);
    return {
      index: ended.index,
      prompt: ended.prompt,
      status,
      images,
      model: result?.model ?? this.options.model,
      ...(result?.cost !== undefined && { cost: result.cost }),
      ...(result?.requestId !== undefined && { requestId: result.requestId }),
      ...(result?.generationTime !== undefined && { generationTime: result.generationTime }),
      at: Date.now(),
      ...(error !== undefined && { reason: errorJson(error).message }),
      ...(settings && { settings }),
    };
  }

  private count(record: SheetRecord): void {
    const totals = this.totals;
    totals.ended++;
    totals[record.status]++;
    totals.images += record.images.length;
    if (record.cost !== undefined) {
      totals.cost += record.cost;
      totals.costed++;
    }
  }

  /** A file's address from the page: relative inside --out, a file URL elsewhere (the temp folder). */
  private srcOf(file: string): string {
    const relative = path.relative(this.outDir, file);
    if (relative.startsWith('..') || path.isAbsolute(relative)) return pathToFileURL(path.resolve(file)).href;
    return relative.split(path.sep).map(encodeURIComponent).join('/');
  }

  private schedule(): void {
    this.dirty = true;
    if (this.timer || this.rendering || this.done) return;
    const { at, took } = this.lastRender;
    const wait = Math.max(0, at + Math.max(this.options.minIntervalMs ?? 1000, took * 4) - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.rendering = this.render()
        .catch(() => {})
        .finally(() => {
          this.rendering = undefined;
          if (this.dirty && !this.done) this.schedule();
        });
    }, wait);
    this.timer.unref();
  }

  /** Writes the page into a temporary file, then puts it in the page's place in one rename. */
  private async render(): Promise<void> {
    const started = Date.now();
    this.dirty = false;
    const upTo = this.written;
    const head = this.head();
    const showCost = this.totals.costed > 0;
    const temporary = `${this.page}.${process.pid}.tmp`;
    const out = createWriteStream(temporary);
    try {
      const write = (text: string) =>
        out.write(text) ? undefined : new Promise<void>((resolve) => out.once('drain', () => resolve()));
      await write(head);
      if (upTo > 0) {
        const input = createReadStream(this.records, { start: 0, end: upTo - 1 });
        for await (const line of createInterface({ input, crlfDelay: Infinity })) {
          if (line) await write(card(JSON.parse(line) as SheetRecord, showCost));
        }
      }
      await write(PAGE_END);
      out.end();
      await finished(out);
      await rename(temporary, this.page);
    } catch (error) {
      out.destroy();
      await rm(temporary, { force: true });
      throw error;
    }
    this.lastRender = { at: Date.now(), took: Date.now() - started };
  }

  private head(): string {
    const { title, total, heroImage } = this.options;
    const t = this.totals;
    const running = !this.done;
    const pending = total - t.ended;
    const seconds = Math.round((Date.now() - this.startedAt) / 1000);
    const figures = [
      figure('prompts', `${t.ended} of ${total}`),
      figure('saved', String(t.saved)),
      ...(t.earlier ? [figure('saved earlier', String(t.earlier))] : []),
      figure('failed', String(t.failed), t.failed > 0 ? 'bad' : ''),
      ...(t.skipped ? [figure('skipped', String(t.skipped), 'bad')] : []),
      ...(pending > 0 ? [figure('to go', String(pending))] : []),
      figure('images', String(t.images)),
      ...(t.costed > 0
        ? [figure(t.costed < t.saved ? `cost (${t.costed} reported)` : 'cost', shortCredits(t.cost))]
        : []),
      figure('time', formatDuration(seconds)),
    ];
    return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${running ? '<meta http-equiv="refresh" content="5">\n' : ''}<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body data-state="${running ? 'running' : 'done'}">
<header>
<h1>${escapeHtml(title)}</h1>
<p class="state">${running ? `Running: this page updates itself. Last written ${clock(Date.now())}.` : `Finished ${clock(Date.now())}.`}</p>
<dl class="totals">${figures.join('')}</dl>
</header>
${heroImage && !running ? `<a class="hero" href="${escapeHtml(heroImage)}"><img src="${escapeHtml(heroImage)}" alt="the grid"></a>\n` : ''}<main>
`;
  }
}

const PAGE_END = '</main>\n<footer>Made by sdxl.</footer>\n</body>\n</html>\n';

function card(record: SheetRecord, showCost: boolean): string {
  const ok = record.status === 'saved' || record.status === 'earlier';
  const seeds = [...new Set(record.images.map((image) => image.seed).filter((seed) => seed !== null))];
  const facts: [string, string, string?][] = [];
  if (seeds.length > 0) facts.push(['Seed', seeds.join(', '), 'seed']);
  for (const [name, value] of Object.entries(record.settings ?? {})) facts.push([name, String(value)]);
  if (record.model) facts.push(['Model', record.model]);
  if (showCost && record.cost !== undefined) facts.push(['Cost', shortCredits(record.cost), 'cost']);
  const took = record.generationTime !== undefined ? ` (${record.generationTime} s)` : '';
  facts.push(['Time', `${clock(record.at)}${took}`]);
  if (record.requestId) facts.push(['Request id', record.requestId, 'request-id']);
  if (record.status === 'earlier') facts.push(['Saved', 'in an earlier run']);
  const thumbnails = record.images
    .map(
      (image) =>
        `<a href="${escapeHtml(image.src)}"><img src="${escapeHtml(image.src)}" loading="lazy" decoding="async" alt="${escapeHtml(record.prompt)}"></a>`,
    )
    .join('');
  return `<article class="card ${ok ? 'ok' : record.status}" id="prompt-${record.index + 1}">
${thumbnails ? `<div class="thumbs n${record.images.length}">${thumbnails}</div>\n` : ''}<p class="prompt"><span class="number">#${record.index + 1}</span> ${escapeHtml(record.prompt)}</p>
${record.reason ? `<p class="reason">${record.status === 'skipped' ? 'Skipped' : 'Failed'}: ${escapeHtml(record.reason)}</p>\n` : ''}<dl>${facts.map(([name, value, role]) => `<dt>${escapeHtml(name)}</dt><dd${role ? ` class="${role}"` : ''}>${escapeHtml(value)}</dd>`).join('')}</dl>
</article>
`;
}

function figure(name: string, value: string, role = ''): string {
  return `<div${role ? ` class="${role}"` : ''}><dt>${escapeHtml(name)}</dt><dd>${escapeHtml(value)}</dd></div>`;
}

/** Text safe inside HTML or XML (an SVG's text), in an element or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60
    ? `${minutes} min ${seconds % 60} s`
    : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A time of day in the machine's zone, as a person running the batch reads their clock. */
function clock(at: number): string {
  return new Date(at).toLocaleTimeString('en-GB', { hour12: false });
}

// Cards off screen are neither laid out nor painted (content-visibility), and thumbnails load as they
// come near (loading="lazy"), so a page of 10,000 images opens at once.
const STYLE = `
:root { color-scheme: light dark; --card: #fff; --ink: #1d1d1f; --muted: #6e6e73; --bad: #b3261e; --line: #d2d2d7; }
@media (prefers-color-scheme: dark) { :root { --card: #1c1c1e; --ink: #f5f5f7; --muted: #a1a1a6; --bad: #ff6b60; --line: #3a3a3c; } }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--ink); background: Canvas; }
header { padding: 16px 20px; border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0 0 4px; }
.state { margin: 0 0 8px; color: var(--muted); }
.totals { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 0; }
.totals div { display: flex; flex-direction: column-reverse; }
.totals dt { color: var(--muted); font-size: 12px; }
.totals dd { margin: 0; font-size: 20px; font-weight: 600; }
.totals .bad dd { color: var(--bad); }
.hero { display: block; padding: 16px 20px 0; }
.hero img { max-width: 100%; height: auto; border-radius: 6px; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 16px; padding: 20px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden;
  content-visibility: auto; contain-intrinsic-size: auto 360px; }
.thumbs { display: grid; grid-template-columns: repeat(2, 1fr); gap: 2px; }
.thumbs.n1 { grid-template-columns: 1fr; }
.thumbs img { display: block; width: 100%; aspect-ratio: 1; object-fit: cover; background: var(--line); }
.prompt { margin: 8px 10px 4px; overflow-wrap: anywhere; }
.number { color: var(--muted); }
.reason { margin: 4px 10px; color: var(--bad); overflow-wrap: anywhere; }
.card.failed, .card.skipped { border-color: var(--bad); }
.card dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 8px; margin: 4px 10px 10px; font-size: 12px; }
.card dt { color: var(--muted); }
.card dd { margin: 0; overflow-wrap: anywhere; }
footer { padding: 12px 20px; color: var(--muted); font-size: 12px; }
`;
