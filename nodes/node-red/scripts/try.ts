// `npm run node-red`: a local Node-RED with this package, an embedded sandbox and the example flow,
// so a newcomer sees images come out without an API key.
import { PACKAGE_NAME, launchNodeRed, pressInject } from './launch.ts';

const port = Number(process.env.PORT ?? 1880);
const running = await launchNodeRed({ port, sandboxLatencyMs: 1500, moreExamples: true });
await pressInject(running.editorUrl);

process.stdout.write(`
Node-RED is running with ${PACKAGE_NAME} and the example flow, against a local sandbox
(${running.sandbox.url}, no real API key, no credits spent).

  Editor:        ${running.editorUrl}
  Newest image:  ${running.editorUrl}sdxl/latest

The example has already run once. Press the inject node's button to make two more images; watch the
SDXL node's status and the debug sidebar. Two more tabs show the other operations: generate → upscale
×4 → write a file, and inpaint a photo with a mask read from files (both in Node-RED's user folder).
Press Ctrl+C to stop.
`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
