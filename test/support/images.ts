import sharp from 'sharp';

/** A real PNG of the given size: a gradient, so derived images can be told apart from it. */
export function pngImage(width: number, height: number): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 3;
      pixels[at] = Math.round((255 * x) / Math.max(1, width - 1));
      pixels[at + 1] = Math.round((255 * y) / Math.max(1, height - 1));
      pixels[at + 2] = 128;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/** A black mask with a white rectangle (white repaints): `box` is [left, top, width, height]. */
export function maskImage(
  width: number,
  height: number,
  box: [number, number, number, number],
): Promise<Buffer> {
  const [left, top, boxWidth, boxHeight] = box;
  const pixels = Buffer.alloc(width * height);
  for (let y = top; y < top + boxHeight; y++) pixels.fill(255, y * width + left, y * width + left + boxWidth);
  return sharp(pixels, { raw: { width, height, channels: 1 } })
    .png()
    .toBuffer();
}
