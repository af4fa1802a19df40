// `sdxl grid "<prompt>" --x steps=20,30,40 --y guidance-scale=5,7.5,10`: every combination of the
// axes' values with one seed, run as a batch (the same checks, --dry-run and --max-cost, pacing,
// journal, --json and contact sheet as `sdxl imagine --prompts`), then one labelled picture of the
// cells (grid-picture.ts).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidRequestError, parseRequest, randomSeed } from '@sdxl-kit/client';
import { EXIT, UsageError } from './exit.ts';
import { slugify } from './files.ts';
import { drawGrid } from './grid-picture.ts';
import type { Interrupt } from './interrupt.ts';
import type { Io } from './io.ts';
import { Journal } from './journal.ts';
import { MONEY_HELP } from './money.ts';
import { IMAGINE_FLAGS, IMAGINE_NUMERIC_FLAGS, parseFlags, requestFromFlags } from './options.ts';
import type { PromptLine } from './prompts-file.ts';
import { runPrompts } from './run-prompts.ts';

export const GRID_HELP = `Usage: sdxl grid "<prompt>" --x SETTING=V1,V2,... [--y SETTING=V1,V2,...] [options]

Makes one image for every combination of the axes' values, all with one seed, then writes a
labelled grid picture of them (grid-<prompt>-<seed>.png in --out) and the contact sheet (index.html,
a card per cell with its settings, the grid on top). It says how many images it will make before it
starts; each is billed. Every cell is checked before the first call.

Axes: any request flag of sdxl imagine without its dashes: steps, guidance-scale, scheduler, style,
negative-prompt, strength, high-noise-fraction, seed, width, height, or refiner (on, off). Values are
separated by commas, or by | when a value holds a comma: --x "negative-prompt=blur|text, watermark".
One axis is enough; --y adds rows.

Seed: --seed N for every cell; --seed -1 for a new one; without --seed, the seed of this prompt's
earlier grid in --out (its journal), so the same command run again collects and skips instead of
paying again, else a new one.

Files: each cell's image is named after the prompt, its settings, seed and index:
  a-lighthouse-at-dusk-steps=30-guidance-scale=7.5-7-0.jpg

Every other flag is sdxl imagine's (see sdxl imagine --help) and applies to every cell: the request
flags, --out, --json (a line per cell, then the summary with "grid": PATH and "seed": N),
--rpm, --concurrency, --async/--sync, --timeout, --no-journal, --no-metadata, --no-contact-sheet,
--resubmit-expired, --sandbox, --base-url. A grid is a batch: its journal in --out collects after a
crash what was submitted and skips what was saved, and one run at a time holds --out.

${MONEY_HELP}`;

const GRID_FLAGS = {
  ...IMAGINE_FLAGS,
  x: { type: 'string' },
  y: { type: 'string' },
} as const;

/** Request flags an axis may vary: every imagine request flag but -n (a grid is one image a cell). */
const AXIS_FLAGS: readonly string[] = [
  'negative-prompt',
  'style',
  'scheduler',
  'steps',
  'guidance-scale',
  'strength',
  'high-noise-fraction',
  'seed',
  'width',
  'height',
  'refiner',
];

/** One axis: the flag it varies and each value's label and request options. */
interface Axis {
  flag: string;
  values: { label: string; options: Record<string, unknown> }[];
}

export async function grid(argv: string[], io: Io, interrupt: Interrupt): Promise<number> {
  const { values, positionals } = parseFlags(argv, GRID_FLAGS, IMAGINE_NUMERIC_FLAGS);
  if (values.help) {
    io.stdout.write(`${GRID_HELP}\n`);
    return EXIT.ok;
  }
  const prompt = positionals.join(' ').trim();
  if (!prompt)
    throw new UsageError('No prompt. Usage: sdxl grid "<prompt>" --x steps=20,30,40 (see sdxl grid --help).');
  if (values.prompts !== undefined) throw new UsageError('sdxl grid takes one prompt, not --prompts.');
  if (values.x === undefined)
    throw new UsageError('--x is required: the setting that changes across, e.g. --x steps=20,30,40.');
  const x = parseAxis('--x', values.x);
  const y = values.y === undefined ? undefined : parseAxis('--y', values.y);
  if (y && y.flag === x.flag)
    throw new UsageError(`--x and --y both vary ${x.flag}: give each axis its own setting.`);
  for (const axis of [x, y]) {
    if (!axis) continue;
    const flag = axis.flag === 'refiner' ? 'no-refiner' : axis.flag;
    if (values[flag as keyof typeof values] !== undefined) {
      throw new UsageError(
        `--${flag} and the axis ${axis.flag}=... both set ${axis.flag}: give it on the axis only.`,
      );
    }
  }
  const samples = values.samples;
  if (samples !== undefined && samples !== '1') {
    throw new UsageError(`--samples: ${samples} is not allowed; allowed: 1 (a grid makes one image a cell).`);
  }

  const base = requestFromFlags(values);
  const outDir = values.out ?? 'out';
  // One seed for every cell, so the cells differ only by the axes.
  // --seed -1 asks for a new one, as it does for imagine; no --seed, for the same one as last time.
  const given = base.seed === -1 ? randomSeed(Math.random) : base.seed;
  const earlier = given === undefined ? await earlierSeed(outDir, prompt) : undefined;
  const seed = given ?? earlier ?? randomSeed(Math.random);
  const rows = y?.values ?? [{ label: '', options: {} }];
  const cells: PromptLine[] = [];
  const settings: Record<string, string>[] = [];
  for (const row of rows) {
    for (const column of x.values) {
      const cell = { [x.flag]: column.label, ...(y && { [y.flag]: row.label }) };
      cells.push({
        prompt,
        line: cells.length + 1,
        options: { seed, ...column.options, ...row.options },
        label: fileLabel(cell),
      });
      settings.push(cell);
    }
  }
  checkCells(cells, base, [{ name: '--x', axis: x }, ...(y ? [{ name: '--y', axis: y }] : [])], settings);
  const shape = y ? `${x.values.length} x ${rows.length}` : `${x.values.length}`;
  const seedWords =
    earlier !== undefined ? `seed ${seed} (this prompt's earlier grid in ${outDir})` : `seed ${seed}`;
  io.stderr.write(
    `Grid: ${shape} = ${cells.length} ${cells.length === 1 ? 'image' : 'images'} (${x.flag} across${y ? `, ${y.flag} down` : ''}), ${seedWords}; each is billed.\n`,
  );

  const files: (string | undefined)[] = new Array(cells.length);
  const gridFile = path.join(outDir, `grid-${slugify(prompt)}-${seed}.png`);
  let drawFailed = false;
  const code = await runPrompts(values, base, io, interrupt, {
    prompts: cells,
    batch: true,
    whereIs: ({ line }) => `the grid cell ${describeCell(settings[line - 1]!)}`,
    sheet: {
      title: `sdxl grid "${prompt}" (seed ${seed})`,
      heroImage: path.basename(gridFile),
      settingsOf: (index) => settings[index],
    },
    onEnded: (ended) => {
      files[ended.index] = ended.saved?.[0]?.path ?? ended.journaled?.[0]?.path;
    },
    beforeSummary: async () => {
      if (!files.some(Boolean)) return { grid: null, seed };
      try {
        const picture = await drawGrid({
          prompt,
          seed,
          x: { flag: x.flag, labels: x.values.map(({ label }) => label) },
          y: y && { flag: y.flag, labels: y.values.map(({ label }) => label) },
          files,
        });
        await writeFile(gridFile, picture);
      } catch (error) {
        // The cells are saved and paid for: a picture that cannot be made loses none of them.
        drawFailed = true;
        io.stderr.write(
          `Error: the grid picture could not be written to ${gridFile} (${(error as Error).message}); the cells' images are saved.\n`,
        );
        return { grid: null, seed };
      }
      if (!values.json) io.stdout.write(`Grid: ${gridFile}\n`);
      return { grid: gridFile, seed };
    },
  });
  return drawFailed && code === EXIT.ok ? EXIT.failure : code;
}

/**
 * The seed of this prompt's latest request in `outDir`'s journal (an earlier grid of it), so a grid
 * run again without --seed is the same requests: collected and skipped, not billed again.
 */
async function earlierSeed(outDir: string, prompt: string): Promise<number | undefined> {
  // An --out that cannot be read is named by the run's own check of it, with what it can do.
  const journal = await Journal.read(outDir).catch(() => undefined);
  if (!journal) return undefined;
  let seed: number | undefined;
  for (const [, entry] of journal.recorded()) {
    const { request } = entry;
    if (request.prompt === prompt && typeof request.seed === 'number' && request.seed >= 0)
      seed = request.seed;
  }
  return seed;
}

/** `steps=20,30,40` (or `negative-prompt=a, b|c`) as an axis, each value checked as its flag checks it. */
function parseAxis(name: string, text: string): Axis {
  const at = text.indexOf('=');
  const flag = at > 0 ? text.slice(0, at).trim().replace(/^--/, '') : '';
  if (!AXIS_FLAGS.includes(flag)) {
    throw new UsageError(
      `${name}: "${text}" is not allowed; allowed: SETTING=V1,V2,... with SETTING one of ${AXIS_FLAGS.join(', ')}.`,
    );
  }
  const list = text.slice(at + 1);
  const labels = list
    .split(list.includes('|') ? '|' : ',')
    .map((value) => value.trim())
    .filter((value) => value !== '');
  if (labels.length === 0)
    throw new UsageError(`${name}: ${flag} has no values; allowed: ${flag}=V1,V2,... (one value or more).`);
  return {
    flag,
    values: labels.map((label) => ({ label, options: axisOptions(name, flag, label) })),
  };
}

/** A value of an axis as request options, refused before anything is sent as its flag would be. */
function axisOptions(name: string, flag: string, label: string): Record<string, unknown> {
  const refused = (allowed: string, field: string) => {
    const message = `${name}: ${flag}=${label} is not allowed; allowed: ${allowed}.`;
    return new UsageError(message, [{ flag: name, field, value: label, allowed, message }]);
  };
  if (flag === 'refiner') {
    const on = ['on', 'true', 'yes'].includes(label.toLowerCase());
    if (!on && !['off', 'false', 'no'].includes(label.toLowerCase())) throw refused('on or off', 'refiner');
    return { refiner: on };
  }
  try {
    return requestFromFlags({ [flag]: label });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    throw refused('a number', flag);
  }
}

/**
 * Checks every cell as the client will, so that a value the API would refuse is named by its axis
 * (`--x: steps=200 is not allowed; allowed: ...`) before anything is sent. A refusal of a setting
 * no axis varies is left to the run's own check, which names its flag.
 */
function checkCells(
  cells: readonly PromptLine[],
  base: Record<string, unknown>,
  axes: readonly { name: string; axis: Axis }[],
  settings: readonly Record<string, string>[],
): void {
  cells.forEach((cell, index) => {
    try {
      parseRequest({ ...base, ...cell.options, prompt: cell.prompt });
    } catch (error) {
      if (!(error instanceof InvalidRequestError)) throw error;
      for (const refusal of error.fields) {
        const on = axes.find(({ axis }) =>
          axis.values.some(({ options }) => Object.hasOwn(options, refusal.field)),
        );
        if (!on) continue;
        const label = settings[index]![on.axis.flag]!;
        const where = axes.length > 1 ? ` (the cell ${describeCell(settings[index]!)})` : '';
        const message = `${on.name}: ${on.axis.flag}=${label} is not allowed; allowed: ${refusal.allowed}${where}.`;
        throw new UsageError(message, [
          { flag: on.name, field: refusal.field, value: label, allowed: refusal.allowed, message },
        ]);
      }
    }
  });
}

function describeCell(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([flag, value]) => `${flag}=${value}`)
    .join(', ');
}

/**
 * A cell's settings as words for its files' names: `steps=30-guidance-scale=7.5`. Each value is made
 * file-name safe (lower case, runs of other characters as one dash, at most 24 characters).
 */
function fileLabel(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([flag, value]) => {
      const safe = value
        .normalize('NFKD')
        .replace(/\p{M}+/gu, '')
        .toLowerCase()
        .replace(/[^a-z0-9.-]+/g, '-')
        .replace(/-{2,}/g, '-')
        .replace(/^-(?!\d)|-$/g, '')
        .slice(0, 24);
      return `${flag}=${safe || 'none'}`;
    })
    .join('-');
}
