import type { RepliableInteraction } from 'discord.js';
import type { BotConfig } from '../config.ts';
import { releaseInteraction } from '../discord-memory.ts';
import type { Logger } from '../logger.ts';
import type { JobQueue } from '../queue/types.ts';
import type { JobRecord } from '../store/job-store.ts';
import { estimateStartMs, type RecentJobsSource } from './estimate.ts';
import type { JobReply, ReplyOptions } from './job-reply.ts';
import { cancelRow, queuedText } from './render.ts';

/** Position edits for one job are spaced at least this far apart (interaction webhooks are rate limited). */
const POSITION_EDIT_SPACING_MS = 3_000;

/** A job this process is serving: where it answers and how to stop it. */
export interface LiveJob {
  job: JobRecord;
  reply: JobReply;
  controller: AbortController;
  deadline: NodeJS.Timeout;
  /** Accepted by the async API: billed whatever happens, so it is seen through, never stopped. */
  submitted: boolean;
  /** Its billed request left for the API (it may be billed even if no answer came). */
  sent: boolean;
  /** When it left the line, for the start estimates of the jobs behind. */
  startedAt?: number;
  shownPosition?: number;
  pendingPosition?: number;
  lastEditAt: number;
  positionTimer?: NodeJS.Timeout;
}

/** What the jobs a process serves need around them. */
export interface LiveJobsDeps {
  config: Pick<BotConfig, 'jobDeadlineMs' | 'maxInFlight' | 'requestsPerMinute' | 'rateWindowMs'>;
  queue: Pick<JobQueue, 'ahead' | 'whileWaiting'>;
  /** How long the last jobs took: what a waiting job's start estimate is made from. */
  recent: RecentJobsSource;
  logger: Logger;
  /** A job's deadline passed. Called from a timer, so it must not reject. */
  onDeadline: (jobId: string) => void;
}

/**
 * The jobs this process is serving, and how each answers its member: status edits, its last word,
 * and its place in line with the estimated start, edited no faster than Discord's limits allow.
 */
export class LiveJobs {
  private readonly jobs = new Map<string, LiveJob>();
  private readonly deps: LiveJobsDeps;

  constructor(deps: LiveJobsDeps) {
    this.deps = deps;
  }

  /** Starts serving a job: where it answers, and its deadline counted from `since` (the command). */
  serve(job: JobRecord, reply: JobReply, since: number): LiveJob {
    const remaining = since + this.deps.config.jobDeadlineMs - Date.now();
    const live: LiveJob = {
      job,
      reply,
      controller: new AbortController(),
      deadline: setTimeout(() => this.deps.onDeadline(job.id), Math.max(0, remaining)),
      submitted: false,
      sent: false,
      lastEditAt: 0,
    };
    this.jobs.set(job.id, live);
    return live;
  }

  get(jobId: string): LiveJob | undefined {
    return this.jobs.get(jobId);
  }

  has(jobId: string): boolean {
    return this.jobs.has(jobId);
  }

  /** How many jobs this process is serving. */
  get size(): number {
    return this.jobs.size;
  }

  /** The ids of the jobs served, as of the call. */
  ids(): string[] {
    return [...this.jobs.keys()];
  }

  /** Whether a job still answers through this interaction. */
  serves(interaction: RepliableInteraction): boolean {
    for (const live of this.jobs.values()) if (live.reply.interaction === interaction) return true;
    return false;
  }

  /** Stops serving a job: its timers go, and discord.js may let go of its interaction. */
  forget(jobId: string): void {
    const live = this.jobs.get(jobId);
    if (!live) return;
    clearTimeout(live.deadline);
    clearTimeout(live.positionTimer);
    this.jobs.delete(jobId);
    if (live.reply.interaction) releaseInteraction(live.reply.interaction);
  }

  /** A status edit; dropped once the reply can no longer be edited. Never rejects. */
  async edit(live: LiveJob, options: ReplyOptions): Promise<void> {
    live.lastEditAt = Date.now();
    try {
      await live.reply.update(options);
    } catch (error) {
      this.deps.logger.warn({ jobId: live.job.id, err: error }, 'could not update the reply');
    }
  }

  /** A job's last word: into the reply while it can be edited, else in the channel. Never rejects. */
  async answer(live: LiveJob, options: ReplyOptions): Promise<void> {
    live.lastEditAt = Date.now();
    try {
      await live.reply.finish(options);
    } catch (error) {
      this.deps.logger.warn({ jobId: live.job.id, err: error }, 'could not tell the user');
    }
  }

  /**
   * Shows a waiting job's place in line and when it should start. Edits are spaced: a position that
   * changes again before its edit goes out replaces it.
   */
  showPosition(jobId: string, position: number): void {
    const live = this.jobs.get(jobId);
    if (!live || live.shownPosition === position) return;
    live.pendingPosition = position;
    if (live.positionTimer) return;
    const delay = Math.max(0, live.lastEditAt + POSITION_EDIT_SPACING_MS - Date.now());
    live.positionTimer = setTimeout(() => {
      live.positionTimer = undefined;
      const next = live.pendingPosition;
      if (next === undefined || next === live.shownPosition || !this.jobs.has(jobId)) return;
      live.shownPosition = next;
      // Only while the job still waits, and its start (here or in another process) waits for the
      // edit: a reply never goes back from "making…" to a position.
      void this.deps.queue
        .whileWaiting(jobId, () => this.editPosition(live, next))
        .catch((error: unknown) =>
          this.deps.logger.debug({ jobId, err: error }, 'could not show the queue position'),
        );
    }, delay);
  }

  private async editPosition(live: LiveJob, position: number): Promise<void> {
    const { config, queue, recent } = this.deps;
    const jobId = live.job.id;
    // What stands before it now, read when the edit is made: the estimate plays that line forward.
    const line = await queue.ahead(jobId).catch(() => undefined);
    const estimate =
      line &&
      estimateStartMs(line, recent.list, {
        imageCapacity: config.maxInFlight,
        perWindow: config.requestsPerMinute,
        windowMs: config.rateWindowMs,
      });
    await this.edit(live, {
      content: queuedText(
        position,
        String(live.job.input.prompt),
        { maxInFlight: config.maxInFlight, perMinute: config.requestsPerMinute },
        estimate === undefined ? undefined : Date.now() + estimate,
      ),
      components: [cancelRow(jobId)],
    });
  }
}
