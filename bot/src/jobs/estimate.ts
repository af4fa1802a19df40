import type { LineAhead } from '../queue/types.ts';

/** How many recent jobs the start estimate learns from: enough to smooth one slow job, few enough to follow a change. */
export const RECENT_JOBS = 20;

/** One finished job, as the estimate needs it. */
export interface FinishedJob {
  /** From leaving the line to the result posted, in ms. */
  ms: number;
  images: number;
}

/** The last {@link RECENT_JOBS} finished jobs, oldest first: what start estimates are made from. */
export interface RecentJobsSource {
  add(job: FinishedJob): void;
  readonly list: readonly FinishedJob[];
}

/** The last {@link RECENT_JOBS} finished jobs of this process, oldest first; memory stays bounded. */
export class RecentJobs implements RecentJobsSource {
  private readonly jobs: FinishedJob[] = [];

  add(job: FinishedJob): void {
    this.jobs.push(job);
    if (this.jobs.length > RECENT_JOBS) this.jobs.shift();
  }

  get list(): readonly FinishedJob[] {
    return this.jobs;
  }
}

/**
 * How long a job of `images` images takes: the median of recent jobs of that size, else of all of them.
 * A median, so that one slow job (the first after a start, say) does not move every estimate.
 */
function durationFor(images: number, recent: readonly FinishedJob[]): number {
  const median = (jobs: readonly FinishedJob[]) => {
    const sorted = jobs.map((job) => job.ms).sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  };
  const same = recent.filter((job) => job.images === images);
  return same.length > 0 ? median(same) : median(recent);
}

/**
 * When a waiting job should start, in ms from `now`, or undefined before any job has finished (there
 * is nothing to go on). Plays the line forward as the queue runs it: strictly in order, each job
 * starting once its images fit the capacity beside those in flight (a job larger than the capacity
 * runs alone), taking as long as recent jobs of its size took (their median); a running job whose start is unknown
 * is taken to be half done. At most `perWindow` jobs start per `windowMs` (counted from now).
 */
export function estimateStartMs(
  line: LineAhead,
  recent: readonly FinishedJob[],
  pace: { imageCapacity: number; perWindow: number; windowMs: number },
  now: number = Date.now(),
): number | undefined {
  if (recent.length === 0) return undefined;
  // Jobs in flight as [finish time (ms from now), images], kept in order of finishing.
  const inFlight = line.running.map((job): [number, number] => {
    const duration = durationFor(job.images, recent);
    const elapsed = job.startedAt === undefined ? duration / 2 : now - job.startedAt;
    return [Math.max(0, duration - elapsed), job.images];
  });
  const starts: number[] = [];
  let clock = 0;
  for (const images of [...line.waiting, line.images]) {
    inFlight.sort((a, b) => a[0] - b[0]);
    let used = inFlight.reduce((sum, [, held]) => sum + held, 0);
    while (inFlight.length > 0 && used + images > pace.imageCapacity) {
      const [finish, held] = inFlight.shift()!;
      clock = Math.max(clock, finish);
      used -= held;
    }
    const paced =
      starts.length >= pace.perWindow ? starts[starts.length - pace.perWindow]! + pace.windowMs : 0;
    clock = Math.max(clock, paced);
    starts.push(clock);
    inFlight.push([clock + durationFor(images, recent), images]);
  }
  return Math.round(starts.at(-1)!);
}
