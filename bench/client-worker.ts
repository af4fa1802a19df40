// Measurements in a process of their own, apart from the sandbox, so each contender's peak memory is its own.
//   node bench/client-worker.ts time   <samples> <binary|base64> <baseUrl> <requests>  both contenders, interleaved
//   node bench/client-worker.ts memory <samples> <binary|base64> <baseUrl> <requests> <client|axios>
//   node bench/client-worker.ts batch  <prompts> <inFlight> <baseUrl>
import axios from 'axios';
import { createClient } from '@sdxl-kit/client';

const [task, first, second, baseUrl, fourth, fifth] = process.argv.slice(2);
const KEY = 'sandbox-key';

function contenders(samples: number, base64: boolean) {
  const wire = {
    prompt: 'benchmark',
    negative_prompt: '',
    style: 'base',
    samples,
    scheduler: 'UniPC',
    num_inference_steps: 25,
    guidance_scale: 7.5,
    strength: 0.2,
    high_noise_fraction: 0.8,
    seed: 1,
    img_width: 1024,
    img_height: 1024,
    refiner: true,
    base64: base64 || samples > 1,
  };
  /** The same work with axios alone: send, read bytes, decode base64, read the credits header. */
  const bareAxios = async (): Promise<number> => {
    const response = await axios.post(`${baseUrl}/sdxl1.0-txt2img`, JSON.stringify(wire), {
      headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
      responseType: 'arraybuffer',
      timeout: 120_000,
    });
    const credits = Number(response.headers['x-remaining-credits']);
    const body = Buffer.from(response.data as ArrayBuffer);
    if (!wire.base64) return body.length + credits * 0;
    const parsed = JSON.parse(body.toString('utf8')) as { image: string | string[] };
    const images = (Array.isArray(parsed.image) ? parsed.image : [parsed.image]).map((b) =>
      Buffer.from(b, 'base64'),
    );
    return images.reduce((sum, image) => sum + image.length, 0);
  };
  const client = createClient({ apiKey: KEY, baseUrl, maxInFlight: 1 });
  const ours = async (): Promise<number> => {
    const result = await client.generate({ prompt: 'benchmark', samples, seed: 1, base64 });
    return result.images.reduce((sum, image) => sum + image.bytes.length, 0);
  };
  return { axios: bareAxios, client: ours };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function timed(run: () => Promise<number>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

if (task === 'time') {
  const runs = contenders(Number(first), second === 'base64');
  const count = Number(fourth);
  for (let i = 0; i < 30; i++) await Promise.all([runs.axios(), runs.client()].map((p) => p));
  const times = { axios: [] as number[], client: [] as number[] };
  // Request by request, alternating who goes first, so a busy moment on a shared machine hits both.
  for (let i = 0; i < count; i++) {
    const order = i % 2 === 0 ? (['axios', 'client'] as const) : (['client', 'axios'] as const);
    for (const name of order) times[name].push(await timed(runs[name]));
  }
  process.stdout.write(JSON.stringify({ axiosMs: median(times.axios), clientMs: median(times.client) }));
} else if (task === 'memory') {
  const run = contenders(Number(first), second === 'base64')[fifth as 'axios' | 'client'];
  for (let i = 0; i < Number(fourth); i++) await run();
  process.stdout.write(JSON.stringify({ peakRssKb: process.resourceUsage().maxRSS }));
} else if (task === 'batch') {
  const client = createClient({ apiKey: KEY, baseUrl, maxInFlight: Number(second) });
  const prompts = Array.from({ length: Number(first) }, (_, i) => `pipeline prompt ${i}`);
  const start = performance.now();
  await Promise.all(prompts.map((prompt) => client.generate({ prompt, seed: 1 })));
  process.stdout.write(JSON.stringify({ wallMs: performance.now() - start }));
}
