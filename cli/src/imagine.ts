import {
  InvalidRequestError,
  sdxlTxt2Img,
  withParameters,
  type ApiChoice,
  type BudgetGuard,
  type EmbedOptions,
  type Estimate,
  type GenerateInput,
  type ModelResult,
  type SdxlClient,
} from '@sdxl-kit/client';
import { Calls, acceptedNothing, type TrackedCall } from './calls.ts';
import { ContactSheet } from './contact-sheet.ts';
import { connect } from './connect.ts';
import { EXIT, UsageError, describeError, errorJson, exitCodeFor, type HintContext } from './exit.ts';
import { prepareFolder, saveImages, type SavedImage } from './files.ts';
import {
  JOURNAL_FILE,
  Journal,
  promptKey,
  type JournalEntry,
  type JournaledImage,
  type JournaledRequest,
} from './journal.ts';
import { changedRequestsNote } from './changed-requests.ts';
import { LOCK_FILE, lockOut, thisRun } from './out-lock.ts';
import { MONEY_HELP, checkPlan, maxCostOf, printPlan, runBudget } from './money.ts';
import { announceSubmit } from './operations.ts';
import { signalExitCode, signalName, type Interrupt } from './interrupt.ts';
import { Progress, type Io } from './io.ts';
import { readPrompts, readStdin, sourceName, type PromptLine } from './prompts-file.ts';
import {
  IMAGINE_FLAGS,
  IMAGINE_NUMERIC_FLAGS,
  parseFlags,
  positiveIntFlag,
  pacing,
  requestFromFlags,
  usageErrorFrom,
} from './options.ts';

export const IMAGINE_HELP = `Usage: sdxl imagine "<prompt>" [options]
       sdxl imagine --prompts FILE [options]

Makes images with SDXL 1.0 and writes them to a folder.

Request:
  --negative-prompt TEXT       what the image should not show
  --style NAME                 style preset (default base)
  -n, --samples N              images in one call, 1 to 4 (default 1; each is billed)
  --scheduler NAME             UniPC (default), DDIM, Euler a, ... any name the API accepts
  --steps N                    20 to 100 (default 25)
  --guidance-scale X           1 to 25 (default 7.5)
  --strength X                 0.1 to 1 (default 0.2)
  --high-noise-fraction X      0 to 1 (default 0.8; below 1 with the refiner)
  --seed N                     -1 to 999999999999999 (default -1: random, reported back)
  --width N, --height N        1024 (the only size SDXL 1.0 makes)
  --no-refiner                 skip the refiner

Output and pacing:
  -o, --out DIR                folder for the images (default ./out)
  --prompts FILE               one prompt a line ("-" reads stdin); blank lines and # comments skipped;
                               a .jsonl file holds one object a line: {"prompt": "...", "seed": 7, ...}
                               with any request option for that line, by its camelCase name or
                               the API's (negativePrompt or negative_prompt, steps or
                               num_inference_steps)
  --json                       stdout carries only JSON (one object a prompt with --prompts)
  --async                      use Segmind's async API: submit, then poll by request id (a batch's
                               default: a crash loses nothing, see below)
  --sync                       use the synchronous API (a single prompt's default)
  --no-journal                 keep no journal in --out (a batch run again then bills every prompt)
  --no-contact-sheet           write no contact sheet (index.html in --out: a card per prompt with its
                               images, seed, cost and time, failures with their reason; rewritten as
                               the batch goes)
  --no-metadata                write no generation parameters (prompt, seed, settings, request id)
                               into the images; by default each file carries them as AUTOMATIC1111
                               writes them (PNG "parameters" text, JPEG and WebP EXIF UserComment)
  --resubmit-expired           make again a prompt whose journaled request expired before its images
                               were collected (it was paid for and its images are lost; billed again)
  --rpm N                      requests per minute (default $SDXL_RPM or 5, the free plan's limit)
  --concurrency N              requests in flight (default 2)
  --timeout SECONDS            how long one attempt may take, 1 to 600 (default $SDXL_TIMEOUT or 120)
  --sandbox                    use a local sandbox: real images, no key, no credits (only an
                               explicit --rpm paces it; not with --base-url)
  --base-url URL               API base URL (default $SDXL_BASE_URL or the hosted API)

A --prompts batch keeps a journal in --out (${JOURNAL_FILE}): run the same command again after a
crash, kill -9 or reboot and it collects what was submitted and skips what was saved, so no prompt
is billed twice and no billed image is lost (results are kept by Segmind for an hour). With --sync
a call cut off mid-way cannot be collected: the journal then only skips what was saved.
The journal keys each prompt by its whole request: run again with other options (-n, --steps, a
.jsonl line's seed, ...) and each prompt is a new request, made and billed once, while stderr names
the options that changed; the same options, defaults spelled out or not, send nothing.
A request that expired before its images were collected (a run killed and not run again within the
hour) is reported as paid for and lost, with its id (error code request_expired, exit 1); nothing is
sent for it until a run with --resubmit-expired makes it again.
One run at a time holds --out (${LOCK_FILE}): a second run into it exits 7 at once, naming the
running one, and sends nothing; run again once it has ended. The lock is the kernel's, gone with the
process however it ends (kill -9 included), so nothing is left to clean up.
A job's request id goes to stderr the moment the job is accepted ("Submitted as ID"), with --json
too (a journaled batch keeps it in its journal instead); every --json object carries "requestId".

${MONEY_HELP}

Environment: SDXL_API_KEY (or SEGMIND_API_KEY), SDXL_BASE_URL, SDXL_LOW_CREDITS (default 1), SDXL_RPM,
SDXL_TIMEOUT, SDXL_MAX_COST, SDXL_CACHE_DIR (where learnt job times are kept; default ~/.cache/sdxl).
Exit codes: 0 done, 2 invalid input (nothing sent), 3 key refused, 4 not enough credits,
5 still rate limited after retries, 6 --max-cost reached (prompts left unsent), 7 --out in use by
another run (nothing sent), 1 anything else;
130 (SIGINT, Ctrl+C) or 143 (SIGTERM) when interrupted. The first interrupt sends nothing more and
lets calls already sent finish and save; a second aborts them (they may have been billed).`;

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
}

/** Errors after which every other prompt would fail the same way, so the batch stops spending calls. */
const STOPS_BATCH = new Set(['unauthorized', 'insufficient_credits', 'not_found', 'method_not_allowed']);

function stopReason(error: Error): string {
  return `the batch stopped after "${error.message}"`;
}

function formatCredits(value: number): string {
  return Number(value.toFixed(4)).toString();
}

export async function imagine(argv: string[], io: Io, interrupt: Interrupt): Promise<number> {
  const { values, positionals } = parseFlags(argv, IMAGINE_FLAGS, IMAGINE_NUMERIC_FLAGS);
  if (values.help) {
    io.stdout.write(`${IMAGINE_HELP}\n`);
    return EXIT.ok;
  }
  const json = values.json === true;
  const positional = positionals.join(' ').trim();
  if (values.prompts !== undefined && positional) {
    throw new UsageError('Give either a prompt or --prompts FILE, not both.');
  }
  if (values.prompts === undefined && !positional) {
    throw new UsageError(
      'No prompt. Usage: sdxl imagine "a panda astronaut in a neon bar" (see sdxl imagine --help).',
    );
  }
  const base = requestFromFlags(values);
  const promptsFile = values.prompts;
  const prompts: PromptLine[] =
    promptsFile !== undefined ? await readPrompts(promptsFile, readStdin) : [{ prompt: positional, line: 1 }];
  const maxInFlight = positiveIntFlag('--concurrency', values.concurrency, 2);
  const { timeout, ...paced } = pacing(values, io.env);
  const outDir = values.out ?? 'out';
  if (values.async && values.sync) throw new UsageError('--async and --sync do not go together: choose one.');
  const batch = values.prompts !== undefined;
  // A batch goes async by default: its journal can then collect a job that a crash interrupted.
  const api: ApiChoice = values.async ? 'async' : values.sync ? 'sync' : batch ? 'async' : 'auto';

  // Stops the batch the moment such an answer arrives, before the next queued call can go out.
  const calls = new Calls((error) => (STOPS_BATCH.has(error.code) ? stopReason(error) : undefined));
  const connection = await connect(io, values, { maxInFlight, timeoutMs: timeout * 1000, ...paced });
  try {
    // Every prompt is checked before the first call, so a bad line costs nothing.
    const requests: JournaledRequest[] = [];
    for (const { prompt, line, options, keys } of prompts) {
      try {
        requests.push(connection.client.validate({ ...base, ...options, prompt } as GenerateInput));
      } catch (error) {
        if (!(error instanceof InvalidRequestError)) throw error;
        const where =
          promptsFile === undefined ? 'the prompt' : `--prompts ${sourceName(promptsFile)} line ${line}`;
        // A field a .jsonl line set is named by its key on that line, not by a flag.
        throw usageErrorFrom(error, where, keys ? { source: where, keys } : undefined);
      }
    }
    const journaled = batch && !values['no-journal'];
    const resubmitExpired = values['resubmit-expired'] === true;
    const cap = maxCostOf(values['max-cost'], io.env);
    if (values['dry-run']) {
      // A look, not a run: the journal is read without its lock and --out is not created.
      const journal = journaled ? await Journal.read(outDir) : undefined;
      const { plan, done } = planOf(connection.client, jobsOf(prompts, requests), journal, resubmitExpired);
      return await printPlan(connection.client, plan, {
        io,
        json,
        signal: interrupt.stop,
        alreadyDone: done,
      });
    }
    try {
      await prepareFolder(outDir);
    } catch (error) {
      throw new UsageError(
        `--out: cannot write images to "${outDir}" (${(error as Error).message}). Nothing was sent.`,
      );
    }
    // One journaled run at a time in --out: two would each send what the journal lacks.
    const lock = journaled ? await lockOut(outDir) : undefined;
    try {
      const journal = journaled ? await Journal.open(outDir) : undefined;
      try {
        const jobs = jobsOf(prompts, requests);
        // What this run will send, once the lock says no other run is sending: the journal is final.
        if (cap) checkPlan(planOf(connection.client, jobs, journal, resubmitExpired).plan, cap);
        await journal?.ran(thisRun());
        const note = journal && changedRequestsNote(journal, jobs, outDir);
        if (note) io.stderr.write(`${note}\n`);
        // Inside the lock: two runs into one --out would each rewrite the other's page.
        const sheet =
          batch && !values['no-contact-sheet']
            ? await ContactSheet.start(outDir, {
                title: `sdxl imagine --prompts ${sourceName(promptsFile!)}`,
                total: prompts.length,
                model: sdxlTxt2Img.slug,
              })
            : undefined;
        try {
          return await run(connection.client, jobs, base, {
            io,
            json,
            outDir,
            interrupt,
            calls,
            hints: { baseUrl: connection.baseUrlSource, timeoutSeconds: timeout },
            batch,
            api,
            resubmitExpired,
            embed: { enabled: values['no-metadata'] !== true },
            ...(cap && { budget: runBudget(cap) }),
            ...(journal && { journal }),
            ...(sheet && { sheet }),
          });
        } finally {
          await sheet?.close();
        }
      } finally {
        await journal?.close();
      }
    } finally {
      lock?.release();
    }
  } finally {
    await connection.close();
  }
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

/** Each prompt with its journal key: which copy of the same whole request in the batch it is counts too. */
function jobsOf(prompts: readonly PromptLine[], requests: readonly JournaledRequest[]): PromptJob[] {
  const copies = new Map<string, number>();
  return prompts.map(({ prompt, options = {} }, index) => {
    const request = requests[index]!;
    const identity = promptKey(request, 0);
    const copy = copies.get(identity) ?? 0;
    copies.set(identity, copy + 1);
    return { prompt, options, request, key: promptKey(request, copy) };
  });
}

/**
 * What a run will send and bill: every prompt but those an earlier run saved, submitted (collected,
 * billed already) or lost to expiry (reported, not sent, without --resubmit-expired).
 */
function planOf(
  client: SdxlClient,
  jobs: readonly PromptJob[],
  journal: Journal | undefined,
  resubmitExpired: boolean,
): { plan: Estimate; done: number } {
  const planner = client.planner();
  let done = 0;
  for (const job of jobs) {
    const entry = journal?.entry(job.key);
    const sends = !entry?.saved && !entry?.requestId && (resubmitExpired || !entry?.expired.length);
    if (sends) planner.add(sdxlTxt2Img, job.request);
    else done++;
  }
  return { plan: planner.result(), done };
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
      const { saved, error } = await saveImages(outDir, job.prompt, images);
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
          `Warning: ${formatCredits(result.remainingCredits)} credits left, below ${client.lowCreditsThreshold}. Top up your Segmind account soon.\n`,
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

  if (json && batch) {
    const { images, spent, skipped } = tally;
    const failed = tally.failed - skipped;
    io.stdout.write(`${JSON.stringify({ summary: { prompts: total, images, spent, skipped, failed } })}\n`);
  }
  if (!json) {
    if (batch) io.stdout.write(`${total - tally.failed} of ${total} prompts done.\n`);
    if (batch && tally.spent > 0)
      io.stdout.write(`${formatCredits(tally.spent)} credits spent (earlier runs of this batch included).\n`);
    const remaining = tally.remainingCredits;
    if (remaining !== undefined) io.stdout.write(`${formatCredits(remaining)} credits left.\n`);
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
