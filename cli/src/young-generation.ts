/**
 * Imported first by bin/sdxl.js, before anything else loads. A `--prompts` batch makes several requests
 * per image, and under that steady garbage V8 keeps enlarging its young generation although the heap
 * in use stays flat: the peak RSS of 10,000 prompts was 1.29x that of 100 (`npm run bench:batch`).
 * Young-generation semi-spaces capped at 4 MB bring it to 1.09x at the same wall time. V8 reads the
 * flag only at start, so a batch replaces its own process once with it (`process.execve`: same pid,
 * same stdio, nothing left beside it; not on Windows). A value the user set (a node flag or
 * NODE_OPTIONS) is kept.
 */
const FLAG = '--max-semi-space-size';
const batch = process.argv.some((arg) => arg === '--prompts' || arg.startsWith('--prompts='));
const chosen = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((arg) => arg.includes(FLAG));
if (batch && !chosen && process.execve) {
  process.execve(
    process.execPath,
    [process.execPath, `${FLAG}=4`, ...process.execArgv, ...process.argv.slice(1)],
    process.env,
  );
}

export {};
