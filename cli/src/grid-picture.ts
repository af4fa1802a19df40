// The picture `sdxl grid` writes: its cells' images side by side, scaled to one size, with the axes'
// settings and values drawn above the columns and left of the rows, as AUTOMATIC1111's X/Y plot.
import { escapeHtml } from './contact-sheet.ts';

/** One axis of a grid: the flag it varies and the label of each of its values. */
export interface PictureAxis {
  flag: string;
  labels: readonly string[];
}

/** Where things are on the picture, in pixels. */
export const GRID_LAYOUT = {
  /** The side of a cell's image. */
  cell: 256,
  gap: 4,
  /** Above the cells: the x axis's labels. */
  header: 56,
  /** Below the cells: the prompt and seed. */
  footer: 36,
  font: 18,
} as const;

const { cell: CELL, gap: GAP, header: HEADER, footer: FOOTER, font: FONT } = GRID_LAYOUT;

/**
 * The labelled grid as a PNG: each cell's image (in `files`, row by row; undefined where the cell
 * failed, drawn grey with a cross) scaled to {@link GRID_LAYOUT}'s cell, the x values above the columns
 * and the y values left of the rows (each as `setting: value`), the prompt and seed below.
 */
export async function drawGrid(grid: {
  prompt: string;
  seed: number;
  x: PictureAxis;
  y: PictureAxis | undefined;
  files: readonly (string | undefined)[];
}): Promise<Buffer> {
  // Loaded here, not with the command: its native library would slow every grid's checks and dry run.
  const { default: sharp } = await import('sharp');
  const { x, y } = grid;
  const columns = x.labels.length;
  const rows = y?.labels.length ?? 1;
  const rowLabels = y?.labels.map((label) => `${y.flag}: ${label}`) ?? [];
  const left = y
    ? Math.max(120, Math.min(360, 24 + Math.max(...rowLabels.map((label) => label.length)) * FONT * 0.6))
    : 0;
  const width = Math.round(left + columns * (CELL + GAP) + GAP);
  const height = HEADER + rows * (CELL + GAP) + GAP + FOOTER;
  const cellAt = (index: number) => ({
    left: Math.round(left + GAP + (index % columns) * (CELL + GAP)),
    top: HEADER + GAP + Math.floor(index / columns) * (CELL + GAP),
  });
  const images = await Promise.all(
    grid.files.map(async (file, index) =>
      file
        ? { input: await sharp(file).resize(CELL, CELL, { fit: 'cover' }).toBuffer(), ...cellAt(index) }
        : undefined,
    ),
  );
  const texts: string[] = [];
  const text = (
    content: string,
    atX: number,
    atY: number,
    anchor: 'start' | 'middle' | 'end',
    size: number = FONT,
  ) =>
    texts.push(
      `<text x="${atX}" y="${atY}" font-size="${size}" text-anchor="${anchor}">${escapeHtml(content)}</text>`,
    );
  text(`${x.flag} \u2192`, left + GAP, 22, 'start', FONT - 2);
  x.labels.forEach((label, column) =>
    text(`${x.flag}: ${label}`, cellAt(column).left + CELL / 2, HEADER - 10, 'middle'),
  );
  if (y) {
    text(`${y.flag} \u2193`, 12, 22, 'start', FONT - 2);
    rowLabels.forEach((label, row) =>
      text(label, left - 10, cellAt(row * columns).top + CELL / 2 + FONT / 3, 'end'),
    );
  }
  const caption = grid.prompt.length > 90 ? `${grid.prompt.slice(0, 89)}\u2026` : grid.prompt;
  text(`${caption}  \u00b7  seed ${grid.seed}`, 12, height - 12, 'start', FONT - 4);
  const missing = grid.files.flatMap((file, index) => {
    if (file) return [];
    const at = cellAt(index);
    return [
      `<rect x="${at.left}" y="${at.top}" width="${CELL}" height="${CELL}" fill="#ddd"/>`,
      `<path d="M${at.left} ${at.top}l${CELL} ${CELL}m0 -${CELL}l-${CELL} ${CELL}" stroke="#999" stroke-width="3"/>`,
    ];
  });
  const overlay = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><g font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" fill="#111">${texts.join('')}</g>${missing.join('')}</svg>`;
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite([
      ...images.filter((image) => image !== undefined),
      { input: Buffer.from(overlay), left: 0, top: 0 },
    ])
    .png()
    .toBuffer();
}
