import { EXIT, UsageError } from './exit.ts';
import type { Interrupt } from './interrupt.ts';
import type { Io } from './io.ts';
import { numberFlag, parseFlags, positiveIntFlag } from './options.ts';

export const SANDBOX_HELP = `Usage: sdxl sandbox [--port N] [--host H] [--api-key K] [--credits X] [--latency-ms N] [--rpm N]

Runs a local stand-in for the hosted SDXL API: same paths, statuses and headers, real images,
no credits spent. Point any sdxl-kit front-end at it with SDXL_BASE_URL and SDXL_API_KEY.

It serves, for sdxl1.0-txt2img, sdxl-img2img, sdxl-inpaint, esrgan, sdxl-controlnet and ssd-1b:
  POST /v1/<model>                 the image (or base64 JSON), as the hosted v1 API does
  POST /v2/<model>                 an async job; poll GET /v2/requests/<id>/status, read
                                   GET /v2/requests/<id> (and GET /v1/requests/<id>)
  POST /upload-asset               data: URLs in, URLs of /assets/<name> out
  GET  /v1/get-user-credits        the balance

  --port N          port to listen on (default 8787; 0 picks a free one)
  --host H          address to listen on (default 127.0.0.1)
  --api-key K       key the sandbox accepts (default sandbox-key)
  --credits X       starting balance (default 100)
  --latency-ms N    delay before each image answer (default 0)
  --rpm N           answer 429 beyond N requests a minute, as the hosted plans do`;

export async function sandbox(argv: string[], io: Io, interrupt: Interrupt): Promise<number> {
  const signal = interrupt.stop;
  const { values } = parseFlags(
    argv,
    {
      port: { type: 'string' },
      host: { type: 'string' },
      'api-key': { type: 'string' },
      credits: { type: 'string' },
      'latency-ms': { type: 'string' },
      rpm: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    ['port', 'credits', 'latency-ms', 'rpm'],
  );
  if (values.help) {
    io.stdout.write(`${SANDBOX_HELP}\n`);
    return EXIT.ok;
  }
  const port = values.port === undefined ? 8787 : numberFlag('--port', values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port: ${values.port} is not allowed; allowed: a whole number from 0 to 65535.`);
  }
  const credits = values.credits === undefined ? undefined : numberFlag('--credits', values.credits);
  const latencyMs =
    values['latency-ms'] === undefined ? undefined : numberFlag('--latency-ms', values['latency-ms']);
  if (latencyMs !== undefined && latencyMs < 0)
    throw new UsageError(`--latency-ms: ${latencyMs} is below 0.`);
  const { startSandbox, SANDBOX_DEFAULT_API_KEY } = await import('@sdxl-kit/sandbox');
  const apiKey = values['api-key'] ?? SANDBOX_DEFAULT_API_KEY;
  const server = await startSandbox({
    port,
    host: values.host ?? '127.0.0.1',
    apiKey,
    ...(credits !== undefined && { credits }),
    ...(latencyMs !== undefined && { latencyMs }),
    ...(values.rpm !== undefined && { rpm: positiveIntFlag('--rpm', values.rpm, 1) }),
  });
  io.stdout.write(
    `SDXL sandbox listening on ${server.url}\n` +
      `  v1: POST ${server.url}/<model>   v2: POST ${server.origin}/v2/<model>   uploads: POST ${server.origin}/upload-asset\n` +
      `Try: SDXL_BASE_URL=${server.url} SDXL_API_KEY=${apiKey} npx sdxl imagine "a lighthouse at dusk"\n` +
      'Press Ctrl+C to stop.\n',
  );
  interrupt.takeOver?.();
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await server.close();
  io.stdout.write('Sandbox stopped.\n');
  return EXIT.ok;
}
