import { createHash } from 'node:crypto';

/** Strings longer than this are kept in the record as a marker, not whole (an image is megabytes). */
export const ELIDE_OVER = 8 * 1024;

/**
 * The marker that stands for a long string in `requests[].body`: `<elided N chars sha256:HEX>`, with N
 * the string's length and HEX the SHA-256 of its UTF-8 bytes, so a test can tell what was sent.
 */
export function elisionMarker(text: string): string {
  const digest = createHash('sha256').update(text, 'utf8').digest('hex');
  return `<elided ${text.length} chars sha256:${digest}>`;
}

export function elideString(text: string): string {
  return text.length > ELIDE_OVER ? elisionMarker(text) : text;
}

/** A copy of a parsed body in which every string longer than {@link ELIDE_OVER} is a marker. */
export function elideBody(value: unknown): unknown {
  if (typeof value === 'string') return elideString(value);
  if (Array.isArray(value)) return value.map(elideBody);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, elideBody(entry)]));
  }
  return value;
}
