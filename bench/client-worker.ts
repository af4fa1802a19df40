// One measured run in its own process, so peak memory belongs to one contender only.
// Usage: node bench/client-worker.ts <client|axios> <samples> <binary|base64> <baseUrl> <requests>
import axios from 'axios';
import { createClient } from '@sdxl-kit/client';

const [mode, samplesText, format, baseUrl, countText] = process.argv.slice(2);
const samples = Number(samplesText);
const base64 = format === 'base64';
const count = Number(countText);
const KEY = 'sandbox-key';
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
  base64,
};

/** The same work with axios alone: send, read bytes, decode base64, read the credits header. */
async function bareAxios(): Promise<number> {
  const response = await axios.post(`${baseUrl}/sdxl1.0-txt2img`, JSON.stringify(wire), {
    headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
    responseType: 'arraybuffer',
    timeout: 120_000,
  });
  const credits = Number(response.headers['x-remaining-credits']);
  const body = Buffer.from(response.data as ArrayBuffer);
  if (!base64) return body.length + credits * 0;
  const parsed = JSON.parse(body.toString('utf8')) as { image: string | string[] };
  const images = (Array.isArray(parsed.image) ? parsed.image : [parsed.image]).map((b) =>
    Buffer.from(b, 'base64'),
  );
  return images.reduce((sum, image) => sum + image.length, 0);
}

const client = createClient({ apiKey: KEY, baseUrl, maxInFlight: 1 });
async function ours(): Promise<number> {
  const result = await client.generate({ prompt: 'benchmark', samples, seed: 1, base64 });
  return result.images.reduce((sum, image) => sum + image.bytes.length, 0);
}

const run = mode === 'axios' ? bareAxios : ours;
for (let i = 0; i < 20; i++) await run();
const times: number[] = [];
let bytes = 0;
for (let i = 0; i < count; i++) {
  const start = performance.now();
  bytes += await run();
  times.push(performance.now() - start);
}
times.sort((a, b) => a - b);
process.stdout.write(
  JSON.stringify({
    medianMs: times[Math.floor(times.length / 2)],
    peakRssKb: process.resourceUsage().maxRSS,
    bytes,
  }),
);
