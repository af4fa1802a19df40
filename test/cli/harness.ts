import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSandbox, type Sandbox, type SandboxOptions } from '@sdxl-kit/sandbox';

export const BIN = fileURLToPath(new URL('../../cli/bin/sdxl.js', import.meta.url));
/** The key every CLI test world uses; no output may ever contain it. */
export const KEY = 'SG_clisecretkey0000777';

export interface Run {
  /** The exit code, or 128 + the signal's number when a signal ended the process. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface Started {
  child: ChildProcess;
  /** What has been written to stderr so far. */
  stderr(): string;
  done: Promise<Run>;
}

/** A sandbox, a scratch folder and a way to run the real `sdxl` bin against them; checks no output held the key. */
export class CliWorld {
  sandbox!: Sandbox;
  dir!: string;
  private readonly runs: Run[] = [];

  async start(options: SandboxOptions = {}): Promise<void> {
    this.sandbox = await startSandbox({ apiKey: KEY, ...options });
    this.dir = await mkdtemp(path.join(tmpdir(), 'sdxl-cli-'));
  }

  /** The cache folder of every run of this world (`SDXL_CACHE_DIR`). */
  get cache(): string {
    return path.join(this.dir, '.cache');
  }

  /** The environment of a configured user: key and base URL of the sandbox. */
  get env(): Record<string, string> {
    return { SDXL_API_KEY: KEY, SDXL_BASE_URL: this.sandbox.url };
  }

  spawn(args: string[], env: Record<string, string> = this.env, input?: string): Started {
    const child = spawn(process.execPath, [BIN, ...args], {
      // What a run keeps between runs (job times, prices) stays in the world's folder: a sandbox's
      // port is reused by later test files, whose runs must not inherit this one's account.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', SDXL_CACHE_DIR: this.cache, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdin.end(input);
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const done = new Promise<Run>((resolve) => {
      child.on('close', (code, signal) => {
        clearTimeout(killer);
        const run = { code: code ?? 128 + (signal ? constants.signals[signal] : 0), stdout, stderr };
        this.runs.push(run);
        resolve(run);
      });
    });
    return { child, stderr: () => stderr, done };
  }

  run(args: string[], env: Record<string, string> = this.env, input?: string): Promise<Run> {
    return this.spawn(args, env, input).done;
  }

  async close(): Promise<void> {
    await this.sandbox?.close();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    for (const run of this.runs) {
      assert.ok(!`${run.stdout}${run.stderr}`.includes(KEY), `key printed: ${run.stdout}${run.stderr}`);
    }
  }
}

/** Waits until `condition` holds, checking every 20 ms; fails after 20 s. */
export async function until(condition: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until the batch journal in `out` holds `count` events of `kind` ("submitted", "run", ...). */
export async function journalEvents(out: string, kind: string, count: number): Promise<void> {
  let seen = 0;
  await until(() => {
    readFile(path.join(out, '.sdxl-journal.jsonl'), 'utf8').then(
      (text) => (seen = text.split(`"event":"${kind}"`).length - 1),
      () => {},
    );
    return seen >= count;
  }, `${count} "${kind}" events in the journal`);
}

/** One line of `sdxl imagine --json`. */
export interface JsonLine {
  prompt?: string;
  images: Array<{ path: string; seed: number; index: number; bytes: number; mimeType: string }>;
  remainingCredits?: number | null;
  lowCredits?: boolean;
  error?: {
    code: string;
    message: string;
    fields?: Array<{ flag?: string; field: string; value: string; allowed: string; message: string }>;
  };
}

/** What a `--prompts --json` run's last line says of the whole batch. */
export interface Summary {
  prompts: number;
  images: number;
  spent: number;
  skipped: number;
  failed: number;
}

/** The JSON lines of a --json run: one a prompt (a batch's closing summary line is `summaryOf`'s). */
export function jsonLines(stdout: string): JsonLine[] {
  const lines = stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as JsonLine & { summary?: Summary });
  if (lines.at(-1)?.summary) lines.pop();
  assert.ok(!lines.some((line) => line.summary), 'a summary line only at the end');
  return lines;
}

/** The summary line a `--prompts --json` run ends with; fails when there is none. */
export function summaryOf(stdout: string): Summary {
  const last = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { summary?: Summary };
  assert.ok(last.summary, `no summary line at the end of: ${stdout}`);
  return last.summary;
}

/** `sdxl imagine --prompts FILE --out OUT` at 1000 a minute with `--json`; `more` adds flags. */
export function batchArgs(file: string, out: string, ...more: string[]): string[] {
  return ['imagine', '--prompts', file, '--out', out, '--rpm', '1000', '--json', ...more];
}
