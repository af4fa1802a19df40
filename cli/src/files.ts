import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { extensionFor, type GeneratedImage as SeededImage, type ModelImage } from '@sdxl-kit/client';

/** An image to save: its seed names the file where it is known. */
type GeneratedImage = ModelImage;

/** A short file-name-safe form of the prompt; accents are dropped, not turned into word breaks. */
export function slugify(prompt: string): string {
  const slug = prompt
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return slug || 'image';
}

/**
 * Creates the folder and proves a file can be made in it, so an unusable `--out` is found before
 * the first billed call rather than after it.
 */
export async function prepareFolder(outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const probe = path.join(outDir, `.sdxl-write-check-${process.pid}-${randomBytes(4).toString('hex')}`);
  await writeFile(probe, '', { flag: 'wx' });
  await rm(probe, { force: true });
}

/**
 * Writes an image as `<prompt-slug>-<seed>-<index>.<ext>` (`<slug>-<index>` where the seed is
 * unknown; `<slug>-<label>-<seed>-<index>` with a label, such as a grid cell's `steps=30`), never over
 * an existing file, and returns the path written. Further copies are `..._2.<ext>`, `..._3.<ext>`:
 * neither a slug nor a label holds `_`, so the suffix cannot be read as a seed or an index.
 */
export async function saveImage(
  outDir: string,
  prompt: string,
  image: GeneratedImage,
  label?: string,
): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const name = label ? `${slugify(prompt)}-${label}` : slugify(prompt);
  const base = image.seed !== undefined ? `${name}-${image.seed}-${image.index}` : `${name}-${image.index}`;
  const extension = extensionFor(image.mimeType);
  for (let attempt = 0; ; attempt++) {
    const file = path.join(
      outDir,
      attempt === 0 ? `${base}.${extension}` : `${base}_${attempt + 1}.${extension}`,
    );
    try {
      await writeFile(file, image.bytes, { flag: 'wx' });
      return file;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/** An image that was paid for but could not be written where it was asked to go. */
export class WriteFailedError extends Error {
  readonly code = 'write_failed';
  constructor(message: string) {
    super(message);
    this.name = 'WriteFailedError';
  }
}

export interface SavedImage<T extends GeneratedImage = SeededImage> {
  image: T;
  path: string;
}

/**
 * Saves a call's images in `outDir`. An image that cannot be written there (the folder vanished, the
 * disk filled) is billed already, so it is kept in the system's temporary folder instead, and the
 * error says where; only when that fails too is it lost.
 */
export async function saveImages<T extends GeneratedImage>(
  outDir: string,
  prompt: string,
  images: readonly T[],
  label?: string,
): Promise<{ saved: SavedImage<T>[]; error?: WriteFailedError }> {
  const saved: SavedImage<T>[] = [];
  const problems: string[] = [];
  for (const image of images) {
    try {
      saved.push({ image, path: await saveImage(outDir, prompt, image, label) });
      continue;
    } catch (error) {
      const which = images.length === 1 ? 'the image' : `image ${image.index + 1} of ${images.length}`;
      const reason = (error as Error).message;
      try {
        const kept = await saveImage(tmpdir(), prompt, image, label);
        saved.push({ image, path: kept });
        problems.push(
          `Could not save ${which} in "${outDir}" (${reason}). The call was billed, so sdxl saved it to ${kept} instead.`,
        );
      } catch {
        problems.push(
          `Could not save ${which} in "${outDir}" (${reason}), nor in ${tmpdir()}. The call was billed and the image is lost.`,
        );
      }
    }
  }
  return problems.length > 0 ? { saved, error: new WriteFailedError(problems.join(' ')) } : { saved };
}
