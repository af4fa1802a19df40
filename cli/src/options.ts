import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  CLIENT_DEFAULTS,
  REQUEST_FIELDS,
  type GenerateInput,
  type InvalidRequestError,
} from '@sdxl-kit/client';
import { UsageError } from './exit.ts';
import { MONEY_FLAGS } from './money.ts';

/** Flags of `sdxl imagine`: one per request field, then output and pacing. */
export const IMAGINE_FLAGS = {
  'negative-prompt': { type: 'string' },
  style: { type: 'string' },
  samples: { type: 'string', short: 'n' },
  scheduler: { type: 'string' },
  steps: { type: 'string' },
  'guidance-scale': { type: 'string' },
  strength: { type: 'string' },
  'high-noise-fraction': { type: 'string' },
  seed: { type: 'string' },
  width: { type: 'string' },
  height: { type: 'string' },
  'no-refiner': { type: 'boolean' },
  out: { type: 'string', short: 'o' },
  sandbox: { type: 'boolean' },
  prompts: { type: 'string' },
  json: { type: 'boolean' },
  rpm: { type: 'string' },
  concurrency: { type: 'string' },
  timeout: { type: 'string' },
  'base-url': { type: 'string' },
  async: { type: 'boolean' },
  sync: { type: 'boolean' },
  'no-journal': { type: 'boolean' },
  'resubmit-expired': { type: 'boolean' },
  'no-metadata': { type: 'boolean' },
  'no-contact-sheet': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  ...MONEY_FLAGS,
} as const satisfies ParseArgsConfig['options'];

const NUMERIC_FLAGS: ReadonlyArray<[flag: string, field: keyof GenerateInput]> = [
  ['samples', 'samples'],
  ['steps', 'steps'],
  ['guidance-scale', 'guidanceScale'],
  ['strength', 'strength'],
  ['high-noise-fraction', 'highNoiseFraction'],
  ['seed', 'seed'],
  ['width', 'width'],
  ['height', 'height'],
];

/** The imagine flags that take a number, so a negative value after them is their value. */
export const IMAGINE_NUMERIC_FLAGS: readonly string[] = [
  ...NUMERIC_FLAGS.map(([flag]) => flag),
  'rpm',
  'concurrency',
  'timeout',
];

/** Bounds of `--timeout`, in seconds. */
export const TIMEOUT_SECONDS = { min: 1, max: 600 } as const;

/** Seconds from a setting named as the user gave it (`--timeout` or `SDXL_TIMEOUT`), within bounds. */
export function timeoutSeconds(name: string, text: string): number {
  const value = numberFlag(name, text);
  if (value < TIMEOUT_SECONDS.min || value > TIMEOUT_SECONDS.max) {
    throw new UsageError(
      `${name}: ${text} is not allowed; allowed: a number of seconds from ${TIMEOUT_SECONDS.min} to ${TIMEOUT_SECONDS.max}.`,
    );
  }
  return value;
}

/**
 * `--seed -1` as `--seed=-1` (and `-n -2` as `--samples=-2`) for the flags in `numeric`: parseArgs
 * takes a value that starts with a dash for a flag and refuses it as ambiguous.
 */
function joinNegativeNumbers(
  argv: readonly string[],
  options: NonNullable<ParseArgsConfig['options']>,
  numeric: readonly string[],
): string[] {
  const longOf = new Map(
    Object.entries(options).flatMap(([name, option]) => (option.short ? [[option.short, name]] : [])),
  );
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      joined.push(...argv.slice(i));
      break;
    }
    const name = arg.startsWith('--') ? arg.slice(2) : /^-[^-]$/.test(arg) ? longOf.get(arg[1]!) : undefined;
    const next = argv[i + 1];
    if (name && numeric.includes(name) && next !== undefined && /^-\.?\d/.test(next)) {
      joined.push(`--${name}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

/**
 * Parses argv with `node:util`'s parser; unknown flags are usage errors that name the flag. Flags in
 * `numeric` take negative numbers as values.
 */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  numeric: readonly string[] = [],
) {
  try {
    return parseArgs({
      args: joinNegativeNumbers(argv, options, numeric),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    // parseArgs' advice about positionals (put them after "--") does not fit a mistyped flag.
    const message = (error as Error).message
      .replace(/\s*To specify a positional argument.*$/s, '')
      .replace(/\s*\n\s*/g, ' ');
    throw new UsageError(`${message} See "sdxl help".`);
  }
}

/**
 * A number from a setting, or a usage error naming the setting as the user gave it (`--rpm`, or
 * `SDXL_RPM` when it came from the environment) and the text given.
 */
export function numberFlag(name: string, text: string): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value)) {
    throw new UsageError(`${name}: "${text}" is not a number.`);
  }
  return value;
}

/** The request fields set by flags; the client validates ranges and names the field on failure. */
export function requestFromFlags(
  values: Record<string, string | boolean | undefined>,
): Omit<GenerateInput, 'prompt'> {
  const request: Record<string, unknown> = {};
  if (typeof values['negative-prompt'] === 'string') request.negativePrompt = values['negative-prompt'];
  if (typeof values.style === 'string') request.style = values.style;
  if (typeof values.scheduler === 'string') request.scheduler = values.scheduler;
  for (const [flag, field] of NUMERIC_FLAGS) {
    const text = values[flag];
    if (typeof text === 'string') request[field] = numberFlag(`--${flag}`, text);
  }
  if (values['no-refiner']) request.refiner = false;
  return request as Omit<GenerateInput, 'prompt'>;
}

/** A positive whole number from a setting named as the user gave it, or its default. */
export function positiveIntFlag(name: string, text: string | boolean | undefined, fallback: number): number {
  if (typeof text !== 'string') return fallback;
  const value = numberFlag(name, text);
  if (!Number.isInteger(value) || value < 1) {
    throw new UsageError(`${name}: ${text} is not allowed; allowed: a whole number, 1 or more.`);
  }
  return value;
}

/** The `sdxl imagine` flag that sets a request field (camelCase, as the client names it), if one does. */
export function flagFor(field: string): string | undefined {
  if (field === 'refiner') return '--no-refiner';
  if (!REQUEST_FIELDS.some((spec) => spec.name === field)) return undefined;
  const flag = field.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
  return flag in IMAGINE_FLAGS ? `--${flag}` : undefined;
}

/**
 * The client's validation error in the words of the command line: each field is named by the flag
 * that set it, and the prompt by where it came from (`promptSource`, e.g. a line of --prompts); a
 * field a .jsonl line set by that line and its key as the line wrote it (`line.keys`, by option).
 */
export function usageErrorFrom(
  error: InvalidRequestError,
  promptSource?: string,
  line?: { source: string; keys: Readonly<Record<string, string>> },
): UsageError {
  const fields = error.fields.map((field) => {
    const key = line && Object.hasOwn(line.keys, field.field) ? line.keys[field.field] : undefined;
    const fromLine = key !== undefined ? `${line!.source}: ${key}` : undefined;
    const name =
      fromLine ??
      flagFor(field.field) ??
      (field.field === 'prompt' ? promptSource : undefined) ??
      field.field;
    const message = field.message.startsWith(field.field)
      ? `${name}${field.message.slice(field.field.length)}`
      : `${name}: ${field.message}`;
    return { ...field, flag: name, message };
  });
  return new UsageError(`${fields.map((field) => field.message).join('; ')}.`, fields);
}

/** Requests per minute and the attempt timeout, from flags or the environment (SDXL_RPM, SDXL_TIMEOUT). */
export function pacing(
  values: { rpm?: string | undefined; timeout?: string | undefined; sandbox?: boolean | undefined },
  env: NodeJS.ProcessEnv,
) {
  const envRpm = env.SDXL_RPM?.trim() || undefined;
  const requestsPerMinute =
    values.rpm !== undefined
      ? positiveIntFlag('--rpm', values.rpm, 5)
      : positiveIntFlag('SDXL_RPM', envRpm, 5);
  const envTimeout = env.SDXL_TIMEOUT?.trim() || undefined;
  const timeout =
    values.timeout !== undefined
      ? timeoutSeconds('--timeout', values.timeout)
      : envTimeout !== undefined
        ? timeoutSeconds('SDXL_TIMEOUT', envTimeout)
        : CLIENT_DEFAULTS.timeoutMs / 1000;
  return {
    timeout,
    // The sandbox has no plan to respect: only an explicit --rpm paces it, not SDXL_RPM.
    ...((!values.sandbox || values.rpm !== undefined) && { requestsPerMinute }),
  };
}
