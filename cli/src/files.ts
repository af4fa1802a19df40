import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { extensionFor, type GeneratedImage } from '@sdxl-kit/client';

/** A short file-name-safe form of the prompt. */
export function slugify(prompt: string): string {
  const slug = prompt
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return slug || 'image';
}

/**
 * Writes an image as `<prompt-slug>-<seed>-<index>.<ext>`, never over an existing file (a suffix is
 * added), and returns the path written.
 */
export async function saveImage(outDir: string, prompt: string, image: GeneratedImage): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const base = `${slugify(prompt)}-${image.seed}-${image.index}`;
  const extension = extensionFor(image.mimeType);
  for (let attempt = 0; ; attempt++) {
    const file = path.join(
      outDir,
      attempt === 0 ? `${base}.${extension}` : `${base}-${attempt}.${extension}`,
    );
    try {
      await writeFile(file, image.bytes, { flag: 'wx' });
      return file;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}
