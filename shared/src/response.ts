import { BadResponseError } from './errors.ts';
import type { TransportResponse } from './transport.ts';

export type ImageMimeType = 'image/jpeg' | 'image/png' | 'image/webp';

/** Recognises an image by its first bytes, whatever the Content-Type header claims. */
export function detectImageType(bytes: Uint8Array): ImageMimeType | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (
    bytes.length >= 8 &&
    bytes[0] === 0x89 &&
    bytes[1] === 0x50 &&
    bytes[2] === 0x4e &&
    bytes[3] === 0x47 &&
    bytes[4] === 0x0d &&
    bytes[5] === 0x0a &&
    bytes[6] === 0x1a &&
    bytes[7] === 0x0a
  ) {
    return 'image/png';
  }
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP')
    return 'image/webp';
  return undefined;
}

/** File extension for a MIME type, without the dot. */
export function extensionFor(mimeType: ImageMimeType): string {
  return mimeType === 'image/jpeg' ? 'jpg' : mimeType === 'image/png' ? 'png' : 'webp';
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

/** What the API reports in its headers. Each is present only when the API sent it. */
export interface ResponseMetadata {
  /** The account's remaining credits after this call. */
  remainingCredits?: number;
  /** What this call cost, in credits. */
  cost?: number;
  /** The seed the API used. */
  seed?: number;
  requestId?: string;
  /** Generation time as the API reports it (seconds). */
  generationTime?: number;
}

/** Parses a decimal header strictly: credits are fractional, so never parseInt. */
export function parseDecimal(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) return undefined;
  const number = Number(text);
  return Number.isFinite(number) ? number : undefined;
}

export function readMetadata(headers: Record<string, string>): ResponseMetadata {
  const metadata: ResponseMetadata = {};
  const remainingCredits = parseDecimal(headers['x-remaining-credits']);
  if (remainingCredits !== undefined) metadata.remainingCredits = remainingCredits;
  const cost = parseDecimal(headers['x-cost']);
  if (cost !== undefined) metadata.cost = cost;
  const seed = parseDecimal(headers['x-seed-value']);
  if (seed !== undefined && Number.isSafeInteger(seed)) metadata.seed = seed;
  const requestId = headers['x-request-id']?.trim();
  if (requestId) metadata.requestId = requestId;
  const generationTime = parseDecimal(headers['x-generation-time']);
  if (generationTime !== undefined) metadata.generationTime = generationTime;
  return metadata;
}

export interface DecodedImage {
  bytes: Buffer;
  mimeType: ImageMimeType;
}

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

function decodeBase64Image(value: unknown, position: number): DecodedImage {
  if (typeof value !== 'string') {
    throw new BadResponseError(`Image ${position} in the answer is not a base64 string.`);
  }
  const text = value.startsWith('data:') ? value.slice(value.indexOf(',') + 1) : value;
  let bytes = Buffer.from(text, 'base64');
  // Node skips characters that are not base64, so a short decode means there were some: only then is
  // the string cleaned and checked, which keeps the common case to one pass over a large string.
  if (bytes.length < Math.floor((text.length * 3) / 4) - 2) {
    const clean = text.replace(/\s+/g, '');
    if (!clean || !BASE64.test(clean)) {
      throw new BadResponseError(`Image ${position} in the answer is not valid base64.`);
    }
    bytes = Buffer.from(clean, 'base64');
  }
  const mimeType = detectImageType(bytes);
  if (!mimeType) {
    throw new BadResponseError(`Image ${position} in the answer is not a JPEG, PNG or WebP image.`);
  }
  return { bytes, mimeType };
}

/**
 * The images in a 2xx answer: raw bytes, or JSON with `image` (a string or an array) or `images`.
 * Throws {@link BadResponseError} when there is no image to be had.
 */
/** `redact` keeps a key out of any server words an error quotes. */
export function extractImages(
  response: TransportResponse,
  redact: (text: string) => string = (text) => text,
): DecodedImage[] {
  const bytes = Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength);
  const mimeType = detectImageType(bytes);
  if (mimeType) {
    if (mimeType === 'image/jpeg' && !hasJpegEnd(bytes)) {
      throw new BadResponseError(`The image was cut off (${bytes.length} bytes, no end marker).`);
    }
    return [{ bytes, mimeType }];
  }
  const contentType = response.headers['content-type'] ?? 'no content type';
  if (bytes.length === 0)
    throw new BadResponseError(`The API answered ${response.status} with an empty body.`);
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new BadResponseError(
      `The API answered ${response.status} with ${bytes.length} bytes of ${contentType} that are neither an image nor JSON.`,
    );
  }
  const record = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const found = record.images ?? record.image;
  const list = Array.isArray(found) ? found : found === undefined ? [] : [found];
  if (list.length === 0) {
    // A 200 that carries the server's words instead of an image (a refusal, say): keep them.
    const said = ['error', 'message', 'detail']
      .map((key) => record[key])
      .find((value): value is string => typeof value === 'string' && value.trim() !== '');
    const words = said ? `: ${redact(said.replace(/\s+/g, ' ').trim().slice(0, 300))}` : '.';
    throw new BadResponseError(`The API answered with JSON that holds no image${words}`);
  }
  return list.map((value, index) => decodeBase64Image(value, index));
}

/** A JPEG ends with FF D9; tolerate a few bytes of padding after it. */
function hasJpegEnd(bytes: Buffer): boolean {
  const tail = bytes.subarray(Math.max(0, bytes.length - 64));
  for (let i = tail.length - 2; i >= 0; i--) if (tail[i] === 0xff && tail[i + 1] === 0xd9) return true;
  return false;
}
