import { fieldSpec } from '@sdxl-kit/client';

/** A prompt with Midjourney-style flags taken off its end. */
export interface ParsedPrompt {
  prompt: string;
  /** Words after `--no`, to add to the negative prompt. */
  negative?: string;
  /** The number after `--seed`; -1 picks a random seed, as in the `seed` option. */
  seed?: number;
  /** Why the flags could not be read, in words for the user. */
  error?: string;
}

/**
 * A flag: `--name` after a space or at the start, any case. Phones and editors with smart
 * punctuation turn a typed `--` into an em dash (or an en dash), so those start a flag too.
 */
const FLAG = /(?<=^|\s)(?:--|\u2014|\u2013)(\p{L}\S*)/gu;
const SUPPORTED = 'supported at the end of the prompt: --no <words>, --seed <number>';
const SEED = fieldSpec('seed');

/**
 * Reads `--no <words>` and `--seed N` from the end of a prompt, as Midjourney users type out of habit.
 * Flags start at the first flag; anything before stays the prompt. Any other flag, wherever it is, is
 * refused by name rather than sent as prompt text.
 */
export function parsePromptFlags(text: string): ParsedPrompt {
  const flags = [...text.matchAll(FLAG)].map((match) => ({
    typed: match[0],
    name: match[1]!.toLowerCase(),
    index: match.index,
  }));
  if (flags.length === 0) return { prompt: text.trim() };
  const result: ParsedPrompt = { prompt: text.slice(0, flags[0]!.index).trim() };
  const unknown = flags.find((flag) => flag.name !== 'no' && flag.name !== 'seed');
  if (unknown) return { ...result, error: `${unknown.typed} is not supported; ${SUPPORTED}` };
  for (const [position, flag] of flags.entries()) {
    const end = flags[position + 1]?.index ?? text.length;
    const value = text.slice(flag.index + flag.typed.length, end).trim();
    if (flag.name === 'no') {
      if (value) result.negative = result.negative ? `${result.negative}, ${value}` : value;
      continue;
    }
    const seed = Number(value);
    if (!/^-?\d+$/.test(value) || seed < (SEED.min ?? -1) || seed > (SEED.max ?? Number.MAX_SAFE_INTEGER)) {
      return { ...result, error: `--seed: "${value}" is not allowed; allowed: ${SEED.allowed}` };
    }
    result.seed = seed;
  }
  if (!result.prompt) {
    const taken = text.trim();
    return {
      ...result,
      error: `The prompt is empty once \`${taken.length > 100 ? `${taken.slice(0, 99)}\u2026` : taken}\` is taken out: describe the image first, then add the flags.`,
    };
  }
  return result;
}
