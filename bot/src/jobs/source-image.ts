import { isImageProblem, readImageInput } from '@sdxl-kit/client';
import { BotRefusal } from '../errors.ts';

/**
 * The largest image a member may bring: 10 MiB, Discord's default upload limit, so any file a member of
 * an unboosted server can attach is taken. A boosted server allows larger files; those are refused
 * rather than sent, because the image goes to the API as base64 inside the JSON body (10 MiB becomes
 * about 13.3 MB on the wire) and SDXL works at 1024 pixels anyway.
 */
export const MAX_SOURCE_BYTES = 10 * 1024 * 1024;

/**
 * The longest side taken, in pixels: 4096 is what Upscale 4x posts, so an upscale can come back in.
 * Read from the file's header before anything decodes it, so a small file that would decode to
 * billions of pixels is refused cheaply.
 */
export const MAX_SOURCE_SIDE = 4096;

/** A download from Discord's CDN that takes longer than this is given up. */
const DOWNLOAD_TIMEOUT_MS = 20_000;

/** A file a member attached or uploaded, as Discord describes it (nothing downloaded yet). */
export interface AttachedFile {
  url: string;
  name: string;
  size: number;
  contentType: string | null;
}

/** A checked image the member brought, ready to store and vary. */
export interface SourceImage {
  name: string;
  bytes: Buffer;
  mimeType: string;
  width: number;
  height: number;
}

const ALLOWED = `a JPEG, PNG or WebP image up to ${MAX_SOURCE_BYTES / 1024 / 1024} MB and ${MAX_SOURCE_SIDE} pixels a side`;

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function refuse(option: string, file: { name: string }, problem: string): BotRefusal {
  return new BotRefusal(
    'invalid_option',
    `\u26a0\ufe0f \`${option}\`: "${file.name.slice(0, 100)}" ${problem}; allowed: ${ALLOWED}.`,
  );
}

/**
 * What Discord says about the file, checked before the acknowledgement: its size and type. Discord
 * guesses the type from the name, so the bytes are checked again after the download.
 * @throws {BotRefusal} naming the option, the file and what is allowed.
 */
export function checkAttachedFile(option: string, file: AttachedFile): void {
  if (file.size > MAX_SOURCE_BYTES) throw refuse(option, file, `is ${megabytes(file.size)}`);
  if (file.contentType && !/^image\//i.test(file.contentType))
    throw refuse(option, file, `is ${file.contentType.split(';')[0]}, not an image`);
}

/**
 * Downloads the file from Discord's CDN and checks its bytes. Nothing but the URL is sent: no bot token,
 * no API key (an attachment URL needs no authorization). Reads at most one byte past the limit.
 * @throws {BotRefusal} naming the option and the file when it is not an image, too large or unreadable.
 */
export async function downloadSourceImage(option: string, file: AttachedFile): Promise<SourceImage> {
  let response: Response;
  try {
    response = await fetch(file.url, {
      signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS),
      redirect: 'follow',
    });
  } catch {
    throw refuse(option, file, 'could not be downloaded from Discord (try attaching it again)');
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => undefined);
    throw refuse(option, file, `could not be downloaded from Discord (HTTP ${response.status})`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > MAX_SOURCE_BYTES) {
        await reader.cancel().catch(() => undefined);
        throw refuse(option, file, `is more than ${megabytes(MAX_SOURCE_BYTES)}`);
      }
      chunks.push(Buffer.from(value));
    }
  } catch (error) {
    if (error instanceof BotRefusal) throw error;
    throw refuse(option, file, 'could not be downloaded from Discord (try attaching it again)');
  }
  const image = readImageInput(Buffer.concat(chunks));
  if (isImageProblem(image)) throw refuse(option, file, image.problem);
  if (image.kind !== 'bytes') throw refuse(option, file, 'is not an image');
  if (Math.max(image.width, image.height) > MAX_SOURCE_SIDE)
    throw refuse(option, file, `is ${image.width}x${image.height} pixels`);
  return {
    name: file.name,
    bytes: image.bytes,
    mimeType: image.mimeType,
    width: image.width,
    height: image.height,
  };
}

/** An image a member brought, downloading while the rest of the request is checked, and how far to vary it. */
export interface BroughtImage {
  image: Promise<SourceImage>;
  strength: number;
}

/**
 * Checks what Discord says about the file at once, then starts its download. The download may fail
 * after a refusal for another reason has already been given: that failure is then nobody's business.
 * @throws {BotRefusal} when the size or type Discord reports is not allowed.
 */
export function bringImage(option: string, file: AttachedFile, strength: number): BroughtImage {
  checkAttachedFile(option, file);
  const image = downloadSourceImage(option, file);
  image.catch(() => undefined);
  return { image, strength };
}
