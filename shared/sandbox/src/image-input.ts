import sharp from 'sharp';
import type { FileStore } from './storage.ts';

/** Formats the sandbox accepts in an image field or an upload, as sharp names them. */
export const IMAGE_FORMATS: readonly string[] = ['jpeg', 'png', 'webp'];

/** A decoded input image: its bytes and size. */
export interface InputImage {
  bytes: Buffer;
  width: number;
  height: number;
}

/** What resolving an image field needs from the server and the request. */
export interface ImageSource {
  store: FileStore;
  /** Whether a URL points at this sandbox (then /assets and /files are read locally). */
  isOwn: (url: URL) => boolean;
  fetchTimeoutMs: number;
  ttlMs: number;
  /** Largest input accepted, in bytes (the body limit: a URL must not smuggle in more). */
  maxBytes: number;
  signal: AbortSignal;
}

export type Resolved = { ok: true; image: InputImage } | { ok: false; message: string };

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
const OWN_PATH = /^\/(assets|files)\/([^/]+)$/;

/**
 * Turns the value of an image field into pixels the way the hosted API takes it: raw base64 (the older
 * official samples), a `data:` URL, or an http(s) URL (the current samples). URLs the sandbox served
 * (its uploads and outputs) are read from its own store; others are fetched with a short timeout.
 * Any failure is a message that names the field.
 */
export async function resolveImage(field: string, value: string, source: ImageSource): Promise<Resolved> {
  const bytes = await bytesOf(field, value, source);
  if (typeof bytes === 'string') return { ok: false, message: bytes };
  try {
    const metadata = await sharp(bytes).metadata();
    if (!IMAGE_FORMATS.includes(metadata.format) || !metadata.width || !metadata.height) {
      return { ok: false, message: `${field}: must be a JPEG, PNG or WebP image, got ${metadata.format}` };
    }
    return { ok: true, image: { bytes, width: metadata.width, height: metadata.height } };
  } catch {
    return { ok: false, message: `${field}: is not an image (the bytes do not decode as JPEG, PNG or WebP)` };
  }
}

async function bytesOf(field: string, value: string, source: ImageSource): Promise<Buffer | string> {
  if (/^data:/i.test(value)) {
    const comma = value.indexOf(',');
    const header = comma < 0 ? '' : value.slice(5, comma);
    if (comma < 0 || !/;base64$/i.test(header)) {
      return `${field}: a data: URL must be base64 (data:image/png;base64,...)`;
    }
    return decodeBase64(field, value.slice(comma + 1));
  }
  if (/^https?:\/\//i.test(value)) return fetchImage(field, value, source);
  return decodeBase64(field, value);
}

function decodeBase64(field: string, text: string): Buffer | string {
  const compact = text.replace(/\s+/g, '');
  if (compact.length === 0 || !BASE64.test(compact)) {
    return `${field}: must be an image as raw base64, a data: URL or an http(s) URL`;
  }
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64');
}

async function fetchImage(field: string, text: string, source: ImageSource): Promise<Buffer | string> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${field}: ${shorten(text)} is not a valid URL`;
  }
  if (source.isOwn(url)) {
    const match = OWN_PATH.exec(url.pathname);
    const stored =
      match && (await source.store.read(match[1] as 'assets' | 'files', match[2]!, Date.now(), source.ttlMs));
    if (!stored) return `${field}: could not fetch ${shorten(text)}: 404 (not found or expired)`;
    return stored.bytes;
  }
  try {
    const response = await fetch(url, {
      signal: AbortSignal.any([source.signal, AbortSignal.timeout(source.fetchTimeoutMs)]),
      redirect: 'follow',
    });
    if (!response.ok) {
      await response.body?.cancel();
      return `${field}: could not fetch ${shorten(text)}: HTTP ${response.status}`;
    }
    const declared = Number(response.headers.get('content-length') ?? 0);
    if (declared > source.maxBytes) {
      await response.body?.cancel();
      return `${field}: ${shorten(text)} is larger than ${source.maxBytes} bytes`;
    }
    const bytes = Buffer.from(await response.arrayBuffer());
    if (bytes.length > source.maxBytes)
      return `${field}: ${shorten(text)} is larger than ${source.maxBytes} bytes`;
    return bytes;
  } catch (error) {
    const reason = error instanceof Error && error.name === 'TimeoutError' ? 'timed out' : 'unreachable';
    return `${field}: could not fetch ${shorten(text)}: ${reason}`;
  }
}

function shorten(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
