// `sdxl grid`, run as a user would (the real bin) against a sandbox over HTTP: one billed call per
// cell, all with one seed, a labelled picture whose cells differ, and a contact sheet of every cell.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import sharp from 'sharp';
import { GRID_LAYOUT } from '../../cli/src/grid-picture.ts';

const GRID_CELL = GRID_LAYOUT.cell;
import { parametersIn } from '../support/parameters.ts';
import { CliWorld, jsonLines, summaryOf } from './harness.ts';

describe('sdxl grid', () => {
  const world = new CliWorld();
  before(() => world.start());
  beforeEach(() => {
    world.sandbox.requests.length = 0;
    world.sandbox.billed.length = 0;
  });
  after(() => world.close());

  const submits = () =>
    world.sandbox.requests
      .filter((request) => request.method === 'POST' && request.path === '/v2/sdxl1.0-txt2img')
      .map((request) => request.body as Record<string, number>);

  /** The share of dark pixels (text) in a region of the picture. */
  async function ink(picture: Buffer, region: { left: number; top: number; width: number; height: number }) {
    const pixels = await sharp(picture).extract(region).greyscale().raw().toBuffer();
    return pixels.filter((value) => value < 100).length / pixels.length;
  }

  it('steps x guidance: says 9 images first, one call per cell with one seed, a labelled picture, a sheet of every cell', async () => {
    const out = path.join(world.dir, 'grid');
    const run = await world.run([
      'grid',
      'a lighthouse at dusk',
      '--x',
      'steps=20,30,40',
      '--y',
      'guidance-scale=3,7.5,15',
      '--seed',
      '7',
      '--rpm',
      '1000',
      '--json',
      '--out',
      out,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr.split('\n')[0]!,
      /^Grid: 3 x 3 = 9 images \(steps across, guidance-scale down\), seed 7;/,
    );

    const sent = submits();
    assert.equal(world.sandbox.billed.length, 9, 'one billed call per cell');
    assert.deepEqual(
      sent.map((body) => `${body.num_inference_steps}/${body.guidance_scale}/${body.seed}`).sort(),
      [
        '20/3/7',
        '20/7.5/7',
        '20/15/7',
        '30/3/7',
        '30/7.5/7',
        '30/15/7',
        '40/3/7',
        '40/7.5/7',
        '40/15/7',
      ].sort(),
    );

    const lines = jsonLines(run.stdout) as unknown as {
      prompt?: string;
      images?: { path: string }[];
      cost: number | null;
    }[];
    assert.equal(lines.filter((line) => line.images).length, 9, 'a --json line per cell, as a batch');
    const summary = summaryOf(run.stdout) as unknown as Record<string, unknown>;
    const billed = world.sandbox.billed.reduce((sum, call) => sum + call.cost, 0);
    assert.equal(summary.prompts, 9);
    assert.equal(summary.images, 9);
    assert.ok(
      Math.abs((summary.spent as number) - billed) < 1e-9,
      `spent ${summary.spent}, billed ${billed}`,
    );
    assert.ok(Math.abs(lines.reduce((sum, line) => sum + line.cost!, 0) - billed) < 1e-9, 'cost per cell');
    assert.equal(summary.seed, 7);
    const gridFile = summary.grid as string;
    assert.equal(path.dirname(gridFile), out);
    // Each cell's file is named after its settings, so a folder of cells reads as the grid does.
    assert.deepEqual(
      lines.map((line) => path.basename(line.images![0]!.path)).sort(),
      ['20', '30', '40']
        .flatMap((steps) =>
          ['3', '7.5', '15'].map((g) => `a-lighthouse-at-dusk-steps=${steps}-guidance-scale=${g}-7-0.jpg`),
        )
        .sort(),
    );
    const picture = await readFile(gridFile);
    const { width, height } = await sharp(picture).metadata();
    // Three cells across and down, a label column on the left, a header above and a caption below.
    assert.ok(width! > 3 * GRID_CELL + 100 && width! < 3 * GRID_CELL + 400, `width ${width}`);
    assert.ok(height! > 3 * GRID_CELL + 60 && height! < 3 * GRID_CELL + 140, `height ${height}`);

    // Where the cells are: the picture's right and bottom edges less the caption.
    const cellsLeft = width! - 3 * GRID_CELL - 4 * 4 + 4;
    const cellsTop = height! - 36 - 3 * GRID_CELL - 3 * 4;
    const cellPixels = await Promise.all(
      Array.from({ length: 9 }, (_, index) =>
        sharp(picture)
          .extract({
            left: cellsLeft + (index % 3) * (GRID_CELL + 4),
            top: cellsTop + Math.floor(index / 3) * (GRID_CELL + 4),
            width: GRID_CELL,
            height: GRID_CELL,
          })
          .raw()
          .toBuffer(),
      ),
    );
    for (let a = 0; a < 9; a++) {
      for (let b = a + 1; b < 9; b++)
        assert.ok(!cellPixels[a]!.equals(cellPixels[b]!), `cells ${a} and ${b} differ`);
    }
    // Labels: text above every column, left of every row, and the caption, where no image is.
    for (let column = 0; column < 3; column++) {
      const region = { left: cellsLeft + column * (GRID_CELL + 4), top: 28, width: GRID_CELL, height: 26 };
      assert.ok((await ink(picture, region)) > 0.02, `a label above column ${column + 1}`);
    }
    for (let row = 0; row < 3; row++) {
      const region = {
        left: 0,
        top: cellsTop + row * (GRID_CELL + 4) + 100,
        width: cellsLeft - 4,
        height: 56,
      };
      assert.ok((await ink(picture, region)) > 0.02, `a label left of row ${row + 1}`);
    }
    assert.ok(
      (await ink(picture, { left: 0, top: height! - 30, width: 300, height: 24 })) > 0.02,
      'the caption',
    );

    // Each cell's file says its own settings; the contact sheet lists every cell with them.
    const texts = await Promise.all(
      lines
        .filter((line) => line.images)
        .map(async (line) => parametersIn(await readFile(line.images![0]!.path))),
    );
    assert.deepEqual(
      texts
        .map((text) =>
          /Steps: (\d+), Sampler: UniPC, CFG scale: ([\d.]+), Seed: 7,/.exec(text!)!.slice(1).join('/'),
        )
        .sort(),
      ['20/3', '20/7.5', '20/15', '30/3', '30/7.5', '30/15', '40/3', '40/7.5', '40/15'].sort(),
    );
    const sheet = await readFile(path.join(out, 'index.html'), 'utf8');
    assert.equal(sheet.match(/class="card ok"/g)?.length, 9);
    for (const steps of ['20', '30', '40']) {
      for (const guidance of ['3', '7.5', '15']) {
        assert.match(
          sheet,
          new RegExp(
            `<dt>steps</dt><dd>${steps}</dd><dt>guidance-scale</dt><dd>${guidance.replace('.', '\\.')}</dd>`,
          ),
        );
      }
    }
    assert.match(sheet, new RegExp(`<img src="${path.basename(gridFile)}"`), 'the grid above the cards');
  });

  it('one axis, a seed drawn once for every cell', async () => {
    const out = path.join(world.dir, 'one-axis');
    const command = ['grid', 'a red fox', '--x', 'scheduler=UniPC|DDIM', '--rpm', '1000', '--out', out];
    const run = await world.run(command);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^Grid: 2 = 2 images \(scheduler across\), seed \d+;/);
    const seeds = new Set(submits().map((body) => body.seed));
    assert.equal(seeds.size, 1, 'one seed');
    assert.deepEqual(
      submits()
        .map((body) => body.scheduler)
        .sort(),
      ['DDIM', 'UniPC'],
    );
    assert.match(run.stdout, /Grid: .*grid-a-red-fox-\d+\.png/);
    assert.match(run.stdout, /2 of 2 prompts done\./);

    // The same command again: this prompt's seed from the journal, so nothing is sent or billed.
    world.sandbox.requests.length = 0;
    const again = await world.run(command);
    assert.equal(again.code, 0, again.stderr);
    const [seed] = seeds;
    assert.match(again.stderr, new RegExp(`seed ${seed} \\(this prompt's earlier grid in ${out}\\)`));
    assert.equal(submits().length, 0, 'nothing sent again');
    assert.match(again.stdout, /saved 1 image in an earlier run/);
    assert.match(again.stdout, new RegExp(`Grid: .*grid-a-red-fox-${seed}\\.png`));

    // --seed -1 asks for a new one: every cell is made again with it.
    const fresh = await world.run([...command, '--seed', '-1']);
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.equal(submits().length, 2, 'both cells made again');
    assert.equal(new Set(submits().map((body) => body.seed)).size, 1);
    assert.notEqual(submits()[0]!.seed, seed);
  });

  it('--dry-run says the number of images and the estimate and sends nothing; --max-cost under it refuses', async () => {
    const out = path.join(world.dir, 'dry');
    const axes = ['--x', 'steps=20,30', '--y', 'style=base|anime|photographic', '--seed', '3'];
    const dry = await world.run(['grid', 'a quiet harbour', ...axes, '--dry-run', '--json', '--out', out]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stderr, /^Grid: 2 x 3 = 6 images \(steps across, style down\), seed 3;/);
    const [plan] = jsonLines(dry.stdout) as unknown as Record<string, unknown>[];
    assert.equal(plan!.dryRun, true);
    assert.equal(plan!.calls, 6);
    assert.equal(plan!.images, 6);
    assert.ok((plan!.estimatedCredits as number) > 0);

    const capped = await world.run([
      'grid',
      'a quiet harbour',
      ...axes,
      '--max-cost',
      String((plan!.estimatedCredits as number) / 2),
      '--out',
      out,
    ]);
    assert.equal(capped.code, 2, capped.stderr);
    assert.match(
      capped.stderr,
      /--max-cost: this run is estimated at [\d.]+ credits \(6 calls, 6 images\), over the cap/,
    );
    assert.equal(world.sandbox.requests.filter((request) => request.method === 'POST').length, 0);
    assert.equal(world.sandbox.billed.length, 0);
  });

  for (const [what, args, message] of [
    ['no --x', ['x'], /--x is required/],
    [
      'an axis that is not a request flag',
      ['x', '--x', 'rpm=1,2'],
      /--x: "rpm=1,2" is not allowed; allowed: SETTING=V1,V2,\.\.\. with SETTING one of/,
    ],
    [
      'a value out of range',
      ['x', '--x', 'steps=20,200'],
      /^--x: steps=200 is not allowed; allowed: a whole number from 20 to 100\.$/m,
    ],
    [
      'a number that is not one',
      ['x', '--y', 'guidance-scale=5,lots', '--x', 'steps=20'],
      /^--y: guidance-scale=lots is not allowed; allowed: a number\.$/m,
    ],
    [
      'a refiner that is neither on nor off',
      ['x', '--x', 'refiner=maybe'],
      /--x: refiner=maybe is not allowed; allowed: on or off/,
    ],
    [
      'an axis with no values',
      ['x', '--x', 'steps='],
      /--x: steps has no values; allowed: steps=V1,V2,\.\.\./,
    ],
    [
      'a cell whose settings do not go together',
      ['x', '--x', 'high-noise-fraction=0.5,1', '--y', 'refiner=off,on'],
      /^--x: high-noise-fraction=1 is not allowed; allowed: below 1 while the refiner is on \(the cell high-noise-fraction=1, refiner=on\)\.$/m,
    ],
    [
      'the same setting on both axes',
      ['x', '--x', 'steps=20', '--y', 'steps=30'],
      /--x and --y both vary steps/,
    ],
    [
      'an axis setting also given as a flag',
      ['x', '--x', 'steps=20,30', '--steps', '40'],
      /--steps and the axis steps=\.\.\. both set steps/,
    ],
    [
      'several images a cell',
      ['x', '--x', 'steps=20,30', '-n', '2'],
      /--samples: 2 is not allowed; allowed: 1/,
    ],
  ] as const) {
    it(`refuses ${what} with exit 2 before anything is sent`, async () => {
      const run = await world.run(['grid', ...args, '--out', path.join(world.dir, 'refused')]);
      assert.equal(run.code, 2, `${run.stdout}${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(submits().length, 0);
    });
  }
});
