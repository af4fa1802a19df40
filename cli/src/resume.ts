// `sdxl resume REQUEST_ID`: collects an async job that a stopped sdxl (or anything else) submitted.
// Nothing is submitted: the job was billed once, and this only fetches what it made.
import { connect } from './connect.ts';
import { EXIT, UsageError, describeError, exitCodeFor } from './exit.ts';
import { prepareFolder } from './files.ts';
import type { Interrupt } from './interrupt.ts';
import type { Io } from './io.ts';
import { deliver } from './operations.ts';
import { pacing, parseFlags } from './options.ts';

export const RESUME_HELP = `Usage: sdxl resume REQUEST_ID [--out DIR] [--json] [--base-url URL] [--no-metadata]

Collects the images of an async request (one submitted with --async, or by a --prompts batch) and
saves them in --out (default ./out). Nothing is submitted again, so nothing is billed again. Segmind
keeps results for an hour after the submit. The generation parameters go into each image unless
--no-metadata is given.`;

export async function resume(argv: string[], io: Io, interrupt: Interrupt): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      out: { type: 'string', short: 'o' },
      json: { type: 'boolean' },
      timeout: { type: 'string' },
      'base-url': { type: 'string' },
      'no-metadata': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    ['timeout'],
  );
  if (values.help) {
    io.stdout.write(`${RESUME_HELP}\n`);
    return EXIT.ok;
  }
  const [requestId, ...rest] = positionals;
  if (!requestId || rest.length > 0) {
    throw new UsageError(
      'Give one REQUEST_ID. Usage: sdxl resume REQUEST_ID [--out DIR] (see sdxl resume --help).',
    );
  }
  const outDir = values.out ?? 'out';
  const json = values.json === true;
  const { timeout } = pacing({ timeout: values.timeout, sandbox: true }, io.env);
  const connection = await connect(io, values, { timeoutMs: timeout * 1000 });
  try {
    try {
      await prepareFolder(outDir);
    } catch (error) {
      throw new UsageError(
        `--out: cannot write images to "${outDir}" (${(error as Error).message}). Nothing was fetched.`,
      );
    }
    interrupt.takeOver?.();
    const result = await connection.client.resume(requestId, { signal: interrupt.stop });
    const name = `${result.model === 'unknown' ? 'request' : result.model}-${requestId.slice(0, 8)}`;
    return await deliver(result, {
      io,
      json,
      outDir,
      name,
      lowCreditsThreshold: connection.client.lowCreditsThreshold,
      embed: { enabled: values['no-metadata'] !== true },
    });
  } catch (error) {
    if (error instanceof UsageError || json) throw error;
    if ((error as { code?: string }).code === 'aborted' && interrupt.stop.aborted) throw error;
    io.stderr.write(
      `Error: ${describeError(error, { baseUrl: connection.baseUrlSource, timeoutSeconds: timeout })}\n`,
    );
    return exitCodeFor(error);
  } finally {
    await connection.close();
  }
}
