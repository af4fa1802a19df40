import { randomInt, randomUUID } from 'node:crypto';
import { setTimeout as wait } from 'node:timers/promises';
import type { GenerateInput, GeneratedImage } from '@sdxl-kit/client';
import type { RepliableInteraction } from 'discord.js';
import { checkBannedWords } from '../access.ts';
import type { BotContext } from '../context.ts';
import { releaseInteraction } from '../discord-memory.ts';
import { BotRefusal, outOfCreditsMessage, userMessage } from '../errors.ts';
import type { QueueTicket } from '../queue/types.ts';
import { SOURCE_IMAGE_INDEX, type JobOperation, type JobRecord } from '../store/job-store.ts';
import { DEFAULT_ATTACHMENT_LIMIT, generatingText, queuedText, resultReply, upscaleReply } from './render.ts';
import { deferPublicly, replyPrivately } from './replies.ts';
import type { BroughtImage } from './source-image.ts';

/** What else a request may carry besides its input and operation. */
export interface SubmitOptions {
  /** An image the member attached or uploaded: the job varies it (sdxl-img2img) at its strength. */
  brought?: BroughtImage;
  /** Answer only the member (their /settings say results are private). */
  private?: boolean;
}

/** Position edits for one job are spaced at least this far apart (interaction webhooks are rate limited). */
const POSITION_EDIT_SPACING_MS = 3_000;

type StopReason = 'deadline' | 'shutdown';

/** What any of the bot's calls gives back, images with their seeds. */
interface Produced {
  images: GeneratedImage[];
  seed: number;
  remainingCredits?: number;
  cost?: number;
  lowCredits: boolean;
}

/** A job this process is serving: the interaction to answer and how to stop it. */
interface LiveJob {
  job: JobRecord;
  interaction: RepliableInteraction;
  controller: AbortController;
  deadline: NodeJS.Timeout;
  shownPosition?: number;
  pendingPosition?: number;
  lastEditAt: number;
  positionTimer?: NodeJS.Timeout;
}

/** Everything a bot process has, except the service itself. */
type ServiceDeps = Omit<BotContext, 'imagine'>;

/** How long a request waits for the free balance call before its acknowledgement. */
const CREDIT_CHECK_MS = 1_500;

function utcMidnight(now: number): number {
  const date = new Date(now);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
}

const STOP_MESSAGES: Record<StopReason, string> = {
  deadline:
    '\u23f1\ufe0f This job could not finish within Discord\u2019s 15-minute window, so it was stopped. Try again when the queue is shorter.',
  shutdown: '\ud83d\udd01 The bot is restarting and this job was stopped. Run it again in a moment.',
};

/**
 * The life of an `/imagine` job: checks, queue, generation, result. Commands and buttons call
 * `submit`; the queue calls `run`. Knows the queue and store only by their interfaces.
 */
export class ImagineService {
  private readonly live = new Map<string, LiveJob>();
  private readonly deps: ServiceDeps;
  private closing = false;

  constructor(deps: ServiceDeps) {
    this.deps = deps;
  }

  /** Starts serving the queue. */
  start(): void {
    this.deps.queue.start(
      (ticket) => this.run(ticket),
      (moved) => {
        for (const { jobId, position } of moved) this.showPosition(jobId, position);
      },
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
    const { config, sdxl, store, queue, logger } = this.deps;
    if (this.closing) throw new BotRefusal('shutting_down', STOP_MESSAGES.shutdown);
    const request = sdxl.validate(input);
    // An upscale makes one image whatever the source job asked for.
    const samples = given?.kind === 'upscale' ? 1 : request.samples;
    checkBannedWords(request.prompt, config.bannedWords);
    await this.checkCredits();
    await deferPublicly(interaction, { private: options.private });
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
    };
    const quota = await store.createWithinQuota(job, {
      since: utcMidnight(now),
      limit: config.userDailyImages === 0 ? Number.POSITIVE_INFINITY : config.userDailyImages,
    });
    if (!quota.created) {
      const resets = Math.floor((utcMidnight(now) + 86_400_000) / 1000);
      throw new BotRefusal(
        'daily_quota',
        `\ud83d\udcc5 Daily limit: you have made ${quota.used} of your ${config.userDailyImages} images today and this asks for ${samples}. The limit resets <t:${resets}:R>.`,
      );
    }
    if (source) {
      // Kept with the job, so 🔄 and ✏️ can vary the same image again, after a restart too.
      await store.saveImages([
        { jobId: id, index: SOURCE_IMAGE_INDEX, seed: 0, mimeType: source.mimeType, bytes: source.bytes },
      ]);
    }
    const controller = new AbortController();
    const remaining = interaction.createdTimestamp + config.jobDeadlineMs - Date.now();
    const live: LiveJob = {
      job,
      interaction,
      controller,
      deadline: setTimeout(() => void this.stop(job.id, 'deadline'), Math.max(0, remaining)),
      lastEditAt: 0,
    };
    this.live.set(job.id, live);
    const ticket: QueueTicket = { jobId: job.id, userId, images: job.samples };
    const queued = await queue.enqueue(ticket, { perUserLimit: config.userQueueLimit });
    if (!queued.accepted) {
      this.forget(job.id);
      await store.update(job.id, { status: 'refused' });
      if (queued.reason === 'closed') throw new BotRefusal('shutting_down', STOP_MESSAGES.shutdown);
      throw new BotRefusal(
        'user_queue_full',
        `\u270b You already have ${queued.userJobs} job${queued.userJobs === 1 ? '' : 's'} in line (the limit is ${config.userQueueLimit} per person). Wait for one to finish, then try again.`,
      );
    }
    logger.info(
      { jobId: job.id, userId, samples: job.samples, operation: operation?.kind, position: queued.position },
      'job queued',
    );
    // Position 0 (out of line at once) is shown by the queue only if the job then waits for the pace.
    if (queued.position > 0) this.showPosition(job.id, queued.position);
  }

  /**
   * Before the public "is thinking…": a deferred reply cannot turn private later, so a request the
   * account cannot pay for is refused privately here. The balance call is free; it is made while the
   * balance is unknown (a fresh start), low, or out, and waits at most `CREDIT_CHECK_MS` so the
   * acknowledgement stays inside Discord's 3 seconds. Unanswered: the job goes on, as before, unless
   * the API already said the account is out.
   */
  private async checkCredits(): Promise<void> {
    const { config, sdxl, credits } = this.deps;
    const out = await credits.isOut();
    const known = credits.lastKnown;
    if (!out && known !== undefined && known >= config.lowCreditsThreshold) return;
    const balance = await Promise.race([
      sdxl.getCredits().catch(() => undefined),
      wait(CREDIT_CHECK_MS, undefined, { ref: false }),
    ]);
    if (balance ? await credits.balanceChecked(balance.total) : !out) return;
    if (balance) await credits.outOfCredits().catch(() => undefined);
    throw new BotRefusal(
      'out_of_credits',
      `\ud83d\udcb8 ${outOfCreditsMessage(Boolean(config.adminChannelId))}`,
    );
  }

  /** The queue's worker: generates, stores and posts one job. */
  async run(ticket: QueueTicket): Promise<void> {
    const live = this.live.get(ticket.jobId);
    if (!live) return;
    if (live.controller.signal.aborted) {
      // Stopped in the instant between leaving the line and starting: nothing was sent.
      await this.answerStopped(live, live.controller.signal.reason as StopReason);
      return;
    }
    const { store, credits, config, logger } = this.deps;
    const { job, interaction, controller } = live;
    clearTimeout(live.positionTimer);
    try {
      await store.update(job.id, { status: 'running' });
      await this.edit(live, {
        content: generatingText(String(job.input.prompt), job.samples, job.operation),
      });
      const result = await this.produce(job, controller.signal);
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
        ...(result.remainingCredits !== undefined && { remainingCredits: result.remainingCredits }),
      });
      const details = {
        remainingCredits: result.remainingCredits,
        lowCredits: low,
        spoiler: config.spoiler,
        adminsTold: Boolean(config.adminChannelId),
        attachmentLimit: interaction.attachmentSizeLimit ?? DEFAULT_ATTACHMENT_LIMIT,
      };
      const reply =
        job.operation?.kind === 'upscale'
          ? await upscaleReply(job, result.images[0]!, { ...details, scale: job.operation.scale })
          : await resultReply(job, result.images, details);
      await interaction.editReply(reply);
      logger.info(
        { jobId: job.id, seed: result.seed, remainingCredits: result.remainingCredits },
        'job done',
      );
    } catch (error) {
      const reason = controller.signal.reason as StopReason | undefined;
      const stopped = controller.signal.aborted && (reason === 'deadline' || reason === 'shutdown');
      const code = (error as { code?: string }).code;
      if (code === 'insufficient_credits') await credits.outOfCredits().catch(() => undefined);
      logger.warn({ jobId: job.id, code, reason: stopped ? reason : undefined, err: error }, 'job failed');
      if (code === 'insufficient_credits' && interaction.isRepliable()) {
        // Credits ran out after the request was accepted: the refusal goes to the requester only,
        // and the public "is thinking…" (or position) is removed.
        await replyPrivately(
          interaction,
          userMessage(error, { adminsTold: Boolean(config.adminChannelId) }),
        ).catch((replyError: unknown) =>
          logger.warn({ jobId: job.id, err: replyError }, 'could not tell the user'),
        );
      } else
        await this.edit(live, {
          content: stopped
            ? STOP_MESSAGES[reason]
            : userMessage(error, { adminsTold: Boolean(config.adminChannelId) }),
          embeds: [],
          components: [],
          files: [],
        });
      await store
        .update(job.id, {
          status: 'failed',
          finishedAt: Date.now(),
          error: stopped ? reason : (code ?? 'internal'),
        })
        .catch((storeError: unknown) =>
          logger.error({ jobId: job.id, err: storeError }, 'could not record the failure'),
        );
    } finally {
      this.forget(job.id);
    }
  }

  /**
   * One billed call: txt2img for /imagine, img2img (V1–V4, Vary) or esrgan (Upscale) of a stored image,
   * which goes to the client as a Buffer.
   */
  private async produce(job: JobRecord, signal: AbortSignal): Promise<Produced> {
    const { sdxl, store } = this.deps;
    const operation = job.operation;
    if (!operation) return sdxl.generate(job.input, { signal });
    const source = await store.image(operation.sourceJobId, operation.sourceIndex);
    if (!source)
      throw new BotRefusal('expired', '\u231b This image is no longer stored. Run /imagine again.');
    if (operation.kind === 'upscale') {
      const result = await sdxl.upscale({ image: source.bytes, scale: operation.scale }, { signal });
      return {
        ...result,
        seed: source.seed,
        images: result.images.map((image) => ({ ...image, seed: source.seed })),
      };
    }
    const input = job.input;
    // The settings of the source job that apply to img2img, as the user chose them; a new seed unless one is set.
    const seed = input.seed === undefined || input.seed === -1 ? randomInt(0, 2 ** 31) : input.seed;
    const result = await sdxl.vary(
      {
        image: source.bytes,
        prompt: input.prompt,
        strength: operation.strength,
        seed,
        ...(input.negativePrompt !== undefined && { negativePrompt: input.negativePrompt }),
        ...(input.samples !== undefined && { samples: input.samples }),
        ...(input.scheduler !== undefined && { scheduler: input.scheduler }),
        ...(input.steps !== undefined && { steps: input.steps }),
        ...(input.guidanceScale !== undefined && { guidanceScale: input.guidanceScale }),
      },
      { signal },
    );
    const used = result.seed ?? seed;
    return {
      ...result,
      seed: used,
      images: result.images.map((image) => ({ ...image, seed: image.seed ?? used })),
    };
  }

  /** Jobs this process is serving right now. */
  get liveCount(): number {
    return this.live.size;
  }

  /** Whether a job of this process still answers through this interaction. */
  serves(interaction: RepliableInteraction): boolean {
    for (const live of this.live.values()) if (live.interaction === interaction) return true;
    return false;
  }

  /**
   * SIGTERM: stops taking jobs, tells waiting users theirs was not started, lets running jobs finish
   * within `graceMs`, then stops them and says so.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.closing = true;
    const { queue, store } = this.deps;
    const waiting = await queue.stop();
    await Promise.all(
      waiting.map(async (ticket) => {
        const live = this.live.get(ticket.jobId);
        await store.update(ticket.jobId, { status: 'failed', error: 'shutdown', finishedAt: Date.now() });
        if (live) {
          await this.edit(live, {
            content:
              '\ud83d\udd01 The bot is restarting; your job had not started and was not billed. Run it again in a moment.',
          });
        }
        this.forget(ticket.jobId);
      }),
    );
    const idle = queue.idle();
    const graceOver = new AbortController();
    const timer = wait(graceMs, 'timeout', { signal: graceOver.signal }).catch(() => 'idle');
    const first = await Promise.race([idle.then(() => 'idle'), timer]);
    graceOver.abort();
    if (first === 'timeout') {
      for (const jobId of this.live.keys()) void this.stop(jobId, 'shutdown');
      await idle;
    }
  }

  /** Marks jobs a crash left queued or running as failed: their interaction tokens are gone. */
  async recoverAfterRestart(): Promise<number> {
    const { store } = this.deps;
    const unfinished = await store.unfinished();
    for (const job of unfinished)
      await store.update(job.id, { status: 'failed', error: 'restart', finishedAt: Date.now() });
    return unfinished.length;
  }

  /** Called from timers, so it never rejects: a failure is logged, not left to crash the process. */
  private async stop(jobId: string, reason: StopReason): Promise<void> {
    const live = this.live.get(jobId);
    if (!live || live.controller.signal.aborted) return;
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
    await this.edit(live, { content: STOP_MESSAGES[reason] });
    this.forget(live.job.id);
    await this.deps.store.update(live.job.id, { status: 'failed', error: reason, finishedAt: Date.now() });
  }

  private showPosition(jobId: string, position: number): void {
    const live = this.live.get(jobId);
    if (!live || live.shownPosition === position) return;
    live.pendingPosition = position;
    if (live.positionTimer) return;
    const delay = Math.max(0, live.lastEditAt + POSITION_EDIT_SPACING_MS - Date.now());
    live.positionTimer = setTimeout(() => {
      live.positionTimer = undefined;
      const next = live.pendingPosition;
      if (next === undefined || next === live.shownPosition || !this.live.has(jobId)) return;
      live.shownPosition = next;
      const pace = {
        maxInFlight: this.deps.config.maxInFlight,
        perMinute: this.deps.config.requestsPerMinute,
      };
      void this.edit(live, { content: queuedText(next, String(live.job.input.prompt), pace) });
    }, delay);
  }

  private async edit(
    live: LiveJob,
    options: Parameters<RepliableInteraction['editReply']>[0],
  ): Promise<void> {
    live.lastEditAt = Date.now();
    try {
      await live.interaction.editReply(options);
    } catch (error) {
      this.deps.logger.warn({ jobId: live.job.id, err: error }, 'could not update the reply');
    }
  }

  private forget(jobId: string): void {
    const live = this.live.get(jobId);
    if (!live) return;
    clearTimeout(live.deadline);
    clearTimeout(live.positionTimer);
    this.live.delete(jobId);
    releaseInteraction(live.interaction);
  }
}
