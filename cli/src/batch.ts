// The engine of a run of prompts (`sdxl imagine`, a `--prompts` batch, `sdxl grid`): each prompt sent
// through the shared limiter, its images saved and journaled, its line reported as it ends, and the
// summary and exit code once all have ended.
import {
  InvalidRequestError,
  sdxlTxt2Img,
  withParameters,
  type ApiChoice,
  type BudgetGuard,
  type EmbedOptions,
  type GenerateInput,
  type ModelResult,
  type SdxlClient,
} from '@sdxl-kit/client';
import { Calls, acceptedNothing, type TrackedCall } from './calls.ts';
import type { ContactSheet, EndedPrompt } from './contact-sheet.ts';
import { EXIT, describeError, errorJson, exitCodeFor, type HintContext } from './exit.ts';
import { saveImages, type SavedImage } from './files.ts';
import type { Journal, JournalEntry, JournaledImage, JournaledRequest } from './journal.ts';
import { announceSubmit } from './operations.ts';
import { signalExitCode, signalName, type Interrupt } from './interrupt.ts';
import { Progress, shortCredits, type Io } from './io.ts';

/** An image as `--json` prints it (and the journal keeps it). */
function imageJson(image: ModelResult['images'][number], path: string): JournaledImage {
  return {
    path,
    seed: image.seed ?? null,
    index: image.index,
    bytes: image.bytes.length,
    mimeType: image.mimeType,
  };
}

/** How a prompt of the run ended: what its line, the journal, the sheet and the summary are made of. */
interface Outcome {
  /** The prompt's place in the batch, from 0. */
  index: number;
  prompt: string;
  result?: Pick<ModelResult, 'remainingCredits' | 'lowCredits' | 'seed' | 'requestId' | 'cost'> &
    Partial<Pick<ModelResult, 'model' | 'generationTime'>>;
  /** Where each image went; with a `write_failed` error, some may be missing or kept elsewhere. */
  saved?: SavedImage<ModelResult['images'][number]>[];
  /** Images a run before this one saved, as its journal recorded them. */
  journaled?: JournaledImage[];
  /** The async request (or the sync answer's id), once known. */
  requestId?: string;
  /** Something the user should know, told on stderr as it happened. */
  warning?: string;
  error?: unknown;
}

/** One prompt of a run: its text, its own options (a .jsonl line's), its whole request and journal key. */
export interface PromptJob {
  prompt: string;
  options: Record<string, unknown>;
  /** The whole request, every default filled, as the journal keeps it. */
  request: JournaledRequest;
  key: string;
  /** Words its files are named with after the prompt (a grid cell's settings), file-name safe. */
  label?: string;
}

/** Errors after which every other prompt would fail the same way, so the batch stops spending calls. */
const STOPS_BATCH = new Set(['unauthorized', 'insufficient_credits', 'not_found', 'method_not_allowed']);

/** The calls of a run: the batch stops the moment an answer arrives that every prompt would get. */
export function batchCalls(): Calls {
  return new Calls((error) =>
    STOPS_BATCH.has(error.code) ? `the batch stopped after "${error.message}"` : undefined,
  );
}

/** What a prompt's requests that expired before they were collected were: paid for, images lost. */
function lostWords(requestIds: readonly string[]): string {
  const which =
    requestIds.length === 1 ? `Request ${requestIds[0]} was` : `Requests ${requestIds.join(', ')} were`;
  return `${which} paid for, but expired before the images were collected (Segmind keeps results an hour): the images are lost.`;
}

/** The error of a prompt whose requests expired; a journaled batch makes it again on request. */
function paidAndLost(requestIds: readonly string[], journaled: boolean): object {
  const again = journaled
    ? 'Run again with --resubmit-expired to make this prompt again (billed again).'
    : 'Run it again to make it again (billed again).';
  // Worded here in full, so the client's hint for the code ("submit again") is not added.
  return {
    code: 'request_expired',
    requestId: requestIds.at(-1),
    message: `${lostWords(requestIds)} ${again}`,
    hint: '',
  };
}

/** What a prompt aborted on the wire reports: it may be billed, and an async job can still be collected. */
function abortedOutcome(error: unknown, signal: string, journaled: boolean): object {
  const requestId = (error as { requestId?: string }).requestId;
  const message = `Aborted by a second ${signal} while the request was under way: it may have been billed, and no image was saved.`;
  if (!requestId) return { code: 'aborted', message };
  const collect = journaled ? 'run the same command again, or sdxl resume' : 'sdxl resume';
  return {
    code: 'aborted',
    requestId,
    message: `${message} It was submitted as ${requestId}: ${collect} ${requestId} collects it.`,
  };
}

/**
 * Prompts started beyond the calls the limiter lets run at once: they wait in its line, so a slot
 * that frees is taken at once while a finished prompt's images are being saved.
 */
export const WINDOW_MARGIN = 2;

/**
 * What the summary and the exit code need once every prompt has ended: counts and a few small
 * records, never a prompt's images or result.
 */
class Tally {
  /** Prompts that ended without their images (skipped ones included). */
  failed = 0;
  /** Prompts never sent: the batch stopped, or the cap was reached. */
  skipped = 0;
  /** Images on disk, earlier runs' included. */
  images = 0;
  private spentMicro = 0;
  /** The error that stopped the batch, in the order answers arrived. */
  stoppedBy: unknown;
  /** The balance the last prompt in file order reported. */
  private credits: { index: number; value: number } | undefined;
  /** The error of the first prompt in file order that failed. */
  private firstFailure: { index: number; error: unknown } | undefined;

  add(outcome: Outcome): void {
    this.images += outcome.journaled?.length ?? outcome.saved?.length ?? 0;
    const cost = outcome.result?.cost;
    if (cost !== undefined) this.spentMicro += Math.round(cost * 1_000_000);
    const code = (outcome.error as { code?: string } | undefined)?.code;
    if (code === 'skipped' || code === 'budget_exceeded') this.skipped++;
    const remaining = outcome.result?.remainingCredits;
    if (remaining !== undefined && (this.credits === undefined || outcome.index > this.credits.index)) {
      this.credits = { index: outcome.index, value: remaining };
    }
    if (outcome.error === undefined) return;
    this.failed++;
    if (this.firstFailure === undefined || outcome.index < this.firstFailure.index) {
      this.firstFailure = { index: outcome.index, error: outcome.error };
    }
  }

  /** Credits the batch's calls were billed, as reported: this run's and the journal's. */
  get spent(): number {
    return this.spentMicro / 1_000_000;
  }

  get remainingCredits(): number | undefined {
    return this.credits?.value;
  }

  /** The error of the first prompt in file order that failed, when one did. */
  get firstError(): unknown {
    return this.firstFailure?.error;
  }
}

/**
 * Runs the prompts and reports each as it ends. The batch streams: at most the limiter's calls in
 * flight plus {@link WINDOW_MARGIN} prompts are started at a time, and a prompt's images are written
 * and let go once it is reported, so memory does not grow with the number of prompts.
 */
export async function run(
  client: SdxlClient,
  prompts: readonly PromptJob[],
  base: Omit<GenerateInput, 'prompt'>,
  context: {
    io: Io;
    json: boolean;
    outDir: string;
    interrupt: Interrupt;
    calls: Calls;
    batch: boolean;
    hints: HintContext;
    api: ApiChoice;
    /** Whether generation parameters go into each image file. @default on */
    embed?: EmbedOptions;
    journal?: Journal;
    /** Submit again a prompt whose journaled request expired (paid for, images lost). */
    resubmitExpired?: boolean;
    /** The run's cap (`--max-cost`): each call holds its estimate against it before it is sent. */
    budget?: BudgetGuard;
    /** The contact sheet each ended prompt is added to. */
    sheet?: ContactSheet;
    /** Told of each prompt as it ends, after its line (a grid collects its cells' files). */
    onEnded?: (ended: EndedPrompt) => void;
    /**
     * Called once every prompt has ended, before the summary (a grid draws its picture); what it
     * returns joins the `--json` summary line.
     */
    beforeSummary?: () => Promise<Record<string, unknown>>;
  },
): Promise<number> {
  const { journal } = context;
  const { io, json, outDir, batch, interrupt, calls } = context;
  const progress = new Progress(io.stderr, !json);
  const tally = new Tally();
  let finished = 0;
  let warnedLow = false;
  const total = prompts.length;
  progress.update(batch ? `Generating 0/${total} prompts...` : `Generating ${base.samples ?? 1} image(s)...`);

  const onStop = () => {
    const name = signalName(interrupt.stop);
    const onWire = calls.stop(`stopped by ${name}`);
    progress.clear();
    io.stderr.write(
      onWire === 0
        ? `${name}: stopping; nothing more will be sent.\n`
        : `${name}: stopping; nothing more will be sent. ${onWire} ${onWire === 1 ? 'call was' : 'calls were'} already sent (and may be billed): waiting for ${onWire === 1 ? 'it' : 'them'} to finish and be saved. Interrupt again to abort now.\n`,
    );
  };
  interrupt.takeOver?.();
  if (interrupt.stop.aborted) onStop();
  else interrupt.stop.addEventListener('abort', onStop, { once: true });

  /** Everything done with a prompt once it has ended, saved or not; its outcome is let go after. */
  let sheetFailed = false;
  const ended = async (outcome: Outcome) => {
    tally.add(outcome);
    finished++;
    if (batch) progress.update(`Generating ${finished}/${total} prompts, ${tally.failed} failed...`);
    report(outcome, { io, json, batch, progress, hints: context.hints });
    context.onEnded?.(outcome);
    // The page is a view of the batch: when it cannot be written, the images still are.
    await context.sheet?.add(outcome).catch((error: Error) => {
      if (sheetFailed) return;
      sheetFailed = true;
      progress.clear();
      io.stderr.write(`Warning: the contact sheet could not be written (${error.message}).\n`);
    });
  };

  /** Tells a prompt's warning now, on stderr, and keeps it for the prompt's `--json` line. */
  const warn = (outcome: Outcome, text: string) => {
    outcome.warning = outcome.warning ? `${outcome.warning} ${text}` : text;
    progress.clear();
    io.stderr.write(`${batch ? `${outcome.prompt}: ` : ''}Warning: ${text}\n`);
  };

  /**
   * Makes one call of a prompt (`send` with the call's options) and saves its images, or records
   * its error in `outcome`. Returns whether the call found its request expired.
   */
  const make = async (
    job: PromptJob,
    outcome: Outcome,
    send: (call: TrackedCall) => Promise<Omit<ModelResult, 'model'>>,
  ): Promise<'expired' | undefined> => {
    const call = calls.open(interrupt.abort);
    try {
      const result = await send(call).finally(() => call.settle());
      outcome.result = result;
      if (result.requestId) outcome.requestId = result.requestId;
      const images = withParameters(
        // A job collected by its id comes back without its request: the journal's is the one sent.
        { model: sdxlTxt2Img.slug, ...result, request: { ...job.request, ...result.request } },
        result.images,
        context.embed,
      );
      const { saved, error } = await saveImages(outDir, job.prompt, images, job.label);
      outcome.saved = saved;
      if (error) outcome.error = error;
      else if (journal) {
        await journal.saved(job.key, job.request, {
          requestId: result.requestId ?? null,
          ...(result.cost !== undefined && { cost: result.cost }),
          remainingCredits: result.remainingCredits ?? null,
          images: saved.map(({ image, path }) => imageJson(image, path)),
        });
      }
      if (result.lowCredits && !warnedLow && result.remainingCredits !== undefined) {
        warnedLow = true;
        progress.clear();
        io.stderr.write(
          `Warning: ${shortCredits(result.remainingCredits)} credits left, below ${client.lowCreditsThreshold}. Top up your Segmind account soon.\n`,
        );
      }
    } catch (error) {
      const code = (error as { code?: string }).code;
      const requestId = (error as { requestId?: string }).requestId;
      if (requestId) outcome.requestId = requestId;
      if (code === 'request_expired' && requestId) {
        await journal?.expired(job.key, job.request, requestId);
        outcome.error = paidAndLost([requestId], journal !== undefined);
        return 'expired';
      }
      if (code === 'budget_exceeded' && tally.stoppedBy === undefined) {
        // The cap is reached: the prompts left would not fit either, so none of them is sent.
        tally.stoppedBy = error;
        calls.stop(`${(error as Error).message.replace(/ Nothing was sent\.$/, '')}`);
      }
      const budgetStop = (tally.stoppedBy as { code?: string } | undefined)?.code === 'budget_exceeded';
      outcome.error =
        call.cancelled === 'unsent'
          ? { code: budgetStop ? 'budget_exceeded' : 'skipped', message: `Not sent: ${calls.stopped}.` }
          : call.cancelled === 'not-retried'
            ? {
                code: 'skipped',
                message: `Not retried after "${call.lastError?.message}": ${calls.stopped}.`,
              }
            : call.sent && interrupt.abort.aborted
              ? abortedOutcome(error, signalName(interrupt.abort), context.journal !== undefined)
              : error;
      // The batch already stopped when this answer arrived (Calls.attemptFailed); this is its cause.
      if (code && STOPS_BATCH.has(code) && tally.stoppedBy === undefined) tally.stoppedBy = error;
    }
    return undefined;
  };

  /** Submits a prompt (or sends it, on the sync API), recording each attempt in the journal. */
  const generate = (job: PromptJob, outcome: Outcome, resend: string | undefined) =>
    make(job, outcome, (call) => {
      // Whether an attempt is out whose answer has not said that nothing was accepted.
      let sending = false;
      let submitted = false;
      return client.generate({ ...base, ...job.options, prompt: job.prompt } as GenerateInput, {
        ...call.options,
        api: context.api,
        ...(context.budget && { budget: context.budget }),
        onAttempt: (attempt) => {
          call.options.onAttempt?.(attempt);
          // Status checks after the submit are attempts too; only the submit's may be billed.
          if (submitted || sending) return;
          sending = true;
          if (resend !== undefined) {
            warn(outcome, resend);
            resend = undefined;
          }
          // Not awaited: the request must not wait for the disk.
          journal?.sending(job.key, job.request).catch(() => {});
        },
        onAttemptFailed: (error) => {
          call.options.onAttemptFailed?.(error);
          if (!sending || submitted || !acceptedNothing(error)) return;
          sending = false;
          journal?.refused(job.key, error.code).catch(() => {});
        },
        onSubmitted: async (ticket) => {
          submitted = true;
          outcome.requestId = ticket.requestId;
          if (journal) await journal.submitted(job.key, job.request, ticket.requestId);
          else announceSubmit(io, ticket.requestId);
        },
      });
    });

  /** Sends one prompt and saves its images. After a stop, a prompt is cancelled before it is sent. */
  const runPrompt = async (index: number): Promise<Outcome> => {
    const job = prompts[index]!;
    const outcome: Outcome = { index, prompt: job.prompt };
    const recorded: JournalEntry | undefined = journal?.entry(job.key);
    if (recorded?.saved) {
      // Saved by an earlier run of this batch: nothing is sent, and the line says where it went.
      const { images, remainingCredits, requestId, cost } = recorded.saved;
      outcome.journaled = images;
      outcome.result = {
        remainingCredits: remainingCredits ?? undefined,
        lowCredits: false,
        ...(cost !== undefined && { cost }),
      };
      if (requestId) outcome.requestId = requestId;
      return outcome;
    }
    const lost = [...(recorded?.expired ?? [])];
    if (recorded?.requestId) {
      // A job an earlier run submitted is collected, never submitted again: it is billed already.
      const { requestId } = recorded;
      outcome.requestId = requestId;
      const expired = await make(job, outcome, (call) =>
        client.resume(requestId, { ...call.options, model: 'sdxl1.0-txt2img' }),
      );
      if (!expired) return outcome;
      lost.push(requestId);
    }
    if (lost.length > 0) {
      if (!context.resubmitExpired) {
        outcome.error = paidAndLost(lost, true);
        return outcome;
      }
      delete outcome.error;
      warn(outcome, `${lostWords(lost)} Submitting it again (--resubmit-expired): billed again.`);
    }
    const resend =
      recorded?.sending === true
        ? 'An earlier run was stopped while sending this prompt, before the API answered: if the API accepted it, that call was billed too. Sending it again now.'
        : undefined;
    await generate(job, outcome, resend);
    return outcome;
  };

  // A few workers take the prompts in order, one at a time each, so only a bounded window of prompts
  // is ever open. Once the batch stops, each prompt left is cancelled as it is taken and reported as
  // not sent, as the ones already waiting in the limiter's line are.
  let next = 0;
  const worker = async () => {
    while (next < total) await ended(await runPrompt(next++));
  };
  // On the async API a prompt holds its job from submit to saved image, so --concurrency counts jobs
  // (a submit frees its slot in the limiter at once; without this the margin would become more jobs).
  const open = client.limiter.maxInFlight + (context.api === 'async' ? 0 : WINDOW_MARGIN);
  const window = Math.min(total, open);
  await Promise.all(Array.from({ length: window }, worker));
  interrupt.stop.removeEventListener('abort', onStop);
  progress.clear();
  const extras = (await context.beforeSummary?.()) ?? {};

  if (json && batch) {
    const { images, spent, skipped } = tally;
    const failed = tally.failed - skipped;
    const summary = { prompts: total, images, spent, skipped, failed, ...extras };
    io.stdout.write(`${JSON.stringify({ summary })}\n`);
  }
  if (!json) {
    if (batch) io.stdout.write(`${total - tally.failed} of ${total} prompts done.\n`);
    if (batch && tally.spent > 0)
      io.stdout.write(`${shortCredits(tally.spent)} credits spent (earlier runs of this batch included).\n`);
    const remaining = tally.remainingCredits;
    if (remaining !== undefined) io.stdout.write(`${shortCredits(remaining)} credits left.\n`);
  }
  if (interrupt.stop.aborted) return signalExitCode(interrupt.stop);
  if (tally.failed === 0) return EXIT.ok;
  return exitCodeFor(tally.stoppedBy ?? tally.firstError);
}

function report(
  outcome: Outcome,
  context: { io: Io; json: boolean; batch: boolean; progress: Progress; hints: HintContext },
): void {
  const { io, json, batch, progress } = context;
  const { result, saved = [], error } = outcome;
  if (json) {
    const line: Record<string, unknown> = batch ? { prompt: outcome.prompt } : {};
    line.images = outcome.journaled ?? saved.map(({ image, path }) => imageJson(image, path));
    if (result) {
      line.remainingCredits = result.remainingCredits ?? null;
      line.lowCredits = result.lowCredits;
    }
    line.requestId = outcome.requestId ?? null;
    // What the call was billed as the API reported it (an earlier run's, for a journaled prompt).
    line.cost = result?.cost ?? null;
    if (error !== undefined) line.error = errorJson(error);
    if (outcome.warning) line.warning = outcome.warning;
    io.stdout.write(`${JSON.stringify(line)}\n`);
    return;
  }
  progress.clear();
  const prefix = batch ? `${outcome.prompt}: ` : '';
  if (outcome.journaled) {
    const noun = outcome.journaled.length === 1 ? 'image' : 'images';
    io.stdout.write(`${prefix}saved ${outcome.journaled.length} ${noun} in an earlier run:\n`);
    for (const { path } of outcome.journaled) io.stdout.write(`  ${path}\n`);
  }
  if (result && saved.length > 0) {
    const noun = saved.length === 1 ? 'image' : 'images';
    const seed = result.seed !== undefined ? ` (seed ${result.seed})` : '';
    io.stdout.write(`${prefix}${batch ? 'saved' : 'Saved'} ${saved.length} ${noun}${seed}:\n`);
    for (const { path } of saved) io.stdout.write(`  ${path}\n`);
  }
  if (error !== undefined) {
    // A skipped prompt failed for another prompt's reason, which is reported on its own line.
    const skipped = (error as { code?: unknown }).code === 'skipped';
    const heading = error instanceof InvalidRequestError || skipped ? '' : 'Error: ';
    io.stderr.write(`${prefix}${heading}${describeError(error, context.hints)}\n`);
  }
}
