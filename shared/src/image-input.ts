// Image inputs in any form a host holds them (bytes, a data: URL, base64, an http(s) URL), checked
// before anything is billed: the bytes must be a JPEG, PNG or WebP whose size can be read.
import { imageSize } from 'image-size';
import { detectImageType, type ImageMimeType } from './response.ts';

/** What a caller may pass for an image field. A file path is the command line's business: it reads the file. */
export type ImageInput = Uint8Array | string;

/** An image input after checking: a URL to pass through, or bytes with their type and size. */
export type PreparedImage =
  | { kind: 'url'; url: string }
  | { kind: 'bytes'; bytes: Buffer; mimeType: ImageMimeType; width: number; height: number };

/** Why an input is not an image, in words an error message can end with. */
export type ImageProblem = { problem: string };

const BASE64_TEXT = /^[A-Za-z0-9+/\s]+={0,2}\s*$/;

/** Reads an image input; returns what is wrong instead of throwing, so the caller can name the field. */
export function readImageInput(value: unknown): PreparedImage | ImageProblem {
  if (value instanceof Uint8Array)
    return readBytes(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  if (typeof value !== 'string')
    return { problem: 'is not an image: give bytes, a data: URL, base64 or an http(s) URL' };
  const text = value.trim();
  if (/^https?:\/\//i.test(text)) {
    try {
      return { kind: 'url', url: new URL(text).href };
    } catch {
      return { problem: 'is not a valid http(s) URL' };
    }
  }
  if (text.startsWith('data:')) {
    const comma = text.indexOf(',');
    if (comma < 0 || !/;base64$/i.test(text.slice(0, comma))) {
      return { problem: 'is a data: URL without base64 data' };
    }
    return readBytes(Buffer.from(text.slice(comma + 1), 'base64'));
  }
  if (text.length === 0) return { problem: 'is empty' };
  if (!BASE64_TEXT.test(text)) {
    return {
      problem: 'is neither an http(s) URL, a data: URL nor base64 (a file path? read the file first)',
    };
  }
  return readBytes(Buffer.from(text, 'base64'));
}

function readBytes(bytes: Buffer): PreparedImage | ImageProblem {
  if (bytes.length === 0) return { problem: 'is empty' };
  const mimeType = detectImageType(bytes);
  if (!mimeType)
    return { problem: `is not a JPEG, PNG or WebP image (${bytes.length} bytes of something else)` };
  try {
    const { width, height } = imageSize(bytes);
    if (width > 0 && height > 0) return { kind: 'bytes', bytes, mimeType, width, height };
  } catch {
    // Falls through: a header whose size cannot be read is a broken image.
  }
  return { problem: `is a ${mimeType} whose size cannot be read (a broken or cut-off file)` };
}

/** True for the result of {@link readImageInput} that is a problem. */
export function isImageProblem(value: PreparedImage | ImageProblem): value is ImageProblem {
  return 'problem' in value;
}

/** A short description of a prepared image for error messages: never its bytes. */
export function describeImage(image: PreparedImage): string {
  return image.kind === 'url'
    ? image.url
    : `a ${image.width}x${image.height} ${image.mimeType.slice(6).toUpperCase()}`;
}

/** The data: URL of prepared bytes, as Segmind's storage upload takes it. */
export function toDataUrl(image: Extract<PreparedImage, { kind: 'bytes' }>): string {
  return `data:${image.mimeType};base64,${image.bytes.toString('base64')}`;
}
