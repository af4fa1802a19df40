import sharp from 'sharp';

/** What one picture is made from; the sandbox passes the request's prompt, seed and sample index. */
export interface RenderInput {
  prompt: string;
  seed: number;
  /** Position of the sample in the call, 0-based: samples of one call share the seed yet differ. */
  index: number;
  /** Pixels. */
  width: number;
  /** Pixels. */
  height: number;
  /** The settings that change a real model's picture; each left out (or at its default) changes nothing. */
  look?: Look;
}

/**
 * The settings a real image depends on besides prompt, seed and size, each drawn in a way that reads
 * like what it does to a real one, so a grid of settings tried on the sandbox shows its differences:
 * fewer steps leave grain, more add fine detail; guidance raises saturation and contrast; a scheduler,
 * a style or a negative prompt shift the composition or palette; strength deepens the vignette; a
 * high-noise fraction away from 0.8 adds noise; the refiner off softens.
 */
export interface Look {
  /** @default 25 */
  steps?: number;
  /** @default 7.5 */
  guidanceScale?: number;
  /** @default 'UniPC' */
  scheduler?: string;
  /** @default 'base' */
  style?: string;
  /** @default '' */
  negativePrompt?: string;
  /** @default 0.2 */
  strength?: number;
  /** @default 0.8 */
  highNoiseFraction?: number;
  /** @default true */
  refiner?: boolean;
}

const DEFAULT_LOOK: Required<Look> = {
  steps: 25,
  guidanceScale: 7.5,
  scheduler: 'UniPC',
  style: 'base',
  negativePrompt: '',
  strength: 0.2,
  highNoiseFraction: 0.8,
  refiner: true,
};

// Drawing at a small size in JS and letting libvips upscale keeps a render at a few ms of JS work;
// the shapes have soft edges, so a linear upscale looks the same as a cubic one and costs a third less.
// Huffman optimisation is off too: it saves ~5% of the bytes for twice the encoding time.
const SKETCH_SIZE = 128;
const JPEG_QUALITY = 85;
const CACHE_ENTRIES = 64;

// Promises are cached so that concurrent requests for the same picture share one render.
const renderCache = new Map<string, Promise<Buffer>>();

/**
 * Renders a deterministic abstract JPEG: the same prompt, seed, index, size and look give the same
 * bytes; the prompt picks the palette, the seed and index the composition, so another seed looks
 * different, and each setting of the look changes it as described there.
 * The result is a fresh Buffer the caller may keep or change.
 */
export async function renderImage(input: RenderInput): Promise<Buffer> {
  return Buffer.from(await renderShared(input));
}

/** Same as {@link renderImage} but returns the cached Buffer itself: callers must not modify it. */
export function renderShared(input: RenderInput): Promise<Buffer> {
  const { width, height } = input;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    return Promise.reject(new RangeError(`image size must be positive whole pixels, got ${width}x${height}`));
  }
  const look = lookKey(input.look);
  const key = `${width}x${height}:${input.seed}:${input.index}:${hashHex(input.prompt)}${look && `:${hashHex(look)}`}`;
  const cached = renderCache.get(key);
  if (cached) {
    // Re-inserting moves the entry to the young end of the Map's insertion order.
    renderCache.delete(key);
    renderCache.set(key, cached);
    return cached;
  }
  const rendered = encode(input);
  renderCache.set(key, rendered);
  rendered.catch(() => renderCache.delete(key));
  if (renderCache.size > CACHE_ENTRIES) {
    const oldest = renderCache.keys().next().value;
    if (oldest !== undefined) renderCache.delete(oldest);
  }
  return rendered;
}

async function encode(input: RenderInput): Promise<Buffer> {
  const sketchWidth = SKETCH_SIZE;
  const sketchHeight = Math.max(1, Math.round((SKETCH_SIZE * input.height) / input.width));
  const pixels = paint(input, sketchWidth, sketchHeight);
  let image = sharp(pixels, { raw: { width: sketchWidth, height: sketchHeight, channels: 3 } }).resize(
    input.width,
    input.height,
    { fit: 'fill', kernel: 'linear' },
  );
  // Without the refiner a real SDXL image is softer.
  if (input.look?.refiner === false) image = image.blur(Math.max(1, input.width / 128));
  return image.jpeg({ quality: JPEG_QUALITY, optimiseCoding: false }).toBuffer();
}

/** The look's settings that differ from the defaults, as text: empty when none does. */
function lookKey(look: Look | undefined): string {
  if (!look) return '';
  return (Object.keys(DEFAULT_LOOK) as (keyof Look)[])
    .filter((name) => look[name] !== undefined && look[name] !== DEFAULT_LOOK[name])
    .map((name) => `${name}=${String(look[name])}`)
    .join('\n');
}

/** A number from 0 to 1 that a text picks; 0 for the default text, so the default changes nothing. */
function pick(text: string, fallback: string): number {
  return text === fallback ? 0 : (hashWords(text)[2]! % 1000) / 1000 + 0.001;
}

type Rgb = [number, number, number];

interface Ribbon {
  centre: number;
  amplitude: number;
  frequency: number;
  phase: number;
  halfWidth: number;
  strength: number;
  colour: Rgb;
  vertical: boolean;
}

interface Blob {
  x: number;
  y: number;
  radius: number;
  strength: number;
  colour: Rgb;
}

function paint(input: RenderInput, width: number, height: number): Buffer {
  const look = { ...DEFAULT_LOOK, ...definedOnly(input.look) };
  const promptHash = hashWords(input.prompt);
  const random = sfc32(hashWords(`${input.seed}/${input.index}`));
  const schedulerTurn = pick(look.scheduler, DEFAULT_LOOK.scheduler);
  const negative = pick(look.negativePrompt.trim(), '');
  // The seed nudges the prompt's hue too, so two seeds differ in overall colour, not only in layout. A
  // style moves the palette round the colour wheel; a negative prompt pushes it away from where it was.
  const hue =
    (promptHash[0]! % 360) +
    (random() - 0.5) * 60 +
    pick(look.style, DEFAULT_LOOK.style) * 300 +
    (negative > 0 ? 40 + negative * 60 : 0);
  const palette = paletteFor(hue, promptHash[1]!);

  // Another scheduler takes another path to the picture: the same elements, turned and shifted.
  const angle = random() * Math.PI * 2 + schedulerTurn * Math.PI * 2;
  const gradientX = Math.cos(angle);
  const gradientY = Math.sin(angle);
  const background = [palette[0]!, palette[1]!] as const;

  const blobs: Blob[] = [];
  const blobCount = 4 + Math.floor(random() * 4);
  for (let i = 0; i < blobCount; i++) {
    blobs.push({
      x: 0.1 + random() * 0.8,
      y: 0.1 + random() * 0.8,
      radius: 0.06 + random() * 0.2,
      strength: 0.6 + random() * 0.35,
      colour: palette[2 + Math.floor(random() * (palette.length - 2))]!,
    });
  }
  const ribbons: Ribbon[] = [];
  const ribbonCount = 1 + Math.floor(random() * 3);
  for (let i = 0; i < ribbonCount; i++) {
    ribbons.push({
      centre: 0.2 + random() * 0.6,
      amplitude: 0.05 + random() * 0.15,
      frequency: 3 + random() * 9,
      phase: random() * Math.PI * 2 + schedulerTurn * Math.PI,
      halfWidth: 0.015 + random() * 0.05,
      strength: 0.35 + random() * 0.3,
      colour: palette[2 + Math.floor(random() * (palette.length - 2))]!,
      vertical: random() < 0.5,
    });
  }

  // What the negative prompt names is left out: one of the shapes is gone.
  if (negative > 0 && blobs.length > 1) blobs.splice(Math.floor(negative * blobs.length), 1);
  // More steps than the default resolve fine detail: small dots, more of them the more steps. They come
  // from a generator of their own, so the composition above stays the same.
  const detail = sfc32(hashWords(`${input.seed}/${input.index}/detail`));
  const dots = Math.round(Math.max(0, look.steps - DEFAULT_LOOK.steps) * 0.4);
  for (let i = 0; i < dots; i++) {
    blobs.push({
      x: detail(),
      y: detail(),
      radius: 0.012 + detail() * 0.02,
      strength: 0.7,
      colour: palette[2 + Math.floor(detail() * (palette.length - 2))]!,
    });
  }
  // Fewer steps than the default leave noise, as an image not fully denoised does; so does a high-noise
  // fraction away from the default (the base and refiner split the steps where they should not).
  const grain =
    Math.max(0, DEFAULT_LOOK.steps - look.steps) * 9 +
    Math.abs(look.highNoiseFraction - DEFAULT_LOOK.highNoiseFraction) * 80;
  const noise = sfc32(hashWords(`${input.seed}/${input.index}/grain`));
  // Guidance pulls colours apart from grey: low guidance is washed out, high guidance vivid and hard.
  const vividness = Math.pow(look.guidanceScale / DEFAULT_LOOK.guidanceScale, 0.7);
  // Without the refiner the picture is flatter as well as softer (see encode).
  const contrast = Math.pow(look.guidanceScale / DEFAULT_LOOK.guidanceScale, 0.25) * (look.refiner ? 1 : 0.8);
  const vignetteDepth = 0.45 + (look.strength - DEFAULT_LOOK.strength) * 1.2;

  const pixels = Buffer.alloc(width * height * 3);
  for (let row = 0; row < height; row++) {
    const y = (row + 0.5) / height;
    for (let column = 0; column < width; column++) {
      const x = (column + 0.5) / width;
      const along = Math.min(1, Math.max(0, 0.5 + ((x - 0.5) * gradientX + (y - 0.5) * gradientY)));
      let red = mix(background[0][0], background[1][0], along);
      let green = mix(background[0][1], background[1][1], along);
      let blue = mix(background[0][2], background[1][2], along);
      for (const ribbon of ribbons) {
        const [across, run] = ribbon.vertical ? [x, y] : [y, x];
        const wave = ribbon.centre + ribbon.amplitude * Math.sin(ribbon.frequency * run + ribbon.phase);
        const weight =
          ribbon.strength *
          (1 - smoothstep(ribbon.halfWidth * 0.4, ribbon.halfWidth, Math.abs(across - wave)));
        red = mix(red, ribbon.colour[0], weight);
        green = mix(green, ribbon.colour[1], weight);
        blue = mix(blue, ribbon.colour[2], weight);
      }
      for (const blob of blobs) {
        const dx = x - blob.x;
        const dy = y - blob.y;
        // A disc with a soft rim plus a faint glow beyond it reads as a shape, not a smudge.
        const distance = Math.sqrt(dx * dx + dy * dy) / blob.radius;
        const disc = 1 - smoothstep(0.75, 1, distance);
        const glow = 0.25 * Math.exp(-distance * distance * 0.5);
        const weight = blob.strength * Math.max(disc, glow);
        red = mix(red, blob.colour[0], weight);
        green = mix(green, blob.colour[1], weight);
        blue = mix(blue, blob.colour[2], weight);
      }
      if (vividness !== 1 || contrast !== 1) {
        const grey = 0.299 * red + 0.587 * green + 0.114 * blue;
        red = 128 + (grey + (red - grey) * vividness - 128) * contrast;
        green = 128 + (grey + (green - grey) * vividness - 128) * contrast;
        blue = 128 + (grey + (blue - grey) * vividness - 128) * contrast;
      }
      if (grain > 0) {
        const speck = (noise() - 0.5) * grain;
        red += speck;
        green += speck;
        blue += speck;
      }
      const dx = x - 0.5;
      const dy = y - 0.5;
      const vignette = 1 - vignetteDepth * (dx * dx + dy * dy);
      const offset = (row * width + column) * 3;
      pixels[offset] = clampByte(red * vignette);
      pixels[offset + 1] = clampByte(green * vignette);
      pixels[offset + 2] = clampByte(blue * vignette);
    }
  }
  return pixels;
}

function definedOnly(look: Look | undefined): Look {
  return Object.fromEntries(Object.entries(look ?? {}).filter(([, value]) => value !== undefined));
}

/** Two soft background tones and four accents around one hue: analogous colours plus a complement. */
function paletteFor(hue: number, variation: number): Rgb[] {
  const saturation = 0.45 + (variation % 30) / 100;
  return [
    hslToRgb(hue, saturation * 0.7, 0.22),
    hslToRgb(hue + 35, saturation * 0.8, 0.42),
    hslToRgb(hue - 30, saturation, 0.55),
    hslToRgb(hue + 15, saturation, 0.7),
    hslToRgb(hue + 180, saturation * 0.9, 0.6),
    hslToRgb(hue + 60, saturation, 0.8),
  ];
}

function hslToRgb(hueDegrees: number, saturation: number, lightness: number): Rgb {
  const hue = (((hueDegrees % 360) + 360) % 360) / 360;
  const chroma = (1 - Math.abs(2 * lightness - 1)) * saturation;
  const channel = (shift: number): number => {
    const k = (shift + hue * 12) % 12;
    return 255 * (lightness - (chroma / 2) * Math.max(-1, Math.min(k - 3, 9 - k, 1)));
  };
  return [channel(0), channel(8), channel(4)];
}

function mix(from: number, to: number, amount: number): number {
  return from + (to - from) * amount;
}

function smoothstep(edgeFrom: number, edgeTo: number, value: number): number {
  const t = Math.min(1, Math.max(0, (value - edgeFrom) / (edgeTo - edgeFrom)));
  return t * t * (3 - 2 * t);
}

function clampByte(value: number): number {
  return Math.max(0, Math.min(255, Math.round(value)));
}

/** cyrb128: four well-mixed 32-bit words from a string; enough to seed sfc32 and key the cache. */
function hashWords(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ code, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ code, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ code, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ code, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

function hashHex(text: string): string {
  return hashWords(text)
    .map((word) => word.toString(16).padStart(8, '0'))
    .join('');
}

/** sfc32: a small seeded generator, so a seed always draws the same composition. */
function sfc32([seedA, seedB, seedC, seedD]: [number, number, number, number]): () => number {
  let a = seedA;
  let b = seedB;
  let c = seedC;
  let d = seedD;
  return () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}
