// Makes the README's pictures from the sandbox: a contact sheet of a small batch (one prompt failed
// on the API's side) as Chromium shows it, and an `sdxl grid` of steps against guidance. Run on
// demand: node scripts/docs-pictures.ts (needs Debian's chromium). Writes docs/images/.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { startSandbox } from '@sdxl-kit/sandbox';
import { launchChromium } from '../e2e/support/chromium.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const IMAGES = path.join(ROOT, 'docs/images');
const BIN = path.join(ROOT, 'cli/bin/sdxl.js');

const sandbox = await startSandbox({ apiKey: 'docs-key', failJobs: [false, false, false, false, true] });
const work = await mkdtemp(path.join(tmpdir(), 'sdxl-docs-'));
// Asynchronously: the sandbox answers from this process's event loop.
const sdxl = (args: string[]) =>
  promisify(execFile)(process.execPath, [BIN, ...args, '--rpm', '1000'], {
    env: { PATH: process.env.PATH, SDXL_API_KEY: 'docs-key', SDXL_BASE_URL: sandbox.url },
    cwd: work,
  }).catch((error: { stderr?: string }) => process.stderr.write(error.stderr ?? String(error)));
try {
  const prompts = path.join(work, 'prompts.txt');
  await writeFile(
    prompts,
    [
      'a lighthouse at dusk',
      'a red fox in fresh snow',
      'an old tram in the rain',
      'a blue whale under the ice',
      'a market at night',
      'a cat asleep on a piano',
    ].join('\n'),
  );
  // Relative paths, as a user types them: the page's heading shows them.
  await sdxl(['imagine', '--prompts', 'prompts.txt', '--out', 'batch', '--concurrency', '1']);
  const grid = path.join(work, 'grid');
  await sdxl([
    'grid',
    'a lighthouse at dusk',
    '--x',
    'steps=20,30,40',
    '--y',
    'guidance-scale=3,7.5,15',
    '--seed',
    '7',
    '--out',
    grid,
  ]);
  const gridFile = (await readdir(grid)).find((name) => name.startsWith('grid-'))!;
  await sharp(path.join(grid, gridFile))
    .resize({ width: 640 })
    .jpeg({ quality: 75, mozjpeg: true })
    .toFile(path.join(IMAGES, 'grid.jpg'));

  const browser = await launchChromium(path.join(work, 'profile'), { width: 1000, height: 700 });
  const page = await browser.newPage();
  await page.emulateMedia({ colorScheme: 'light' });
  await page.goto(pathToFileURL(path.join(work, 'batch', 'index.html')).href);
  await page.waitForFunction(() =>
    [...document.querySelectorAll('img')].every(
      (img) => img.getBoundingClientRect().top > innerHeight || (img.complete && img.naturalWidth > 0),
    ),
  );
  // Committed to the repository: scaled and compressed to stay small (about 50 KB each).
  await sharp(await page.screenshot())
    .resize({ width: 800 })
    .jpeg({ quality: 75, mozjpeg: true })
    .toFile(path.join(IMAGES, 'contact-sheet.jpg'));
  await browser.close();
} finally {
  await sandbox.close();
  await rm(work, { recursive: true, force: true });
}
