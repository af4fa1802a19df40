// Writes a text into an image file where image tools read it, by inserting chunks or segments: the
// image data is never decoded or re-encoded, so the pixels stay the bytes the API sent. PNG gets a
// `parameters` text chunk (what AUTOMATIC1111 writes); JPEG and WebP get EXIF UserComment (what
// AUTOMATIC1111 writes there) and an XMP packet holding the same text as exif:UserComment.
//
// No maintained npm package writes all three without re-encoding (meta-png writes Latin-1 tEXt only,
// piexifjs is JPEG only and unmaintained, node-webpmux is WebP only), so this is a small writer; the
// tests read its output back with an independent reader (exifreader). It imports nothing of Node's
// (the n8n node bundles it, and n8n allows community nodes few modules): CRC-32 is computed here.
import type { ImageMimeType } from './response.ts';

/** The PNG text keyword AUTOMATIC1111 reads. */
export const PARAMETERS_KEYWORD = 'parameters';

/**
 * The image with `text` written into its metadata (see the file's head for where). Anything that would
 * be lost or made unreadable is not touched: a PNG text chunk of the same keyword is replaced; an
 * EXIF or XMP block the file already has is kept, and then only the missing one is added. A file whose
 * structure is not what its type promises is returned as it came: the image matters more than its
 * caption.
 */
export function embedText(bytes: Buffer, mimeType: ImageMimeType, text: string): Buffer {
  try {
    if (mimeType === 'image/png') return embedInPng(bytes, text);
    if (mimeType === 'image/jpeg') return embedInJpeg(bytes, text);
    return embedInWebp(bytes, text);
  } catch (error) {
    if (error instanceof MalformedImage) return bytes;
    throw error;
  }
}

class MalformedImage extends Error {}

function check(condition: boolean): asserts condition {
  if (!condition) throw new MalformedImage();
}

// PNG: signature, then chunks of length (4, big-endian), type (4), data, CRC-32 of type and data.

const PNG_SIGNATURE_LENGTH = 8;

function embedInPng(bytes: Buffer, text: string): Buffer {
  const ihdrEnd = PNG_SIGNATURE_LENGTH + 12 + bytes.readUInt32BE(PNG_SIGNATURE_LENGTH);
  check(bytes.toString('latin1', PNG_SIGNATURE_LENGTH + 4, PNG_SIGNATURE_LENGTH + 8) === 'IHDR');
  check(ihdrEnd <= bytes.length);
  // Latin-1 text goes in tEXt, as AUTOMATIC1111 (through Pillow) writes it; anything else in iTXt.
  const latin1 = charactersUpTo(text, 0xff);
  const keyword = Buffer.from(`${PARAMETERS_KEYWORD}\0`, 'latin1');
  const chunk = latin1
    ? pngChunk('tEXt', Buffer.concat([keyword, Buffer.from(text, 'latin1')]))
    : // keyword, compression flag and method (none), empty language tag and translated keyword, UTF-8
      pngChunk('iTXt', Buffer.concat([keyword, Buffer.from([0, 0, 0, 0]), Buffer.from(text, 'utf8')]));
  const kept = [bytes.subarray(0, ihdrEnd), chunk];
  for (let at = ihdrEnd; at < bytes.length;) {
    check(at + 12 <= bytes.length);
    const end = at + 12 + bytes.readUInt32BE(at);
    check(end <= bytes.length);
    const type = bytes.toString('latin1', at + 4, at + 8);
    const ours =
      (type === 'tEXt' || type === 'iTXt') && bytes.subarray(at + 8, end - 4).indexOf(keyword) === 0;
    if (!ours) kept.push(bytes.subarray(at, end));
    at = end;
  }
  return Buffer.concat(kept);
}

/** Whether every character of the text has a code at most `max` (0xFF: Latin-1, 0x7F: ASCII). */
function charactersUpTo(text: string, max: number): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > max) return false;
  return true;
}

/** CRC-32 (ISO 3309, as PNG uses it), table-driven. */
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, byte) => {
  let c = byte;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array, previous = 0): number {
  let c = ~previous >>> 0;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

// EXIF: a TIFF structure holding one field, UserComment, in the Exif IFD that IFD0 points to.

const EXIF_HEADER = Buffer.from('Exif\0\0', 'latin1');
const XMP_HEADER = Buffer.from('http://ns.adobe.com/xap/1.0/\0', 'latin1');

/** TIFF bytes (big-endian) whose only field is UserComment = text. */
function exifUserComment(text: string): Buffer {
  // UserComment starts with an 8-byte character code; AUTOMATIC1111 reads UNICODE as UTF-16 big-endian.
  const ascii = charactersUpTo(text, 0x7f);
  const comment = ascii
    ? Buffer.concat([Buffer.from('ASCII\0\0\0', 'latin1'), Buffer.from(text, 'latin1')])
    : Buffer.concat([Buffer.from('UNICODE\0', 'latin1'), utf16be(text)]);
  const ifd0 = 8;
  const exifIfd = ifd0 + 2 + 12 + 4;
  const data = exifIfd + 2 + 12 + 4;
  const tiff = Buffer.alloc(data + comment.length);
  tiff.write('MM', 0, 'latin1');
  tiff.writeUInt16BE(42, 2);
  tiff.writeUInt32BE(ifd0, 4);
  writeIfdEntry(tiff, ifd0, 0x8769, 4, 1, exifIfd); // ExifIFDPointer, LONG
  writeIfdEntry(tiff, exifIfd, 0x9286, 7, comment.length, data); // UserComment, UNDEFINED
  comment.copy(tiff, data);
  return tiff;
}

/** An IFD of one entry, with no next IFD. */
function writeIfdEntry(tiff: Buffer, at: number, tag: number, type: number, count: number, value: number) {
  tiff.writeUInt16BE(1, at);
  tiff.writeUInt16BE(tag, at + 2);
  tiff.writeUInt16BE(type, at + 4);
  tiff.writeUInt32BE(count, at + 6);
  tiff.writeUInt32BE(value, at + 10);
  tiff.writeUInt32BE(0, at + 14);
}

function utf16be(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf16le');
  return bytes.swap16();
}

/** An XMP packet with the text as exif:UserComment. */
function xmpPacket(text: string): Buffer {
  const escaped = text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`).replace(/\r/g, '&#13;');
  return Buffer.from(
    '<?xpacket begin="\uFEFF" id="W5M0MpCehiHzreSzNTczkc9d"?>' +
      '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
      '<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/">' +
      `<exif:UserComment><rdf:Alt><rdf:li xml:lang="x-default">${escaped}</rdf:li></rdf:Alt></exif:UserComment>` +
      '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>',
    'utf8',
  );
}

// JPEG: SOI, then segments of marker (FF xx) and length (2, big-endian, counting itself) up to SOS.

const JPEG_MAX_SEGMENT_DATA = 0xffff - 2;

function embedInJpeg(bytes: Buffer, text: string): Buffer {
  check(bytes[0] === 0xff && bytes[1] === 0xd8);
  let insertAt = 2;
  let hasExif = false;
  let hasXmp = false;
  for (let at = 2; ;) {
    check(at + 4 <= bytes.length && bytes[at] === 0xff);
    const marker = bytes[at + 1]!;
    if (marker === 0xda || marker === 0xd9) break; // start of scan, end of image: no more metadata
    const end = at + 2 + bytes.readUInt16BE(at + 2);
    check(end <= bytes.length);
    const data = bytes.subarray(at + 4, end);
    if (marker === 0xe1 && data.indexOf(EXIF_HEADER) === 0) hasExif = true;
    if (marker === 0xe1 && data.indexOf(XMP_HEADER) === 0) hasXmp = true;
    // JFIF's APP0 must come first, then EXIF: ours goes after any APP0.
    if (marker === 0xe0 && insertAt === at) insertAt = end;
    at = end;
  }
  const segments: Buffer[] = [];
  if (!hasExif) segments.push(...jpegApp1(EXIF_HEADER, exifUserComment(text)));
  if (!hasXmp) segments.push(...jpegApp1(XMP_HEADER, xmpPacket(text)));
  return Buffer.concat([bytes.subarray(0, insertAt), ...segments, bytes.subarray(insertAt)]);
}

/** An APP1 segment, or none when the text is too long for one (64 KiB). */
function jpegApp1(header: Buffer, payload: Buffer): Buffer[] {
  const length = header.length + payload.length;
  if (length > JPEG_MAX_SEGMENT_DATA) return [];
  const head = Buffer.from([0xff, 0xe1, 0, 0]);
  head.writeUInt16BE(length + 2, 2);
  return [head, header, payload];
}

// WebP: RIFF, size, WEBP, then chunks of FourCC, size (4, little-endian) and data padded to even.
// Metadata needs the extended format, whose VP8X chunk comes first and flags what follows.

const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;
const VP8X_ALPHA = 0x10;

function embedInWebp(bytes: Buffer, text: string): Buffer {
  check(bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP');
  const chunks: { type: string; data: Buffer }[] = [];
  for (let at = 12; at < bytes.length;) {
    check(at + 8 <= bytes.length);
    const size = bytes.readUInt32LE(at + 4);
    check(at + 8 + size <= bytes.length);
    chunks.push({ type: bytes.toString('latin1', at, at + 4), data: bytes.subarray(at + 8, at + 8 + size) });
    at += 8 + size + (size % 2);
  }
  check(chunks.length > 0);
  const first = chunks[0]!;
  const vp8x: Buffer = first.type === 'VP8X' ? Buffer.from(first.data) : vp8xFor(first);
  if (first.type === 'VP8X') chunks[0] = { type: 'VP8X', data: vp8x };
  else {
    check(chunks.length === 1);
    chunks.unshift({ type: 'VP8X', data: vp8x });
  }
  if (!chunks.some((chunk) => chunk.type === 'EXIF')) {
    chunks.push({ type: 'EXIF', data: exifUserComment(text) });
    vp8x[0] = vp8x[0]! | VP8X_EXIF;
  }
  if (!chunks.some((chunk) => chunk.type === 'XMP ')) {
    chunks.push({ type: 'XMP ', data: xmpPacket(text) });
    vp8x[0] = vp8x[0]! | VP8X_XMP;
  }
  const parts: Buffer[] = [Buffer.alloc(12)];
  for (const { type, data } of chunks) {
    const head = Buffer.alloc(8);
    head.write(type, 0, 'latin1');
    head.writeUInt32LE(data.length, 4);
    parts.push(head, data);
    if (data.length % 2) parts.push(Buffer.alloc(1));
  }
  const file = Buffer.concat(parts);
  file.write('RIFF', 0, 'latin1');
  file.writeUInt32LE(file.length - 8, 4);
  file.write('WEBP', 8, 'latin1');
  return file;
}

/** The VP8X chunk data of a simple WebP: its canvas is the one image's size. */
function vp8xFor(image: { type: string; data: Buffer }): Buffer {
  let width: number;
  let height: number;
  let alpha = false;
  if (image.type === 'VP8 ') {
    // A key frame: 3 bytes of frame tag, the start code 9D 01 2A, then 14-bit width and height.
    check(image.data.length >= 10 && image.data.readUIntBE(3, 3) === 0x9d012a);
    width = image.data.readUInt16LE(6) & 0x3fff;
    height = image.data.readUInt16LE(8) & 0x3fff;
  } else {
    check(image.type === 'VP8L' && image.data.length >= 5 && image.data[0] === 0x2f);
    const bits = image.data.readUInt32LE(1);
    width = (bits & 0x3fff) + 1;
    height = ((bits >>> 14) & 0x3fff) + 1;
    alpha = ((bits >>> 28) & 1) === 1;
  }
  const data = Buffer.alloc(10);
  data[0] = alpha ? VP8X_ALPHA : 0;
  data.writeUIntLE(width - 1, 4, 3);
  data.writeUIntLE(height - 1, 7, 3);
  return data;
}
