import sharp from 'sharp';

const TILE = 512;

/** JPEG qualities and widths tried, best first, when an image is over the upload limit. */
const SHRINK_STEPS: readonly { quality: number; width?: number }[] = [
  { quality: 85 },
  { quality: 70 },
  { quality: 70, width: 768 },
  { quality: 60, width: 512 },
];

/**
 * Returns the image as is when it fits `maxBytes`, else re-encoded (then scaled down) until it fits;
 * undefined when nothing fits.
 */
export async function fitImage(bytes: Buffer, maxBytes: number): Promise<Buffer | undefined> {
  if (bytes.length <= maxBytes) return bytes;
  for (const step of SHRINK_STEPS) {
    let pipeline = sharp(bytes);
    if (step.width) pipeline = pipeline.resize({ width: step.width });
    const smaller = await pipeline.jpeg({ quality: step.quality, mozjpeg: true }).toBuffer();
    if (smaller.length <= maxBytes) return smaller;
  }
  return undefined;
}

/**
 * A 2x2 preview grid (2x1 for two images) of 512-pixel tiles, as Midjourney shows four results.
 * Undefined when it cannot fit `maxBytes`: the images are attached anyway.
 */
export async function composeGrid(images: readonly Buffer[], maxBytes: number): Promise<Buffer | undefined> {
  const columns = Math.min(2, images.length);
  const rows = Math.ceil(images.length / 2);
  const tiles = await Promise.all(
    images.map((bytes) => sharp(bytes).resize(TILE, TILE, { fit: 'cover' }).toBuffer()),
  );
  const grid = await sharp({
    create: { width: columns * TILE, height: rows * TILE, channels: 3, background: { r: 32, g: 34, b: 37 } },
  })
    .composite(
      tiles.map((input, index) => ({ input, left: (index % 2) * TILE, top: Math.floor(index / 2) * TILE })),
    )
    .jpeg({ quality: 85 })
    .toBuffer();
  return fitImage(grid, maxBytes);
}

/** JPEG qualities tried, best first, when an upscale is over the upload limit: never smaller in pixels. */
const UPSCALE_QUALITIES: readonly number[] = [90, 80, 70, 60, 50, 40, 30];

/**
 * An upscale as is when it fits `maxBytes`, else re-encoded as JPEG at the best quality that fits (the
 * size in pixels is what was asked for, so it is kept); undefined when even the lowest quality is too large.
 */
export async function fitUpscale(
  bytes: Buffer,
  maxBytes: number,
): Promise<{ bytes: Buffer; quality?: number } | undefined> {
  if (bytes.length <= maxBytes) return { bytes };
  for (const quality of UPSCALE_QUALITIES) {
    const smaller = await sharp(bytes, { limitInputPixels: false })
      .jpeg({ quality, mozjpeg: true })
      .toBuffer();
    if (smaller.length <= maxBytes) return { bytes: smaller, quality };
  }
  return undefined;
}
