import { readFileSync } from 'node:fs';
import { credits } from './credits.ts';
import { EXIT, describeError, errorJson, exitCodeFor } from './exit.ts';
import { baseUrlSource } from './connect.ts';
import { IMAGINE_HELP, imagine } from './imagine.ts';
import { listenForSignals, signalExitCode, type Interrupt } from './interrupt.ts';
import type { Io } from './io.ts';
import { inpaint, upscale, vary } from './operations.ts';
import { resume } from './resume.ts';
import { sandbox } from './sandbox-command.ts';

const HELP = `sdxl: SDXL images from the command line

Commands:
  sdxl imagine "<prompt>" [options]   make images (sdxl imagine --help for every option)
  sdxl imagine --prompts FILE         one prompt a line, paced for your plan: for cron pipelines
  sdxl vary IMAGE "<prompt>"          a variation of an image (sdxl-img2img)
  sdxl inpaint IMAGE --mask MASK "<prompt>"   repaint where the mask is white (sdxl-inpaint)
  sdxl upscale IMAGE [--scale 2|4|8]  enlarge an image (esrgan)
  sdxl resume REQUEST_ID              collect an async request's images (nothing is billed again)
  sdxl credits                        print the account's balance
  sdxl sandbox [--port N]             run a local stand-in for the API (no key, no credits)

Try it offline: sdxl imagine --sandbox "a panda astronaut in a neon bar"
Set SDXL_API_KEY to your Segmind API key for real images.`;

const COMMANDS = { imagine, vary, inpaint, upscale, resume, credits, sandbox } as const;

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
