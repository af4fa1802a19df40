import { randomUUID } from 'node:crypto';
import { setTimeout as wait } from 'node:timers/promises';
import type { AsyncTicket, GenerateInput, Reservation, SdxlError } from '@sdxl-kit/client';
import type { ButtonInteraction, Client, RepliableInteraction } from 'discord.js';
import { checkBannedWords } from '../access.ts';
import { budgetScope } from '../budget/budgets.ts';
import type { SubmitClaims, SubmitHold } from '../claims.ts';
import type { BotContext } from '../context.ts';
import type { BotMetrics } from '../metrics.ts';
import { BotRefusal, BUSY_MESSAGE, RESTARTING_MESSAGE, userMessage } from '../errors.ts';
import type { QueueTicket } from '../queue/types.ts';
import { SOURCE_IMAGE_INDEX, type JobOperation, type JobRecord } from '../store/job-store.ts';
import { withJobParameters } from './image-parameters.ts';
import { JobReply, storedReply } from './job-reply.ts';
import { MODEL_OF, produce, produced, seedFor, sourceOf, type Produced } from './generation.ts';
import { RecentJobs, type RecentJobsSource } from './estimate.ts';
import { LiveJobs, type LiveJob } from './live-jobs.ts';
import { generatingText, resultReply, upscaleReply } from './render.ts';
import { deferPublicly, replyPrivately } from './replies.ts';
import { checkCredits, dailyQuota, dailyQuotaReached, queueFull } from './admission.ts';
import type { BroughtImage } from './source-image.ts';

/** What else a request may carry besides its input and operation. */
export interface SubmitOptions {
  /** An image the member attached or uploaded: the job varies it (sdxl-img2img) at its strength. */
  brought?: BroughtImage;
  /** Answer only the member (their /settings say results are private). */
  private?: boolean;
  /**
   * The server whose budgets the job counts against when the click comes from outside it (a button
   * under a result sent to the member directly): the server of the job the button belongs to.
   */
  budgetGuildId?: string | null;
}

type StopReason = 'deadline' | 'shutdown';

/**
 * Everything a bot process has, except the service itself, and its Discord client; `recent` when the
 * jobs' durations are shared by several processes (a gateway process runs none of its own).
 */
type ServiceDeps = Omit<BotContext, 'imagine'> & {
  discord: Client;
  recent?: RecentJobsSource;
  /** Claimed before a job is submitted, by every run of it. */
  submits: SubmitClaims;
  metrics: BotMetrics;
};

/** How often a run that found a job's submit claim held looks again whether the holder ended it or died. */
const HELD_CLAIM_POLL_MS = 500;

const STOP_MESSAGES: Record<StopReason, string> = {
  deadline:
    '\u23f1\ufe0f This job could not finish within Discord\u2019s 15-minute window, so it was stopped. Try again when the queue is shorter.',
  shutdown: RESTARTING_MESSAGE,
};

/**
 * The life of an `/imagine` job: checks, queue, generation, result. Commands and buttons call
 * `submit`; the queue calls `run`. Knows the queue and store only by their interfaces.
 */
export class ImagineService {
  /** The jobs this process serves, and their replies. */
  private readonly live: LiveJobs;
  /** This process's run of each job it runs: a second run of one (a shared queue handing it out again) waits for it. */
  private readonly runs = new Map<string, Promise<void>>();
  /** Resumed jobs still waiting for their result, for a shutdown to wait on. */
  private readonly resuming = new Set<Promise<void>>();
  /** How long the last jobs took: what a waiting job's start estimate is made from. */
  private readonly recent: RecentJobsSource;
  private readonly deps: ServiceDeps;
  private closing = false;
  /** Requests of this process past the per-user check and not yet in line, by member. */
  private readonly submitting = new Map<string, number>();

  constructor(deps: ServiceDeps) {
    this.deps = deps;
    this.recent = deps.recent ?? new RecentJobs();
    this.live = new LiveJobs({
      ...deps,
      recent: this.recent,
      onDeadline: (jobId) => void this.stop(jobId, 'deadline'),
    });
  }

  /** Starts serving the queue. */
  start(): void {
    this.deps.queue.start(
      (ticket) => this.run(ticket),
      (moved) => {
        for (const { jobId, position } of moved) this.live.showPosition(jobId, position);
      },
      // A shared queue: another process started it and answers it from now on.
      (jobId) => this.live.forget(jobId),
      (ticket) => void this.gaveUp(ticket),
    );
  }

  /**
   * Checks a request and queues it. Cheap checks run before the acknowledgement so a refusal is one
   * private reply; the rest run after `deferReply`.
   * @throws {BotRefusal} or the client's `invalid_request` error, for the error boundary to word.
   */
  async submit(
    interaction: RepliableInteraction,
    input: GenerateInput,
    given?: JobOperation,
    options: SubmitOptions = {},
  ): Promise<void> {
    const { config, sdxl, queue } = this.deps;
    // On a shared queue, a command this copy claimed before it began to stop is queued for the others.
    if (this.closing && !queue.shared) throw new BotRefusal('shutting_down', STOP_MESSAGES.shutdown);
    if (!queue.available()) throw new BotRefusal('busy', BUSY_MESSAGE);
    const request = sdxl.validate(input);
    // An upscale makes one image whatever the source job asked for.
    const samples = given?.kind === 'upscale' ? 1 : request.samples;
    checkBannedWords(request.prompt, config.bannedWords);
    // Before the acknowledgement, so the refusal is the private first answer: sent after it, as a
    // follow-up, it counts against the channel's webhook messages, and a burst of them draws 429s.
    // Requests of this process not yet in line count too (one member's commands sent at once).
    const userId = interaction.user.id;
    const userJobs = (await queue.userJobs(userId)) + (this.submitting.get(userId) ?? 0);
    if (userJobs >= config.userQueueLimit) throw queueFull(userJobs, config.userQueueLimit);
    this.submitting.set(userId, (this.submitting.get(userId) ?? 0) + 1);
    try {
      await this.enter(interaction, input, samples, given, options);
    } finally {
      const left = (this.submitting.get(userId) ?? 1) - 1;
      if (left > 0) this.submitting.set(userId, left);
      else this.submitting.delete(userId);
    }
  }

  /** The rest of `submit` once the cheap checks passed: credits, then the job's budgets, then `accept`. */
  private async enter(
    interaction: RepliableInteraction,
    input: GenerateInput,
    samples: number,
    given: JobOperation | undefined,
    options: SubmitOptions,
  ): Promise<void> {
    await checkCredits(this.deps);
    // Held before anything public shows, so a refusal stays private; let go if the job is not queued.
    await this.deps.budgets.holding(
      budgetScope(interaction, options.budgetGuildId),
      options.brought ? 'vary' : given?.kind,
      samples,
      (reservation) => this.accept(interaction, input, samples, given, options, reservation),
    );
  }

  /** Stores and queues a checked request whose estimate is held (`reservation`). */
  private async accept(
    interaction: RepliableInteraction,
    input: GenerateInput,
    samples: number,
    given: JobOperation | undefined,
    options: SubmitOptions,
    reservation: Reservation | undefined,
  ): Promise<void> {
    const { config, store, queue, logger } = this.deps;
    const messageId = await deferPublicly(interaction, { private: options.private });
    // A file that turns out not to be an image is refused here: after the acknowledgement (a download may
    // take longer than Discord's 3 seconds), before anything is stored, queued or billed.
    const source = options.brought && (await options.brought.image);

    const userId = interaction.user.id;
    const now = Date.now();
    const id = randomUUID().replaceAll('-', '');
    const operation: JobOperation | undefined =
      source && options.brought
        ? {
            kind: 'vary',
            sourceJobId: id,
            sourceIndex: SOURCE_IMAGE_INDEX,
            strength: options.brought.strength,
            sourceName: source.name,
          }
        : given;

    const job: JobRecord = {
      id,
      userId,
      guildId: interaction.guildId,
      channelId: interaction.channelId,
      input,
      samples,
      status: 'queued',
      createdAt: now,
      ...(operation && { operation }),
      // Kept so that a restarted process can still edit the reply (see `recover`).
      reply: storedReply(interaction, messageId, options.private ? 'private' : undefined),
      // Kept so that whichever process ends the job settles it, after a restart too.
      ...(reservation && { reservation }),
    };
    const quota = await store.createWithinQuota(job, dailyQuota(now, config.userDailyImages));
    if (!quota.created) throw dailyQuotaReached(now, quota.used, config.userDailyImages, samples);
    if (source) {
      // Kept with the job, so 🔄 and ✏️ can vary the same image again, after a restart too.
      await store.saveImages([
        { jobId: id, index: SOURCE_IMAGE_INDEX, seed: 0, mimeType: source.mimeType, bytes: source.bytes },
      ]);
    }
    this.live.serve(job, JobReply.live(this.deps.discord, job, interaction), interaction.createdTimestamp);
    const ticket: QueueTicket = { jobId: job.id, userId, images: job.samples };
    const queued = await queue.enqueue(ticket, { perUserLimit: config.userQueueLimit });
    if (!queued.accepted) {
      this.live.forget(job.id);
      await store.update(job.id, { status: 'refused' });
      if (queued.reason === 'closed') throw new BotRefusal('shutting_down', STOP_MESSAGES.shutdown);
      throw queueFull(queued.userJobs, config.userQueueLimit);
    }
    logger.info(
      { jobId: job.id, userId, samples: job.samples, operation: operation?.kind, position: queued.position },
      'job queued',
    );
    // Position 0 (out of line at once) is shown by the queue only if the job then waits for the pace.
    if (queued.position > 0) this.live.showPosition(job.id, queued.position);
  }

  /**
   * The queue's worker: submits one job, stores its request id, waits for it, stores and posts the
   * result. A ticket this process did not take (a shared queue) is served from the store. However
   * often a shared queue hands a job out, it is submitted at most once: a second run in this process
   * waits for the first, and every run takes the job's submit claim first (see `claimAndRun`).
   */
  async run(ticket: QueueTicket): Promise<void> {
    const first = this.runs.get(ticket.jobId);
    if (first) {
      this.deps.logger.debug(
        { jobId: ticket.jobId },
        'job handed out again while it runs here: waiting for it',
      );
      await first;
      return;
    }
    await this.runAlone(ticket.jobId, () => this.claimAndRun(ticket));
  }

  /** Runs `work` as this process's one run of a job. */
  private async runAlone(jobId: string, work: () => Promise<void>): Promise<void> {
    const run = work().finally(() => this.runs.delete(jobId));
    this.runs.set(jobId, run);
    await run;
  }

  /**
   * The first run to claim a job's submit sends it. A run that finds the claim held by a live run (in
   * another process) waits for that run to end the job; once the holder is gone (its process died) it
   * takes over: by the request id when the submit got that far, never by submitting again.
   */
  private async claimAndRun(ticket: QueueTicket): Promise<void> {
    const { submits, logger } = this.deps;
    let claim = await submits.claim(ticket.jobId);
    if (claim.state === 'held')
      logger.debug({ jobId: ticket.jobId }, 'job handed out again while another process runs it: waiting');
    while (claim.state === 'held') {
      if (this.closing || (await this.ended(ticket.jobId))) return;
      await wait(HELD_CLAIM_POLL_MS);
      claim = await submits.claim(ticket.jobId);
    }
    try {
      if (claim.state === 'mine') await this.runFirst(ticket, claim.hold);
      else await this.takeOver(ticket, claim.hold, claim.requestId);
    } finally {
      await claim.hold
        .release()
        .catch((error: unknown) =>
          logger.debug({ jobId: ticket.jobId, err: error }, 'could not release a submit claim'),
        );
    }
  }

  /** Whether a job has ended (or is gone), by the store. */
  private async ended(jobId: string): Promise<boolean> {
    const job = await this.deps.store.get(jobId);
    return !job || (job.status !== 'queued' && job.status !== 'running');
  }

  /**
   * A run that holds the claim of one that died: a job still `queued` was never sent (the submit
   * follows the move to `running`), so it runs now; a running one is resumed by its request id, or,
   * without one, not sent again (see `recover`).
   */
  private async takeOver(ticket: QueueTicket, hold: SubmitHold, requestId?: string): Promise<void> {
    const job = await this.deps.store.get(ticket.jobId);
    if (!job || (job.status !== 'queued' && job.status !== 'running')) return;
    if (job.status === 'queued') return this.runFirst(ticket, hold);
    // Served here only for the process that queued it: its live entry answers no more.
    this.live.forget(job.id);
    await this.recover({ ...job, ...(requestId && !job.requestId && { requestId }) });
  }

  /**
   * A shared queue gave up on a job (it stalled more often than allowed, or its start failed): unless a
   * live run still holds it, the job ends here, visibly. A submitted one is billed, so it is resumed and
   * posted; one never sent is told it was stopped, nothing billed.
   */
  async gaveUp(ticket: QueueTicket): Promise<void> {
    if (this.runs.has(ticket.jobId)) return;
    await this.runAlone(ticket.jobId, async () => {
      const { submits, store, logger } = this.deps;
      try {
        const claim = await submits.claim(ticket.jobId);
        if (claim.state === 'held') return;
        try {
          const job = await store.get(ticket.jobId);
          if (!job || (job.status !== 'queued' && job.status !== 'running')) return;
          if (job.status === 'running') {
            this.live.forget(job.id);
            await this.recover({
              ...job,
              ...(claim.requestId && !job.requestId && { requestId: claim.requestId }),
            });
            return;
          }
          const live =
            this.live.get(job.id) ??
            this.live.serve(job, JobReply.stored(this.deps.discord, job), job.createdAt);
          logger.warn(
            { jobId: job.id },
            'the queue gave up on a job before it started: told, nothing billed',
          );
          await this.live.answer(live, {
            content: `\u26a0\ufe0f **${String(job.input.prompt).slice(0, 200)}** \u2014 the bot lost this job in its queue before it started, so it was stopped; nothing was billed. Run it again.`,
            embeds: [],
            components: [],
            files: [],
          });
          this.live.forget(job.id);
          await this.deps.budgets.release(job);
          await this.markFailed(job.id, 'lost');
        } finally {
          await claim.hold.release();
        }
      } catch (error) {
        logger.error({ jobId: ticket.jobId, err: error }, 'could not end a job the queue gave up on');
      }
    });
  }

  /** The run that sends the job: submits it, stores its request id, waits for it, posts the result. */
  private async runFirst(ticket: QueueTicket, hold: SubmitHold): Promise<void> {
    const live = this.live.get(ticket.jobId) ?? (await this.adoptQueued(ticket.jobId));
    if (!live) {
      // Started by a process from before submit claims: resumed by its request id, never sent again.
      const job = await this.deps.store.get(ticket.jobId);
      if (job?.status === 'running') await this.recover(job);
      return;
    }
    if (live.controller.signal.aborted) {
      // Stopped in the instant between leaving the line and starting: nothing was sent.
      await this.answerStopped(live, live.controller.signal.reason as StopReason);
      return;
    }
    const { store } = this.deps;
    const { job, controller } = live;
    clearTimeout(live.positionTimer);
    live.startedAt = Date.now();
    this.deps.logger.info({ jobId: job.id }, 'job running');
    try {
      // Out of line: the ❌ Cancel of the waiting message goes.
      await this.live.edit(live, {
        content: generatingText(String(job.input.prompt), job.samples, job.operation),
        components: [],
      });
      const source = await sourceOf(this.deps.store, job);
      // The seed is drawn here, not by the client, so that a resumed job still knows it.
      job.seed = source?.seed ?? seedFor(job.input);
      // From here the submit may leave: a crash before its request id is stored leaves a `running` job
      // without one, which a restart does not send again (see `recover`).
      await store.update(job.id, { status: 'running', seed: job.seed });
      const result = await produce(this.deps.sdxl, job, source, {
        signal: controller.signal,
        onAttempt: () => (live.sent = true),
        onAttemptFailed: this.countRateLimit,
        onSubmitted: async (submitted: AsyncTicket) => {
          // Awaited by the client before its first status check.
          job.requestId = submitted.requestId;
          live.submitted = true;
          await Promise.all([
            store.update(job.id, { requestId: submitted.requestId }),
            hold.submitted(submitted.requestId),
          ]);
        },
      });
      await this.finish(live, result);
    } catch (error) {
      await this.failed(live, error);
    } finally {
      this.live.forget(job.id);
    }
  }

  /**
   * Picks up a job a previous process left unfinished, by what the store holds: after a crash or a
   * `kill -9` (the bot calls it for every unfinished job when it starts), or for a job whose worker
   * died (a shared queue's stalled job). With a store shared by several live processes, call it only
   * for jobs no live process is serving.
   * - Submitted (it has a `requestId`): its request is polled again, never resubmitted, so the job is
   *   billed once; the images are stored and the result posted: edited into the original reply while
   *   the interaction token lives, else posted in the channel mentioning the requester. Resolves once
   *   the result is posted (or the failure told).
   * - Queued and never submitted: nothing was billed and the requester is waiting for the images, so
   *   it goes back in line (oldest first, as `unfinished` lists them) and runs as if nothing happened,
   *   its position shown as the line moves; one whose deadline has passed is told it was not started.
   *   Resolves once it is back in line.
   * - Running without a request id: the submit may have reached the API just before the crash, and
   *   sending it again could bill twice, so it is not sent again; the requester is told to run it again.
   * Never rejects: a failure is logged and, where Discord still takes it, told to the requester.
   */
  async recover(job: JobRecord): Promise<void> {
    const { queue, logger } = this.deps;
    if (this.live.has(job.id) || (job.status !== 'queued' && job.status !== 'running')) return;
    const live = this.live.serve(job, JobReply.stored(this.deps.discord, job), job.createdAt);
    try {
      if (job.requestId) {
        live.submitted = true;
        live.sent = true;
        logger.info({ jobId: job.id }, 'resuming a submitted job');
        const resumed = this.resume(live);
        this.resuming.add(resumed);
        await resumed.finally(() => this.resuming.delete(resumed));
        return;
      }
      if (job.status === 'running') {
        logger.warn({ jobId: job.id }, 'a job was being sent when the bot stopped: not sent again');
        // It may have reached the API and been billed: its estimate counts.
        await this.deps.budgets.settle(job, undefined);
        await this.live.answer(live, {
          content: `\ud83d\udd01 **${String(job.input.prompt).slice(0, 200)}** \u2014 the bot restarted while this job was being sent, so it was stopped (it is not sent twice, so it is billed at most once). Run it again.`,
          embeds: [],
          components: [],
          files: [],
        });
        await this.markFailed(job.id, 'restart');
        this.live.forget(job.id);
        return;
      }
      // Past its deadline it is told here, not put in line: a free slot would start it at once.
      if (live.controller.signal.aborted || job.createdAt + this.deps.config.jobDeadlineMs <= Date.now()) {
        const reason = live.controller.signal.aborted
          ? (live.controller.signal.reason as StopReason)
          : 'deadline';
        await this.answerStopped(live, reason);
        return;
      }
      const ticket: QueueTicket = { jobId: job.id, userId: job.userId, images: job.samples };
      // It was accepted before the restart: the per-user limit was checked then.
      const queued = await queue.enqueue(ticket, { perUserLimit: Number.POSITIVE_INFINITY });
      if (!queued.accepted) {
        await this.answerStopped(live, 'shutdown');
        return;
      }
      logger.info({ jobId: job.id, position: queued.position }, 'job back in line after a restart');
      if (queued.position > 0) this.live.showPosition(job.id, queued.position);
    } catch (error) {
      logger.error({ jobId: job.id, err: error }, 'could not recover the job');
      this.live.forget(job.id);
    }
  }

  /**
   * On start, before new commands: recovers every job the last process left unfinished (see
   * `recover`), oldest first. Resolves once each is back in line or resumed; resumed jobs go on.
   */
  async recoverUnfinished(): Promise<number> {
    // A shared queue keeps its jobs while processes come and go: the waiting ones stay in line, and a
    // running one whose process died is handed to a live process by the queue (see `run`), never
    // picked up here while another process may be serving it.
    if (this.deps.queue.shared) return 0;
    const unfinished = await this.deps.store.unfinished();
    for (const job of unfinished) {
      if (job.requestId) void this.recover(job);
      else await this.recover(job);
    }
    return unfinished.length;
  }

  /** Polls a submitted job's request again and posts its result. */
  private async resume(live: LiveJob): Promise<void> {
    const { sdxl } = this.deps;
    const { job, controller } = live;
    try {
      const kind = job.operation?.kind ?? 'imagine';
      const result = await sdxl.resume(job.requestId!, {
        model: MODEL_OF[kind],
        signal: controller.signal,
        onAttemptFailed: this.countRateLimit,
      });
      await this.finish(live, produced(job, result));
    } catch (error) {
      await this.failed(live, error);
    } finally {
      this.live.forget(job.id);
    }
  }

  /** A job's result: credits counted, images stored, the job marked done, the result posted. */
  private async finish(live: LiveJob, produced: Produced): Promise<void> {
    const { store, credits, config, logger } = this.deps;
    const { job, reply } = live;
    const result = config.embedParameters
      ? { ...produced, images: withJobParameters(job, produced) }
      : produced;
    await this.deps.budgets.settle(job, result.cost);
    job.seed = result.seed;
    job.remainingCredits = result.remainingCredits;
    const low =
      (await credits.jobSucceeded({
        remaining: result.remainingCredits,
        cost: result.cost,
        images: result.images.length,
      })) ?? result.lowCredits;
    await store.saveImages(
      result.images.map((image) => ({
        jobId: job.id,
        index: image.index,
        seed: image.seed,
        mimeType: image.mimeType,
        bytes: image.bytes,
      })),
    );
    await store.update(job.id, {
      status: 'done',
      seed: result.seed,
      finishedAt: Date.now(),
      reply: undefined,
      ...(result.remainingCredits !== undefined && { remainingCredits: result.remainingCredits }),
    });
    const details = {
      remainingCredits: result.remainingCredits,
      lowCredits: low,
      spoiler: config.spoiler,
      adminsTold: Boolean(config.adminChannelId),
      attachmentLimit: reply.attachmentLimit,
      gallery: config.mediaGallery,
    };
    const message =
      job.operation?.kind === 'upscale'
        ? await upscaleReply(job, result.images[0]!, { ...details, scale: job.operation.scale })
        : await resultReply(job, result.images, details);
    const where = await reply.finish(message);
    // Until the result is posted: the job holds its images in the queue until then.
    const ms = live.startedAt === undefined ? undefined : Date.now() - live.startedAt;
    if (ms !== undefined) this.recent.add({ ms, images: result.images.length });
    this.deps.metrics.jobFinished(ms === undefined ? undefined : ms / 1000);
    logger.info(
      { jobId: job.id, seed: result.seed, remainingCredits: result.remainingCredits, posted: where },
      'job done',
    );
  }

  /** Tells the requester why a job ended without images, and records it; never rejects. */
  private async failed(live: LiveJob, error: unknown): Promise<void> {
    const { credits, config, logger } = this.deps;
    const { job, controller, reply } = live;
    const reason = controller.signal.reason as StopReason | undefined;
    const stopped = controller.signal.aborted && (reason === 'deadline' || reason === 'shutdown');
    const code = (error as { code?: string }).code;
    if (stopped && live.submitted) {
      // Only a shutdown stops a submitted job, and only the waiting: the job goes on at the API and the
      // next start resumes it by its stored request id, so it stays `running`.
      logger.info({ jobId: job.id }, 'stopped waiting for a submitted job; the next start resumes it');
      await this.live.edit(live, {
        content: `\ud83d\udd01 **${String(job.input.prompt).slice(0, 200)}** \u2014 the bot is restarting; this job was already sent and its images are posted when the bot is back.`,
      });
      return;
    }
    await this.deps.budgets.failed(job, error, { sent: live.sent, accepted: live.submitted });
    if (code === 'insufficient_credits') await credits.outOfCredits().catch(() => undefined);
    logger.warn({ jobId: job.id, code, reason: stopped ? reason : undefined, err: error }, 'job failed');
    const text = stopped
      ? STOP_MESSAGES[reason]
      : userMessage(error, { adminsTold: Boolean(config.adminChannelId) });
    if (code === 'insufficient_credits' && reply.interaction?.isRepliable()) {
      // Credits ran out after the request was accepted: the refusal goes to the requester only,
      // and the public "is thinking…" (or position) is removed.
      await replyPrivately(reply.interaction, text).catch((replyError: unknown) =>
        logger.warn({ jobId: job.id, err: replyError }, 'could not tell the user'),
      );
    } else await this.live.answer(live, { content: text, embeds: [], components: [], files: [] });
    await this.markFailed(job.id, stopped ? reason : (code ?? 'internal')).catch((storeError: unknown) =>
      logger.error({ jobId: job.id, err: storeError }, 'could not record the failure'),
    );
  }

  /**
   * ❌ Cancel: takes a job out of line before it is sent. Nothing was billed, so its images do not
   * count against the daily quota. A job already sent (or leaving the line this instant) goes on: the
   * API has no cancel, and it is billed either way. The reply says who cancelled it; the click is
   * acknowledged only once the job is out of line, so a refusal can still be private.
   * @throws {BotRefusal} `not_cancellable` when the job started or ended.
   */
  async cancel(job: JobRecord, click: ButtonInteraction): Promise<void> {
    const { queue, logger } = this.deps;
    if (job.status !== 'queued' || !(await queue.cancel(job.id))) {
      throw new BotRefusal(
        'not_cancellable',
        job.status === 'queued' || job.status === 'running'
          ? '\u23f3 This job has already been sent to the image service, so it can no longer be cancelled (there is no way to take it back, and it is billed either way). Delete the result with \ud83d\uddd1\ufe0f if you do not want it.'
          : '\u2139\ufe0f This job is no longer waiting, so there is nothing to cancel.',
      );
    }
    await this.deps.budgets.release(job);
    await click.deferUpdate();
    // A position edit begun before the cancel (here or in the copy that queued the job) lands first.
    await queue.editsSettled(job.id);
    const by = click.user.id === job.userId ? '' : ` by <@${click.user.id}>`;
    const message = {
      content: `\u274c **${String(job.input.prompt).slice(0, 200)}** \u2014 cancelled${by} before it started; nothing was billed.`,
      components: [],
      allowedMentions: { parse: [] },
    };
    const live = this.live.get(job.id);
    // Through the job's own reply when this process serves it: its position edits go the same route,
    // so none can land after this one.
    if (live) {
      this.live.forget(job.id);
      await this.live.answer(live, message);
    } else
      await click
        .editReply(message)
        .catch((error: unknown) => logger.warn({ jobId: job.id, err: error }, 'could not update the reply'));
    logger.info({ jobId: job.id, by: click.user.id }, 'job cancelled');
    await this.markFailed(job.id, 'cancelled');
  }

  /** Jobs this process is serving right now. */
  get liveCount(): number {
    return this.live.size;
  }

  /** Jobs this process is running right now (out of line, sent or about to be). */
  get runningCount(): number {
    return this.runs.size;
  }

  /** Whether a job of this process still answers through this interaction. */
  serves(interaction: RepliableInteraction): boolean {
    return this.live.serves(interaction);
  }

  /**
   * SIGTERM: stops taking jobs, tells waiting users theirs was not started, lets running jobs finish
   * within `graceMs`, then stops waiting for them: a job not yet submitted is told it was stopped, a
   * submitted one stays stored with its request id for the next start to resume.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.closing = true;
    const { queue } = this.deps;
    const waiting = await queue.stop();
    await Promise.all(
      waiting.map(async (ticket) => {
        const live = this.live.get(ticket.jobId);
        const job = live?.job ?? (await this.deps.store.get(ticket.jobId));
        if (job) await this.deps.budgets.release(job);
        await this.markFailed(ticket.jobId, 'shutdown');
        if (live) {
          await this.live.answer(live, {
            content:
              '\ud83d\udd01 The bot is restarting; your job had not started and was not billed. Run it again in a moment.',
            components: [],
          });
        }
        this.live.forget(ticket.jobId);
      }),
    );
    const idle = Promise.all([queue.idle(), ...this.resuming]);
    const graceOver = new AbortController();
    const timer = wait(graceMs, 'timeout', { signal: graceOver.signal }).catch(() => 'idle');
    const first = await Promise.race([idle.then(() => 'idle'), timer]);
    graceOver.abort();
    if (first === 'timeout') {
      // A shared queue keeps the jobs still waiting for the other copies: only the ones running here stop.
      for (const jobId of this.live.ids())
        if (!queue.shared || this.runs.has(jobId)) void this.stop(jobId, 'shutdown');
      await idle;
    }
  }

  /** A queued job another process took (a shared queue), served from the store. */
  private async adoptQueued(jobId: string): Promise<LiveJob | undefined> {
    const job = await this.deps.store.get(jobId);
    if (!job || job.status !== 'queued' || this.live.has(jobId)) return this.live.get(jobId);
    return this.live.serve(job, JobReply.stored(this.deps.discord, job), job.createdAt);
  }

  /**
   * Called from timers, so it never rejects: a failure is logged, not left to crash the process.
   * The deadline does not stop a submitted job: it is billed, so it is seen through and posted (in the
   * channel once its reply can no longer be edited).
   */
  private async stop(jobId: string, reason: StopReason): Promise<void> {
    const live = this.live.get(jobId);
    if (!live || live.controller.signal.aborted || (reason === 'deadline' && live.submitted)) return;
    live.controller.abort(reason);
    try {
      // A job still waiting never reaches the worker: answer it here. A running one answers in `run`.
      if (await this.deps.queue.cancel(jobId)) await this.answerStopped(live, reason);
    } catch (error) {
      this.deps.logger.error({ jobId, reason, err: error }, 'could not stop the job');
    }
  }

  private async answerStopped(live: LiveJob, reason: StopReason): Promise<void> {
    // The user hears first: a store that fails must not keep them waiting for an answer that never comes.
    await this.live.answer(live, { content: STOP_MESSAGES[reason], components: [] });
    this.live.forget(live.job.id);
    // Stopped before it was sent: nothing was billed.
    await this.deps.budgets.release(live.job);
    await this.markFailed(live.job.id, reason);
  }

  /** Counts the image service's 429s, retried or not. */
  private readonly countRateLimit = (error: SdxlError): void => {
    if (error.code === 'rate_limited') this.deps.metrics.rateLimitedBy('segmind');
  };

  /** Records that a job ended without images, and why (an API error code or the bot's own reason). */
  private async markFailed(jobId: string, reason: string): Promise<void> {
    this.deps.metrics.jobFailed(reason);
    await this.deps.store.update(jobId, {
      status: 'failed',
      error: reason,
      finishedAt: Date.now(),
      reply: undefined,
    });
  }
}
