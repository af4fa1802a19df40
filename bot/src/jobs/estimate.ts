/** How many recent jobs the start estimate learns from: enough to smooth one slow job, few enough to follow a change. */
export const RECENT_JOBS = 20;

/** One finished job, as the estimate needs it. */
export interface FinishedJob {
  /** From leaving the line to the result, in ms. */
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
 * When a waiting job should start, in ms from now, or undefined before any job has finished (there is
 * nothing to go on). The jobs ahead drain `slots` at a time, where a slot is the image capacity over
 * the images a recent job made; a job at position p waits ceil(p / slots) rounds of the mean recent
 * duration, less half a round (the running jobs are on average half done). The per-minute pace may
 * hold it longer: `perWindow` starts per `windowMs`.
 */
export function estimateStartMs(
  position: number,
  recent: readonly FinishedJob[],
  pace: { imageCapacity: number; perWindow: number; windowMs: number },
): number | undefined {
  if (recent.length === 0 || position < 1) return undefined;
  const mean = recent.reduce((sum, job) => sum + job.ms, 0) / recent.length;
  const images = recent.reduce((sum, job) => sum + job.images, 0) / recent.length;
  const slots = Math.max(1, Math.floor(pace.imageCapacity / Math.max(1, images)));
  const byCapacity = (Math.ceil(position / slots) - 0.5) * mean;
  const byPace = Math.floor((position - 1) / pace.perWindow) * pace.windowMs;
  return Math.round(Math.max(byCapacity, byPace));
}
