// Reads generation parameters back with exifreader, a maintained reader that shares no code with our
// writer, and checks that an image's data came through untouched.
import assert from 'node:assert/strict';
import ExifReader from 'exifreader';
import sharp from 'sharp';

/** Where each place readers look holds the parameters text; absent places are left out. */
export interface ReadParameters {
  /** PNG `parameters` text chunk (tEXt or iTXt), as AUTOMATIC1111 writes it. */
  png?: string;
  /** EXIF UserComment (JPEG, WebP). */
  exif?: string;
  /** XMP exif:UserComment (JPEG, WebP). */
  xmp?: string;
}

export function readParameters(bytes: Uint8Array): ReadParameters {
  const tags = ExifReader.load(Buffer.from(bytes), { expanded: true }) as Record<
    string,
    Record<string, { description?: string; value?: unknown }> | undefined
  >;
  const read: ReadParameters = {};
  const png = tags.png?.parameters?.description;
  if (png !== undefined) read.png = png;
  const comment = tags.exif?.UserComment?.value;
  if (Array.isArray(comment)) read.exif = userComment(Uint8Array.from(comment as number[]));
  const xmp = tags.xmp?.UserComment?.description;
  if (xmp !== undefined) read.xmp = xmp;
  return read;
}

/** exifreader finds the field; its 8-byte character code says how the rest is written. */
function userComment(value: Uint8Array): string {
  const code = Buffer.from(value.subarray(0, 8)).toString('latin1').replace(/\0+$/, '');
  const rest = Buffer.from(value.subarray(8));
  if (code === 'UNICODE') return Buffer.from(rest).swap16().toString('utf16le');
  assert.equal(code, 'ASCII', `UserComment character code ${code}`);
  return rest.toString('latin1');
}

/** The one text every place in the file holds (PNG: the chunk; JPEG and WebP: EXIF and XMP agree). */
export function parametersIn(bytes: Uint8Array): string | undefined {
  const read = readParameters(bytes);
  if (read.png !== undefined) return read.png;
  if (read.exif === undefined && read.xmp === undefined) return undefined;
  assert.equal(read.xmp, read.exif, 'EXIF UserComment and XMP hold the same text');
  return read.exif;
}

/**
 * The output holds the original's image data untouched: the same pixels decoded, and the original's
 * bytes inside it (PNG and JPEG: the original with one run of bytes inserted; WebP: its image chunk).
 */
export async function assertSameImageData(original: Buffer, output: Buffer): Promise<void> {
  const [before, after] = await Promise.all([decoded(original), decoded(output)]);
  assert.ok(before.equals(after), 'the decoded pixels are the same');
  if (original.toString('latin1', 0, 4) === 'RIFF') {
    const imageChunk = original.subarray(12);
    const chunk = imageChunk.toString('latin1', 0, 4) === 'VP8X' ? undefined : imageChunk;
    if (chunk) assert.ok(output.includes(chunk), 'the WebP image chunk is byte for byte in the output');
    return;
  }
  let prefix = 0;
  while (prefix < original.length && original[prefix] === output[prefix]) prefix++;
  const inserted = output.length - original.length;
  assert.ok(inserted >= 0, 'nothing was removed');
  assert.ok(
    output.subarray(prefix + inserted).equals(original.subarray(prefix)),
    'the output is the original with metadata inserted in one place',
  );
}

function decoded(bytes: Buffer): Promise<Buffer> {
  return sharp(bytes).raw().toBuffer();
}
