// A batch run again with other options is a new request for each prompt: the journal keys a prompt
// by its whole request, so it is made (billed once) and nothing an earlier run made is taken for it.
// This says so before anything is sent, naming the options that changed.
import type { JournalEntry, Journal } from './journal.ts';
import type { PromptJob } from './batch.ts';
import { flagFor } from './options.ts';

/** How many changed options the note names before it says "and more". */
const NAMED_CHANGES = 4;

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * One line for stderr when prompts of this batch were made (or submitted) by an earlier run in
 * `outDir` with other options, or undefined when none were.
 */
export function changedRequestsNote(
  journal: Journal,
  jobs: readonly PromptJob[],
  outDir: string,
): string | undefined {
  const keys = new Set(jobs.map((job) => job.key));
  // What earlier runs made that this batch does not ask for again, by prompt.
  const earlier = new Map<string, JournalEntry[]>();
  for (const [key, entry] of journal.recorded()) {
    if (keys.has(key)) continue;
    if (!entry.saved && !entry.requestId && entry.expired.length === 0) continue;
    const prompt = String(entry.request.prompt);
    earlier.set(prompt, [...(earlier.get(prompt) ?? []), entry]);
  }
  if (earlier.size === 0) return undefined;

  const changes = new Set<string>();
  const uncollected: string[] = [];
  let changed = 0;
  for (const job of jobs) {
    if (journal.entry(job.key)) continue;
    const before = earlier.get(job.prompt);
    if (!before) continue;
    changed++;
    const previous = before.find((entry) => entry.saved) ?? before[0]!;
    for (const [field, value] of Object.entries(job.request)) {
      const old = previous.request[field];
      if (field === 'prompt' || old === value) continue;
      changes.add(`${(field !== 'refiner' && flagFor(field)) || field} ${shown(old)} → ${shown(value)}`);
    }
    for (const entry of before) if (entry.requestId) uncollected.push(entry.requestId);
    earlier.delete(job.prompt);
  }
  if (changed === 0) return undefined;
  const named = [...changes].slice(0, NAMED_CHANGES).join(', ');
  const more = changes.size > NAMED_CHANGES ? ', and more' : '';
  const prompts = changed === 1 ? '1 prompt of this batch was' : `${changed} prompts of this batch were`;
  const lines = [
    `${prompts} made by an earlier run in "${outDir}" with other options (${named}${more}): this run makes ${changed === 1 ? 'it' : 'them'} with its own, each billed once; the earlier images stay.`,
  ];
  for (const requestId of uncollected) {
    lines.push(
      `An earlier run submitted ${requestId} for one of them and never collected it: sdxl resume ${requestId} --out "${outDir}" collects it (it is paid for).`,
    );
  }
  return lines.join('\n');
}
