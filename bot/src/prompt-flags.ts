import { MAX_SEED } from '@sdxl-kit/client';

/** A prompt with Midjourney-style flags taken off its end. */
export interface ParsedPrompt {
  prompt: string;
  /** Words after `--no`, to add to the negative prompt. */
  negative?: string;
  /** The number after `--seed`. */
  seed?: number;
  /** Why the flags could not be read, in words for the user. */
  error?: string;
}

const FLAG = /(?:^|\s)--(\w+)/g;

/**
 * Reads `--no <words>` and `--seed N` from the end of a prompt, as Midjourney users type out of habit.
 * Flags start at the first `--no`/`--seed`; anything before stays the prompt.
 */
export function parsePromptFlags(text: string): ParsedPrompt {
  const flags = [...text.matchAll(FLAG)];
  const first = flags.find((match) => match[1] === 'no' || match[1] === 'seed');
  if (!first) return { prompt: text.trim() };
  const result: ParsedPrompt = { prompt: text.slice(0, first.index).trim() };
  const tail = flags.filter((match) => match.index >= first.index);
  for (const [position, match] of tail.entries()) {
    const end = tail[position + 1]?.index ?? text.length;
    const value = text.slice(match.index + match[0].length, end).trim();
    if (match[1] === 'no') {
      if (value) result.negative = result.negative ? `${result.negative}, ${value}` : value;
    } else if (match[1] === 'seed') {
      const seed = Number(value);
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(seed) || seed > MAX_SEED) {
        return {
          ...result,
          error: `--seed: "${value}" is not allowed; allowed: a whole number from 0 to ${MAX_SEED}`,
        };
      }
      result.seed = seed;
    } else {
      return {
        ...result,
        error: `--${match[1]} is not supported; supported at the end of the prompt: --no <words>, --seed <number>`,
      };
    }
  }
  return result;
}
