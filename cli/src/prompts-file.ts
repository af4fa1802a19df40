import { readFile } from 'node:fs/promises';
import { REQUEST_FIELDS } from '@sdxl-kit/client';
import { UsageError } from './exit.ts';

/** A prompt and the line of the file it came from, counted from 1. */
export interface PromptLine {
  prompt: string;
  line: number;
  /** A `.jsonl` line's own request options (camelCase, as the client names them), over the flags. */
  options?: Record<string, unknown>;
  /** How the line wrote each option's key (`negative_prompt` or `negativePrompt`), by option. */
  keys?: Record<string, string>;
  /** Words its files are named with after the prompt (a grid cell's `steps=30`), file-name safe. */
  label?: string;
}

/** The option a `.jsonl` key in the API's own words sets: `num_inference_steps` sets steps. */
const OPTION_OF_API_NAME = new Map(
  REQUEST_FIELDS.filter((field) => field.wire !== field.name).map((field) => [field.wire, field.name]),
);

/** Whether a prompts file is JSON lines: one object a line with "prompt" and any request option. */
export function isJsonLines(file: string): boolean {
  return /\.(jsonl|ndjson)$/i.test(file);
}

/** One `.jsonl` line as a prompt with its options; a malformed line is a usage error naming it. */
function jsonLine(text: string, line: number, file: string): PromptLine {
  const where = `--prompts: ${sourceName(file)} line ${line}`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `${where} is not valid JSON (${(error as Error).message}). Each line must be one object such as {"prompt": "a fox", "seed": 7}.`,
    );
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(
      `${where} is not a JSON object. Each line must be one object such as {"prompt": "a fox", "seed": 7}.`,
    );
  }
  const { prompt, ...given } = value as Record<string, unknown>;
  if (typeof prompt !== 'string' || prompt.trim() === '') {
    throw new UsageError(
      `${where} has no "prompt" text. Each line must be one object such as {"prompt": "a fox", "seed": 7}.`,
    );
  }
  // A key is the client's camelCase name or the API's own (as Segmind's docs write it); an unknown
  // one goes through as it is, for the client to refuse by name.
  const options: Record<string, unknown> = {};
  const keys: Record<string, string> = {};
  for (const [key, option] of Object.entries(given)) {
    const name = OPTION_OF_API_NAME.get(key) ?? key;
    if (keys[name] !== undefined) {
      throw new UsageError(
        `${where} sets ${name} twice, as "${keys[name]}" and as "${key}". Keep one of them.`,
      );
    }
    options[name] = option;
    keys[name] = key;
  }
  return { prompt: prompt.trim(), line, options, keys };
}

/** How `--prompts` names its source in messages. */
export function sourceName(file: string): string {
  return file === '-' ? 'stdin' : `"${file}"`;
}

/**
 * The bytes as UTF-8 text. UTF-16 (what PowerShell's `>` and Notepad's "Unicode" write) and other
 * bytes that are not UTF-8 are refused naming the line: decoded anyway they become garbage prompts,
 * each one billed.
 */
function decodeUtf8(bytes: Buffer, file: string): string {
  const saveAsUtf8 = 'Save it as UTF-8 and run again.';
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new UsageError(
      `--prompts: ${sourceName(file)} line 1: the text is UTF-16 (it starts with a UTF-16 byte order mark), not UTF-8. ${saveAsUtf8}`,
    );
  }
  const strict = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    const newline = bytes.indexOf(0x0a, start);
    const end = newline === -1 ? bytes.length : newline;
    const content = bytes.subarray(start, end);
    if (content.includes(0)) {
      throw new UsageError(
        `--prompts: ${sourceName(file)} line ${line} holds NUL bytes: the text is not UTF-8 (UTF-16 perhaps). ${saveAsUtf8}`,
      );
    }
    try {
      strict.decode(content);
    } catch {
      throw new UsageError(
        `--prompts: ${sourceName(file)} line ${line} is not valid UTF-8 text. ${saveAsUtf8}`,
      );
    }
    start = end + 1;
  }
  // TextDecoder drops a UTF-8 byte order mark, which would otherwise start the first prompt.
  return new TextDecoder('utf-8').decode(bytes);
}

/**
 * The prompts of a file ("-" reads stdin): one a line, blank lines and `#` comments skipped; a
 * `.jsonl` file holds one JSON object a line, with "prompt" and that line's own request options.
 */
export async function readPrompts(file: string, stdin: () => Promise<Buffer>): Promise<PromptLine[]> {
  let bytes: Buffer;
  try {
    bytes = file === '-' ? await stdin() : await readFile(file);
  } catch (error) {
    throw new UsageError(
      `--prompts: cannot read "${file}" (${(error as NodeJS.ErrnoException).code ?? 'error'}).`,
    );
  }
  const lines = decodeUtf8(bytes, file)
    .split(/\r?\n/)
    .map((text, index) => ({ text: text.trim(), line: index + 1 }))
    .filter(({ text }) => text && !text.startsWith('#'));
  const prompts = isJsonLines(file)
    ? lines.map(({ text, line }) => jsonLine(text, line, file))
    : lines.map(({ text, line }) => ({ prompt: text, line }));
  if (prompts.length === 0) throw new UsageError(`--prompts: ${sourceName(file)} holds no prompts.`);
  return prompts;
}

/** All of stdin. */
export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
