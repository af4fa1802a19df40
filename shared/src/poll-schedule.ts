// When to look at a submitted job. Segmind's own SDK looks at once and then every second; this
// schedule looks just after the job should end, as recent jobs of the model teach, then closely, and
// never makes more checks than polling every `intervalMs` would have made by the time it finds the job done.
import type { JobTimeSample } from './job-times.ts';

/** What recent jobs say of the next one, in ms after its submit was answered. */
export interface Forecast {
  /** When it should be done: the median of recent jobs. */
  endMs: number;
  /** How far jobs stray from that (a robust standard deviation), at least 1 ms. */
  spreadMs: number;
  /** How long it runs once a worker has it, where the server said. */
  inferenceMs?: number;
}

/** The fixed part of the schedule: what it does knowing nothing, and its budget of checks. */
export interface Cadence {
  /** The first check when nothing is learnt yet, in ms after the submit. */
  firstDelayMs: number;
  /** Outside the forecast, one check every this many ms; also the budget: never more checks than this pace. */
  intervalMs: number;
}

/** Where the schedule stands after the checks so far. */
export interface Checked {
  /** Checks made so far. */
  polls: number;
  /** When the last check went out, in ms after the submit. */
  lastAtMs?: number;
  /** What it found: QUEUED or PROCESSING. */
  lastState?: string;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/**
 * The forecast of recent samples, or undefined with none. Median and median absolute deviation: one
 * job stuck in a queue moves neither much, a change of the model's speed moves both within a few jobs.
 */
export function forecast(samples: readonly JobTimeSample[]): Forecast | undefined {
  if (samples.length === 0) return undefined;
  const totals = samples.map((sample) => sample.totalMs);
  const endMs = median(totals);
  const deviation = median(totals.map((total) => Math.abs(total - endMs)));
  // 1.4826 x MAD estimates a standard deviation; one sample alone says nothing of the spread.
  const spreadMs = samples.length === 1 ? endMs * 0.05 : Math.max(1, deviation * 1.4826);
  const inference = samples.flatMap((sample) =>
    sample.inferenceMs === undefined ? [] : [sample.inferenceMs],
  );
  return { endMs, spreadMs, ...(inference.length > 0 && { inferenceMs: median(inference) }) };
}

/** The closest two checks around a forecast end go, in ms: below this a check costs more than it saves. */
const CLOSEST_STEP_MS = 25;

/**
 * When the next check should go, in ms after the submit. With a forecast: a spread after its end
 * (most jobs are done by then), two spreads later, then a spread apart until three spreads past it, then at the cadence. Without one: the first delay,
 * then on the cadence's beat. A QUEUED job cannot end before its inference time has run; a PROCESSING
 * one should end within it. Either way, check number k waits until (k - 2) intervals have passed, so
 * the checks never outnumber the fixed cadence's (which checks at once, then every interval).
 */
export function nextCheckAt(checked: Checked, cadence: Cadence, expected: Forecast | undefined): number {
  const { polls, lastAtMs = 0, lastState } = checked;
  const { intervalMs } = cadence;
  let at: number;
  if (!expected) {
    at = polls === 0 ? cadence.firstDelayMs : (Math.floor(lastAtMs / intervalMs) + 1) * intervalMs;
  } else {
    const { endMs, spreadMs, inferenceMs } = expected;
    const step = Math.min(intervalMs, Math.max(CLOSEST_STEP_MS, spreadMs));
    const firstAt = endMs + Math.max(10, spreadMs);
    // The second check goes two spreads on: on a sub-second job the budget allows two checks before
    // the fixed cadence's second one, and the pair should cover the slow jobs too.
    if (polls === 0) at = firstAt;
    else if (lastAtMs < endMs + 3 * spreadMs)
      at = Math.max(firstAt, lastAtMs + (polls === 1 ? 2 * step : step));
    else at = lastAtMs + intervalMs;
    if (polls > 0 && inferenceMs !== undefined) {
      if (lastState === 'QUEUED') at = Math.max(at, lastAtMs + inferenceMs);
      else if (lastState === 'PROCESSING') at = Math.min(at, lastAtMs + inferenceMs + step);
    }
  }
  return Math.max(at, (polls - 1) * intervalMs);
}
