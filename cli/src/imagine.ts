// `sdxl imagine "<prompt>"` and `sdxl imagine --prompts FILE`: the command line read into a run of
// prompts (run-prompts.ts).
import { EXIT, UsageError } from './exit.ts';
import { JOURNAL_FILE } from './journal.ts';
import { MONEY_HELP } from './money.ts';
import type { Interrupt } from './interrupt.ts';
import type { Io } from './io.ts';
import { IMAGINE_FLAGS, IMAGINE_NUMERIC_FLAGS, parseFlags, requestFromFlags } from './options.ts';
import { LOCK_FILE } from './out-lock.ts';
import { readPrompts, readStdin, sourceName, type PromptLine } from './prompts-file.ts';
import { runPrompts } from './run-prompts.ts';

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

export async function imagine(argv: string[], io: Io, interrupt: Interrupt): Promise<number> {
  const { values, positionals } = parseFlags(argv, IMAGINE_FLAGS, IMAGINE_NUMERIC_FLAGS);
  if (values.help) {
    io.stdout.write(`${IMAGINE_HELP}\n`);
    return EXIT.ok;
  }
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
  return runPrompts(values, base, io, interrupt, {
    prompts,
    batch: promptsFile !== undefined,
    whereIs: ({ line }) =>
      promptsFile === undefined ? 'the prompt' : `--prompts ${sourceName(promptsFile)} line ${line}`,
    sheet: { title: `sdxl imagine --prompts ${sourceName(promptsFile ?? '-')}` },
  });
}
