import { readFileSync } from 'node:fs';
import { credits } from './credits.ts';
import { EXIT, describeError, errorJson, exitCodeFor } from './exit.ts';
import { baseUrlSource } from './connect.ts';
import { IMAGINE_HELP, imagine } from './imagine.ts';
import { listenForSignals, signalExitCode, type Interrupt } from './interrupt.ts';
import type { Io } from './io.ts';
import { sandbox } from './sandbox-command.ts';

const HELP = `sdxl: SDXL 1.0 images from the command line

Commands:
  sdxl imagine "<prompt>" [options]   make images (sdxl imagine --help for every option)
  sdxl imagine --prompts FILE         one prompt a line, paced for your plan: for cron pipelines
  sdxl credits                        print the account's balance
  sdxl sandbox [--port N]             run a local stand-in for the API (no key, no credits)

Try it offline: sdxl imagine --sandbox "a panda astronaut in a neon bar"
Set SDXL_API_KEY to your Segmind API key for real images.`;

const COMMANDS = { imagine, credits, sandbox } as const;

function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

/**
 * Runs one command and returns its exit code; never throws. Without `interrupt`, SIGINT and SIGTERM
 * are listened for while it runs.
 */
export async function main(argv: string[], io: Io, interrupt?: Interrupt): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.stdout.write(`${command === 'help' && rest[0] === 'imagine' ? IMAGINE_HELP : HELP}\n`);
    return EXIT.ok;
  }
  if (command === '--version' || command === '-v') {
    io.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  const run = COMMANDS[command as keyof typeof COMMANDS];
  if (!run) {
    io.stderr.write(
      `Unknown command "${command}". Commands: ${Object.keys(COMMANDS).join(', ')}. See "sdxl help".\n`,
    );
    return EXIT.invalidInput;
  }
  const signals = interrupt ? undefined : listenForSignals();
  const { stop } = interrupt ?? signals!.interrupt;
  try {
    return await run(rest, io, interrupt ?? signals!.interrupt);
  } catch (error) {
    const json = rest.includes('--json');
    if (json) io.stdout.write(`${JSON.stringify({ images: [], error: errorJson(error) })}\n`);
    else {
      const baseUrl = rest.some((arg) => arg === '--base-url' || arg.startsWith('--base-url='));
      const source = baseUrlSource(
        { sandbox: rest.includes('--sandbox'), ...(baseUrl && { 'base-url': '' }) },
        io.env,
      );
      io.stderr.write(`${describeError(error, { baseUrl: source })}\n`);
    }
    const aborted = (error as { code?: unknown } | null)?.code === 'aborted';
    return aborted && stop.aborted ? signalExitCode(stop) : exitCodeFor(error);
  } finally {
    signals?.dispose();
  }
}
