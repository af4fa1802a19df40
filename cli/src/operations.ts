// `sdxl vary`, `sdxl inpaint`, `sdxl upscale`: one image in, images out. Their flags come from the
// model declarations, so a field the declaration gains is a flag here without code.
import { readFile } from 'node:fs/promises';
import type { ParseArgsConfig } from 'node:util';
import {
  InvalidRequestError,
  esrgan,
  parseModelRequest,
  sdxlImg2Img,
  withParameters,
  sdxlInpaint,
  type ModelDeclaration,
  type ModelField,
  type EmbedOptions,
  type ModelResult,
} from '@sdxl-kit/client';
import { connect } from './connect.ts';
import { EXIT, UsageError, describeError, exitCodeFor } from './exit.ts';
import { prepareFolder, saveImages } from './files.ts';
import type { Interrupt } from './interrupt.ts';
import type { Io } from './io.ts';
import { MONEY_FLAGS, MONEY_HELP, checkPlan, maxCostOf, printPlan, runBudget } from './money.ts';
import { numberFlag, pacing, parseFlags } from './options.ts';

/** A flag whose name is not the field's own, where the issue or habit names it otherwise. */
const FLAG_NAMES: Record<string, string> = { outputFormat: 'format', samples: 'samples' };
const SHORT: Record<string, string> = { samples: 'n' };

/** The flag that sets a field: `--guidance-scale` for guidanceScale. */
export function flagName(field: ModelField): string {
  return FLAG_NAMES[field.name] ?? field.name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

interface Command {
  name: 'vary' | 'inpaint' | 'upscale';
  model: ModelDeclaration;
  usage: string;
  /** Image fields given as positionals, in order; the rest are flags. */
  positionalImages: string[];
  takesPrompt: boolean;
}

const COMMANDS: Record<Command['name'], Command> = {
  vary: {
    name: 'vary',
    model: sdxlImg2Img,
    usage: 'sdxl vary IMAGE "<prompt>" [options]',
    positionalImages: ['image'],
    takesPrompt: true,
  },
  inpaint: {
    name: 'inpaint',
    model: sdxlInpaint,
    usage: 'sdxl inpaint IMAGE --mask MASK "<prompt>" [options]',
    positionalImages: ['image'],
    takesPrompt: true,
  },
  upscale: {
    name: 'upscale',
    model: esrgan,
    usage: 'sdxl upscale IMAGE [--scale 2|4|8] [--format jpeg|png|webp] [--quality N] [options]',
    positionalImages: ['image'],
    takesPrompt: false,
  },
};

/** The flags and options shared by every command that makes images. */
export const RUN_FLAGS = {
  out: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
  async: { type: 'boolean' },
  sync: { type: 'boolean' },
  set: { type: 'string', multiple: true },
  rpm: { type: 'string' },
  timeout: { type: 'string' },
  sandbox: { type: 'boolean' },
  'base-url': { type: 'string' },
  'no-metadata': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  ...MONEY_FLAGS,
} as const satisfies ParseArgsConfig['options'];

const RUN_HELP = `Output, API and pacing:
  -o, --out DIR                folder for the images (default ./out)
  --json                       stdout carries only JSON
  --async                      use Segmind's async API: submit, then poll by request id; if sdxl stops,
                               "sdxl resume REQUEST_ID" collects the images (default for models slower
                               than 10 s)
  --sync                       use the synchronous API (the default for this model)
  --set NAME=VALUE             send a field sdxl has no flag for, by its API name (repeatable;
                               VALUE is JSON, or text)
  --rpm N                      requests per minute (default $SDXL_RPM or 5)
  --timeout SECONDS            how long one attempt may take, 1 to 600 (default $SDXL_TIMEOUT or 120)
  --sandbox                    use a local sandbox: real images, no key, no credits
  --base-url URL               API base URL (default $SDXL_BASE_URL or the hosted API)
  --no-metadata                write no generation parameters (prompt, seed, settings, source
                               image's name) into the images; by default they are in each file`;

function fieldFlags(command: Command): ModelField[] {
  return command.model.fields
    .filter((field) => field.kind !== 'image' || !command.positionalImages.includes(field.name))
    .filter((field) => !(field.name === 'prompt' && command.takesPrompt));
}

function flagsOf(command: Command): NonNullable<ParseArgsConfig['options']> {
  const flags: NonNullable<ParseArgsConfig['options']> = { ...RUN_FLAGS };
  for (const field of fieldFlags(command)) {
    const short = SHORT[field.name];
    flags[flagName(field)] =
      field.kind === 'boolean' ? { type: 'boolean' } : { type: 'string', ...(short && { short }) };
  }
  return flags;
}

function numericFlags(command: Command): string[] {
  return [
    ...fieldFlags(command)
      .filter((field) => field.kind === 'integer' || field.kind === 'number')
      .map(flagName),
    'rpm',
    'timeout',
  ];
}

/** `--help` for a command, its field flags read off the model declaration. */
export function helpFor(name: Command['name']): string {
  const command = COMMANDS[name];
  const lines = fieldFlags(command).map((field) => {
    const flag = `--${flagName(field)}${field.kind === 'boolean' ? '' : ` ${field.kind === 'image' ? 'FILE|URL' : 'X'}`}`;
    const short = SHORT[field.name] ? `-${SHORT[field.name]}, ` : '';
    const defaultText = field.required
      ? 'required'
      : field.default !== undefined
        ? `default ${String(field.default)}`
        : "default: the API's";
    return `  ${`${short}${flag}`.padEnd(29)}${field.allowed} (${defaultText})`;
  });
  const imageWords =
    'IMAGE is a JPEG, PNG or WebP file, or an http(s) URL; it is checked before anything is sent.';
  return `Usage: ${command.usage}

${command.model.summary} Model: ${command.model.slug}.
${imageWords}

Request:
${lines.join('\n')}

${RUN_HELP}

${MONEY_HELP}

Exit codes as for sdxl imagine: 0 done, 2 invalid input (nothing sent), 3 key refused, 4 not enough
credits, 6 over --max-cost (nothing sent), 1 anything else; 130/143 when interrupted.`;
}

/** Reads IMAGE or MASK: a URL passes through, a file is read (a missing one is exit 2, nothing sent). */
async function readImageArgument(name: string, value: string): Promise<Uint8Array | string> {
  if (/^https?:\/\//i.test(value)) return value;
  try {
    return await readFile(value);
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new UsageError(
      `${name}: cannot read "${value}" (${reason}). Give a JPEG, PNG or WebP file or an http(s) URL. Nothing was sent.`,
    );
  }
}

/** A file's name without folder and extension (a URL's last segment), to name what came of it. */
function sourceName(value: string): string {
  const last =
    value
      .split(/[\\/?#]/)
      .filter(Boolean)
      .at(/^https?:/i.test(value) ? -1 : -1) ?? 'image';
  return last.replace(/\.[A-Za-z0-9]+$/, '') || 'image';
}

/** The images a command was given, labelled for the parameters text: `Source image`, then `Mask` etc. */
function imageArguments(
  command: Command,
  imageArg: string,
  values: Record<string, unknown>,
): [label: string, value: string][] {
  const named = command.model.fields
    .filter((field) => field.kind === 'image' && !command.positionalImages.includes(field.name))
    .flatMap((field): [string, string][] => {
      const value = values[flagName(field)];
      return typeof value === 'string' ? [[field.label, value]] : [];
    });
  return [['Source image', imageArg], ...named];
}

/** A file's or URL's last segment, without folders or a query. */
function sourceLabel(value: string): string {
  return value.split(/[?#]/)[0]!.split(/[\\/]/).filter(Boolean).at(-1) ?? value;
}

/** `--set name=value`: JSON where it parses (numbers, true, null), else the text itself. */
function extraFields(
  values: readonly string[] | undefined,
): Record<string, string | number | boolean | null> {
  const extra: Record<string, string | number | boolean | null> = {};
  for (const entry of values ?? []) {
    const at = entry.indexOf('=');
    if (at <= 0)
      throw new UsageError(`--set: "${entry}" is not allowed; allowed: NAME=VALUE, e.g. --set tile=256.`);
    const text = entry.slice(at + 1);
    let value: string | number | boolean | null = text;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || ['string', 'number', 'boolean'].includes(typeof parsed))
        value = parsed as typeof value;
    } catch {
      // Plain text.
    }
    extra[entry.slice(0, at)] = value;
  }
  return extra;
}

/** What the command line calls a field: the flag, or IMAGE for a positional image. */
function cliName(command: Command, field: string): string {
  if (command.positionalImages.includes(field)) return field.toUpperCase();
  if (field === 'prompt') return 'the prompt';
  if (field.startsWith('extra.')) return `--set ${field.slice(6)}`;
  const spec = command.model.fields.find((candidate) => candidate.name === field);
  return spec ? `--${flagName(spec)}` : field;
}

/** The refusal in the command line's words; an image is named with its file or URL (`IMAGE "notes.txt"`). */
function usageFrom(
  command: Command,
  error: InvalidRequestError,
  sources: Readonly<Record<string, string>>,
): UsageError {
  const fields = error.fields.map((field) => {
    const flag = cliName(command, field.field);
    const source = sources[field.field];
    const named = source === undefined ? flag : `${flag} "${source}"`;
    const message = field.message.startsWith(field.field)
      ? `${named}${field.message.slice(field.field.length)}`
      : `${named}: ${field.message}`;
    return { ...field, flag, message };
  });
  return new UsageError(`${fields.map((field) => field.message).join('; ')}. Nothing was sent.`, fields);
}

/** The JSON line of a result, as `sdxl imagine --json` writes it, plus the request id. */
export function resultJson(
  result: ModelResult,
  saved: { path: string; image: ModelResult['images'][number] }[],
) {
  return {
    images: saved.map(({ image, path }) => ({
      path,
      seed: image.seed ?? null,
      index: image.index,
      bytes: image.bytes.length,
      mimeType: image.mimeType,
    })),
    remainingCredits: result.remainingCredits ?? null,
    lowCredits: result.lowCredits,
    requestId: result.requestId ?? null,
    cost: result.cost ?? null,
  };
}

/** Writes a result's images and reports them; returns the exit code. */
export async function deliver(
  result: ModelResult,
  context: {
    io: Io;
    json: boolean;
    outDir: string;
    name: string;
    lowCreditsThreshold: number;
    embed: EmbedOptions;
  },
): Promise<number> {
  const { io, json, outDir } = context;
  const images = withParameters(result, result.images, context.embed);
  const { saved, error } = await saveImages(outDir, context.name, images);
  if (json) {
    io.stdout.write(
      `${JSON.stringify({ ...resultJson(result, saved), ...(error && { error: { code: error.code, message: error.message } }) })}\n`,
    );
  } else {
    if (saved.length > 0) {
      const seed = result.seed !== undefined ? ` (seed ${result.seed})` : '';
      io.stdout.write(`Saved ${saved.length} ${saved.length === 1 ? 'image' : 'images'}${seed}:\n`);
      for (const { path } of saved) io.stdout.write(`  ${path}\n`);
    }
    if (result.remainingCredits !== undefined)
      io.stdout.write(`${Number(result.remainingCredits.toFixed(4))} credits left.\n`);
    if (error) io.stderr.write(`Error: ${error.message}\n`);
  }
  if (result.lowCredits && result.remainingCredits !== undefined) {
    io.stderr.write(
      `Warning: ${Number(result.remainingCredits.toFixed(4))} credits left, below ${context.lowCreditsThreshold}. Top up your Segmind account soon.\n`,
    );
  }
  return error ? EXIT.failure : EXIT.ok;
}

/**
 * Tells on stderr, the moment the job is accepted, that it was submitted and how to collect it if
 * sdxl stops; with `--json` too (stdout stays one object), so a killed run still leaves its id.
 */
export function announceSubmit(io: Io, requestId: string): void {
  io.stderr.write(`Submitted as ${requestId}. If sdxl stops before it is done: sdxl resume ${requestId}\n`);
}

async function runOperation(
  name: Command['name'],
  argv: string[],
  io: Io,
  interrupt: Interrupt,
): Promise<number> {
  const command = COMMANDS[name];
  const { values, positionals } = parseFlags(argv, flagsOf(command), numericFlags(command));
  if (values.help) {
    io.stdout.write(`${helpFor(name)}\n`);
    return EXIT.ok;
  }
  const [imageArg, ...rest] = positionals;
  if (!imageArg) throw new UsageError(`No IMAGE. Usage: ${command.usage} (see sdxl ${name} --help).`);
  const prompt = rest.join(' ').trim();
  if (command.takesPrompt && !prompt) throw new UsageError(`No prompt. Usage: ${command.usage}.`);
  if (!command.takesPrompt && prompt) {
    throw new UsageError(`sdxl ${name} takes one IMAGE and no prompt; got also "${prompt}".`);
  }
  if (values.async && values.sync) throw new UsageError('--async and --sync do not go together: choose one.');

  const input: Record<string, unknown> = { image: await readImageArgument('IMAGE', imageArg) };
  // The file or URL each image field came from, to name it when the image is refused.
  const sources: Record<string, string> = { image: imageArg };
  if (command.takesPrompt) input.prompt = prompt;
  for (const field of fieldFlags(command)) {
    const value = values[flagName(field)];
    if (value === undefined) continue;
    if (field.kind === 'image') {
      input[field.name] = await readImageArgument(`--${flagName(field)}`, value as string);
      sources[field.name] = value as string;
    } else if (
      field.kind === 'integer' ||
      field.kind === 'number' ||
      (field.kind === 'choice' && field.values?.every((allowed) => typeof allowed === 'number'))
    )
      input[field.name] = numberFlag(`--${flagName(field)}`, value as string);
    else input[field.name] = value;
  }
  const extra = extraFields(values.set as string[] | undefined);
  if (Object.keys(extra).length > 0) input.extra = extra;
  const missingImage = command.model.fields.find(
    (field) => field.kind === 'image' && field.required && input[field.name] === undefined,
  );
  if (missingImage) throw new UsageError(`--${flagName(missingImage)} is required. Usage: ${command.usage}.`);

  const { timeout, ...paced } = pacing(values as Record<string, string | undefined>, io.env);
  const outDir = (values.out as string | undefined) ?? 'out';
  const json = values.json === true;
  const connection = await connect(io, values as { sandbox?: boolean; 'base-url'?: string }, {
    maxInFlight: 1,
    timeoutMs: timeout * 1000,
    ...paced,
  });
  try {
    const { client } = connection;
    try {
      // Checked here too (the client checks again), so a bad value is exit 2 before --out is touched.
      parseModelRequest(command.model, input);
    } catch (error) {
      if (error instanceof InvalidRequestError) throw usageFrom(command, error, sources);
      throw error;
    }
    const cap = maxCostOf(values['max-cost'] as string | undefined, io.env);
    const plan = client.estimate(command.model, input);
    if (values['dry-run']) return await printPlan(client, plan, { io, json, signal: interrupt.stop });
    checkPlan(plan, cap);
    try {
      await prepareFolder(outDir);
    } catch (error) {
      throw new UsageError(
        `--out: cannot write images to "${outDir}" (${(error as Error).message}). Nothing was sent.`,
      );
    }
    interrupt.takeOver?.();
    const api = values.async ? 'async' : values.sync ? 'sync' : 'auto';
    let result: ModelResult;
    try {
      result = await client.run(command.model, input, {
        api,
        ...(cap && { budget: runBudget(cap) }),
        signal: interrupt.stop,
        onSubmitted: (ticket) => announceSubmit(io, ticket.requestId),
      });
    } catch (error) {
      const requestId = (error as { requestId?: string }).requestId;
      if (requestId && !json && (error as { code?: string }).code !== 'job_failed') {
        io.stderr.write(
          `The job ${requestId} was submitted and may still finish: sdxl resume ${requestId} collects it.\n`,
        );
      }
      throw error;
    }
    const base = command.takesPrompt
      ? prompt
      : `${sourceName(imageArg)}-x${String(result.request.scale ?? 2)}`;
    return await deliver(result, {
      io,
      json,
      outDir,
      name: base,
      lowCreditsThreshold: client.lowCreditsThreshold,
      embed: {
        enabled: values['no-metadata'] !== true,
        // Where the picture came from, by name only: a full path or a signed URL can say too much.
        extra: Object.fromEntries(
          imageArguments(command, imageArg, values).map(([label, value]) => [label, sourceLabel(value)]),
        ),
      },
    });
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // A refusal the client finds only when it reads an image (say, a URL's bytes) names it too.
    if (error instanceof InvalidRequestError) throw usageFrom(command, error, sources);
    if ((error as { code?: string }).code === 'aborted' && interrupt.stop.aborted) throw error;
    if (json) throw error;
    io.stderr.write(
      `Error: ${describeError(error, { baseUrl: connection.baseUrlSource, timeoutSeconds: timeout })}\n`,
    );
    return exitCodeFor(error);
  } finally {
    await connection.close();
  }
}

export const vary = (argv: string[], io: Io, interrupt: Interrupt) =>
  runOperation('vary', argv, io, interrupt);
export const inpaint = (argv: string[], io: Io, interrupt: Interrupt) =>
  runOperation('inpaint', argv, io, interrupt);
export const upscale = (argv: string[], io: Io, interrupt: Interrupt) =>
  runOperation('upscale', argv, io, interrupt);
