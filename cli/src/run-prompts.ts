// A run of prompts as `sdxl imagine` and `sdxl grid` make it: every prompt checked before the first
// call, `--dry-run`'s plan or `--max-cost`'s check, --out prepared and locked, the journal and the
// contact sheet opened around the engine (batch.ts), and closed whatever happens.
import {
  InvalidRequestError,
  sdxlTxt2Img,
  type ApiChoice,
  type Estimate,
  type GenerateInput,
  type SdxlClient,
} from '@sdxl-kit/client';
import { batchCalls, run, type PromptJob } from './batch.ts';
import { changedRequestsNote } from './changed-requests.ts';
import { connect } from './connect.ts';
import { ContactSheet, type ContactSheetOptions, type EndedPrompt } from './contact-sheet.ts';
import { UsageError } from './exit.ts';
import { prepareFolder } from './files.ts';
import type { Interrupt } from './interrupt.ts';
import type { Io } from './io.ts';
import { Journal, promptKey, type JournaledRequest } from './journal.ts';
import { checkPlan, maxCostOf, printPlan, runBudget } from './money.ts';
import { pacing, positiveIntFlag, usageErrorFrom, type IMAGINE_FLAGS, type parseFlags } from './options.ts';
import { lockOut, thisRun } from './out-lock.ts';
import type { PromptLine } from './prompts-file.ts';

/** The flags `sdxl imagine` parses (`sdxl grid` has these and its axes). */
export type ImagineValues = ReturnType<typeof parseFlags<typeof IMAGINE_FLAGS>>['values'];

/** What a run of prompts needs besides the flags: the prompts, and words for where each came from. */
export interface PromptsRun {
  prompts: readonly PromptLine[];
  /** Several prompts: progress and a line each, a journal, a contact sheet, the async API by default. */
  batch: boolean;
  /** Where a prompt came from, to name it when one of its values is refused: `--prompts night.txt line 3`. */
  whereIs: (prompt: PromptLine) => string;
  /** The contact sheet's heading and extras (a grid's picture, its cells' settings). */
  sheet: Omit<ContactSheetOptions, 'total' | 'model'>;
  /** Told of each prompt as it ends (a grid collects its cells' files). */
  onEnded?: (ended: EndedPrompt) => void;
  /**
   * Called once every prompt has ended, still holding --out, before the summary and the contact
   * sheet's last page (a grid draws its picture); what it returns joins the `--json` summary line.
   * Not called on a dry run.
   */
  beforeSummary?: () => Promise<Record<string, unknown>>;
}

/**
 * Runs prompts as `sdxl imagine` does: every prompt checked before the first call, then the plan of a
 * dry run, or --out prepared and (for a batch) locked, journaled and given a contact sheet around
 * {@link run}. Returns the exit code.
 */
export async function runPrompts(
  values: ImagineValues,
  base: Omit<GenerateInput, 'prompt'>,
  io: Io,
  interrupt: Interrupt,
  spec: PromptsRun,
): Promise<number> {
  const { prompts, batch } = spec;
  const json = values.json === true;
  const maxInFlight = positiveIntFlag('--concurrency', values.concurrency, 2);
  const { timeout, ...paced } = pacing(values, io.env);
  const outDir = values.out ?? 'out';
  if (values.async && values.sync) throw new UsageError('--async and --sync do not go together: choose one.');
  // A batch goes async by default: its journal can then collect a job that a crash interrupted.
  const api: ApiChoice = values.async ? 'async' : values.sync ? 'sync' : batch ? 'async' : 'auto';

  const calls = batchCalls();
  const connection = await connect(io, values, { maxInFlight, timeoutMs: timeout * 1000, ...paced });
  try {
    // Every prompt is checked before the first call, so a bad line costs nothing.
    const requests: JournaledRequest[] = [];
    for (const line of prompts) {
      const { prompt, options, keys } = line;
      try {
        requests.push(connection.client.validate({ ...base, ...options, prompt } as GenerateInput));
      } catch (error) {
        if (!(error instanceof InvalidRequestError)) throw error;
        const where = spec.whereIs(line);
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
                ...spec.sheet,
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
            ...(spec.onEnded && { onEnded: spec.onEnded }),
            ...(spec.beforeSummary && { beforeSummary: spec.beforeSummary }),
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

/** Each prompt with its journal key: which copy of the same whole request in the batch it is counts too. */
function jobsOf(prompts: readonly PromptLine[], requests: readonly JournaledRequest[]): PromptJob[] {
  const copies = new Map<string, number>();
  return prompts.map(({ prompt, options = {}, label }, index) => {
    const request = requests[index]!;
    const identity = promptKey(request, 0);
    const copy = copies.get(identity) ?? 0;
    copies.set(identity, copy + 1);
    return { prompt, options, request, key: promptKey(request, copy), ...(label && { label }) };
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
