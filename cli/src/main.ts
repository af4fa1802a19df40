import { readFileSync } from 'node:fs';
import { EXIT } from './exit-codes.ts';
import { listenForSignals, signalExitCode, type Interrupt } from './interrupt.ts';
import type { Io } from './io.ts';

const HELP = `sdxl: SDXL images from the command line

Commands:
  sdxl imagine "<prompt>" [options]   make images (sdxl imagine --help for every option)
  sdxl imagine --prompts FILE         one prompt a line, paced for your plan: for cron pipelines
  sdxl grid "<prompt>" --x steps=20,30 [--y guidance-scale=5,9]   every combination, one seed, one
                                      labelled picture to compare settings
  sdxl vary IMAGE "<prompt>"          a variation of an image (sdxl-img2img)
  sdxl inpaint IMAGE --mask MASK "<prompt>"   repaint where the mask is white (sdxl-inpaint)
  sdxl upscale IMAGE [--scale 2|4|8]  enlarge an image (esrgan)
  sdxl resume REQUEST_ID              collect an async request's images (nothing is billed again)
  sdxl credits                        print the account's balance
  sdxl sandbox [--port N]             run a local stand-in for the API (no key, no credits)

Try it offline: sdxl imagine --sandbox "a panda astronaut in a neon bar"
Set SDXL_API_KEY to your Segmind API key for real images.`;

type Command = (args: string[], io: Io, interrupt: Interrupt) => Promise<number>;

/**
 * Each command's module, loaded when it runs: `sdxl --version` loads none, and a command loads the
 * client, the sandbox or Redis only as far as it uses them.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  imagine: async () => (await import('./imagine.ts')).imagine,
  grid: async () => (await import('./grid.ts')).grid,
  vary: async () => (await import('./operations.ts')).vary,
  inpaint: async () => (await import('./operations.ts')).inpaint,
  upscale: async () => (await import('./operations.ts')).upscale,
  resume: async () => (await import('./resume.ts')).resume,
  credits: async () => (await import('./credits.ts')).credits,
  sandbox: async () => (await import('./sandbox-command.ts')).sandbox,
};

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
    const topic = command === 'help' ? rest[0] : undefined;
    const help =
      topic === 'imagine'
        ? (await import('./imagine.ts')).IMAGINE_HELP
        : topic === 'grid'
          ? (await import('./grid.ts')).GRID_HELP
          : HELP;
    io.stdout.write(`${help}\n`);
    return EXIT.ok;
  }
  if (command === '--version' || command === '-v') {
    io.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  const load = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!load) {
    io.stderr.write(
      `Unknown command "${command}". Commands: ${Object.keys(COMMANDS).join(', ')}. See "sdxl help".\n`,
    );
    return EXIT.invalidInput;
  }
  const signals = interrupt ? undefined : listenForSignals();
  const { stop } = interrupt ?? signals!.interrupt;
  try {
    const run = await load();
    return await run(rest, io, interrupt ?? signals!.interrupt);
  } catch (error) {
    const { describeError, errorJson, exitCodeFor } = await import('./exit.ts');
    const { baseUrlSource } = await import('./connect.ts');
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
