/// <reference lib="dom" />
// Drives the Node-RED editor in Debian's Chromium: the palette, the SDXL node's form (defaults,
// refusal of an out-of-range value), its help, and the deployed example flow producing images.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLIENT_DEFAULTS } from '@sdxl-kit/client/core';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { PACKAGE_NAME, launchNodeRed, type RunningNodeRed } from '../../nodes/node-red/scripts/launch.ts';

const SCREENSHOTS = fileURLToPath(new URL('../../out/e2e/node-red/', import.meta.url));
const NODE_ID = 'sdxl-example-node';

let nodeRed: RunningNodeRed;
let context: BrowserContext;
let page: Page;
let profile: string;

before(async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  // SDXL_NODE_RED (a node-red package folder) and SDXL_NODE_BINARY run the same test on, say, Node-RED 4 on Node 20.
  nodeRed = await launchNodeRed({
    sandboxLatencyMs: 300,
    // The tarball npm would publish, so a file missing from "files" fails here.
    install: 'tarball',
    ...(process.env.SDXL_NODE_RED && { nodeRedDir: process.env.SDXL_NODE_RED }),
    ...(process.env.SDXL_NODE_BINARY && { nodeBinary: process.env.SDXL_NODE_BINARY }),
  });
  profile = await mkdtemp(join(tmpdir(), 'sdxl-chromium-'));
  context = await launchChromium(profile, { width: 1400, height: 900 });
  // Loopback only: anything else the editor might reach for is refused.
  await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => route.abort());
  page = await context.newPage();
  await page.goto(nodeRed.editorUrl);
  await page.waitForSelector('#red-ui-palette .red-ui-palette-node', { timeout: 30_000 });
  await page.waitForSelector(`#${NODE_ID}`, { timeout: 30_000 });
});

after(async () => {
  await context?.close();
  await nodeRed?.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
});

const dialogOk = () => page.locator('#node-dialog-ok');

// Opens a node's edit tray once the previous tray and any notification are gone: a double click that
// lands on a closing tray or a fading notification is lost, and a field found then belongs to the old tray.
async function openEditDialog(id: string, field = 'steps'): Promise<void> {
  await dialogOk().waitFor({ state: 'detached' });
  await page.locator('.red-ui-notification').first().waitFor({ state: 'detached' });
  await page.locator(`#${id}`).dblclick();
  await dialogOk().waitFor({ state: 'visible' });
  await page.waitForSelector(`#node-input-${field}`, { state: 'visible' });
}

/**
 * Hovers a field until Node-RED shows its tooltip with `text`: the editor opens a tooltip on
 * mouseenter after a short delay, and a synthetic hover on a busy machine can come before the field
 * is listening or leave too soon, so the pointer leaves and comes back once or twice before failing.
 */
async function showTooltip(field: Locator, text: string): Promise<void> {
  const tooltip = page.locator('.red-ui-popover', { hasText: text });
  for (let attempt = 1; ; attempt++) {
    await field.hover();
    try {
      await tooltip.waitFor({ state: 'visible', timeout: attempt < 3 ? 5_000 : 30_000 });
      return;
    } catch (error) {
      if (attempt >= 3) throw error;
      await page.mouse.move(0, 0);
    }
  }
}

// The tests that go on with the form a previous test opened open it themselves when run alone or after a failure.
async function ensureEditDialog(id: string): Promise<void> {
  if (!(await dialogOk().isVisible())) await openEditDialog(id);
}

async function closeEditDialog(button: 'ok' | 'cancel'): Promise<void> {
  await page.locator(`#node-dialog-${button}`).click();
  await dialogOk().waitFor({ state: 'detached' });
}

// A failed test leaves a picture and the editor as it was, then closes whatever it left open, so one
// failure is reported once rather than as every later test's click being intercepted.
afterEach(async (t) => {
  // A test's context has said whether it passed since Node 21.7; @types/node declares it on suites only.
  if ((t as { passed?: boolean }).passed !== false || !page) return;
  const name = t.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
  await page.screenshot({ path: `${SCREENSHOTS}failed-${name}.png` }).catch(() => undefined);
  const open = await page
    .evaluate(() => ({
      trays: document.querySelectorAll('.red-ui-tray').length,
      notifications: [...document.querySelectorAll('.red-ui-notification')].map((n) => n.textContent?.trim()),
    }))
    .catch((error: unknown) => String(error));
  console.error(`after "${t.name}" failed, the editor had open:`, JSON.stringify(open));
  for (const cancel of await page.locator('.red-ui-notification button').all())
    await cancel.click().catch(() => {});
  while (await dialogOk().isVisible()) {
    await page
      .locator('#node-dialog-cancel')
      .click({ timeout: 5_000 })
      .catch(() => {});
    await dialogOk()
      .waitFor({ state: 'detached', timeout: 5_000 })
      .catch(() => {});
  }
  await page.mouse.move(0, 0);
});

/** The account form's budget fields: empty, per day, a negative budget refused with its reason. */
async function checkBudgetFields(budget: Locator): Promise<void> {
  assert.equal(await budget.getAttribute('placeholder'), 'no budget');
  assert.equal(await budget.inputValue(), '', 'an account saved before budgets has none');
  const per = page.locator('#node-config-input-budgetWindow');
  assert.equal(await per.inputValue(), 'day', 'and counts per day once one is set');
  assert.deepEqual(await per.locator('option').allTextContents(), ['day', 'hour']);
  await budget.fill('-1');
  await budget.blur();
  await page.waitForFunction(() =>
    document.querySelector('#node-config-input-budget')?.classList.contains('input-error'),
  );
  await showTooltip(
    budget,
    'Budget: "-1" is not allowed; allowed: a number of credits, 0 or more (empty: no budget)',
  );
  await page.screenshot({ path: `${SCREENSHOTS}account-budget-refused.png` });
  await budget.fill('0.1');
  await budget.blur();
  await page.waitForFunction(
    () => !document.querySelector('#node-config-input-budget')?.classList.contains('input-error'),
  );
  await per.selectOption('hour');
  await page.screenshot({ path: `${SCREENSHOTS}account-budget.png` });
}

describe('the Node-RED editor with @sdxl-kit/node-red-sdxl', () => {
  it('runs the Node-RED that was asked for', async () => {
    const packageJson = process.env.SDXL_NODE_RED
      ? join(process.env.SDXL_NODE_RED, 'package.json')
      : createRequire(import.meta.url).resolve('node-red/package.json');
    const { version } = JSON.parse(await readFile(packageJson, 'utf8')) as { version: string };
    const settings = (await (await fetch(`${nodeRed.editorUrl}settings`)).json()) as { version: string };
    // Node-RED appends "-git" when a .git folder sits four levels above its runtime, as in this checkout.
    assert.equal(settings.version.replace(/-git$/, ''), version);
  });

  it('loads the package under its scoped name, with its node types and its examples', async () => {
    assert.equal(PACKAGE_NAME, '@sdxl-kit/node-red-sdxl');
    const sets = (await (
      await fetch(`${nodeRed.editorUrl}nodes`, { headers: { accept: 'application/json' } })
    ).json()) as { module: string; types: string[]; enabled: boolean; err?: string }[];
    const ours = sets.filter((set) => set.module === PACKAGE_NAME);
    assert.deepEqual(ours.flatMap((set) => set.types).sort(), ['sdxl', 'sdxl-config']);
    assert.ok(
      ours.every((set) => set.enabled && !set.err),
      JSON.stringify(ours),
    );
    // What Import → Examples lists, by module.
    const modules = (await (await fetch(`${nodeRed.editorUrl}library/examples/flows/`)).json()) as string[];
    assert.ok(modules.includes(PACKAGE_NAME), JSON.stringify(modules));
    const example = (await (
      await fetch(`${nodeRed.editorUrl}library/examples/flows/${PACKAGE_NAME}/generate-then-upscale`)
    ).json()) as { type: string }[];
    assert.ok(example.some((node) => node.type === 'sdxl'));
  });

  it('shows the sdxl node in the palette', async () => {
    const entry = page.locator('.red-ui-palette-node[data-palette-type="sdxl"]');
    await entry.waitFor({ state: 'visible' });
    assert.equal((await entry.innerText()).trim(), 'sdxl');
  });

  it("opens the node's form with every field and the contract's defaults", async () => {
    await openEditDialog(NODE_ID);
    const placeholder = (field: string) => page.locator(`#node-input-${field}`).getAttribute('placeholder');
    assert.equal(await placeholder('steps'), '25');
    assert.equal(await placeholder('samples'), '1');
    assert.equal(await placeholder('guidanceScale'), '7.5');
    assert.equal(await placeholder('strength'), '0.2');
    assert.equal(await placeholder('highNoiseFraction'), '0.8');
    assert.equal(await placeholder('seed'), '-1');
    assert.equal(await placeholder('scheduler'), 'UniPC');
    assert.equal(await placeholder('style'), 'base');
    assert.equal(await page.locator('#node-input-steps').getAttribute('max'), '100');
    const schedulers = await page
      .locator('#node-input-scheduler-known option')
      .evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value));
    assert.ok(schedulers.includes('UniPC') && schedulers.includes('Euler a'));
    assert.equal(await page.locator('#node-input-refiner option:checked').innerText(), 'default (on)');
    assert.equal(await page.locator('#node-input-output').inputValue(), 'messages');
    await page.screenshot({ path: `${SCREENSHOTS}form.png` });
  });

  it('accepts a scheduler that is not in the list', async () => {
    await ensureEditDialog(NODE_ID);
    await page.locator('#node-input-scheduler').fill('My Custom Sampler');
    await page.locator('#node-input-scheduler').blur();
    assert.equal(
      await page
        .locator('#node-input-scheduler')
        .evaluate((input) => input.classList.contains('input-error')),
      false,
    );
    await page.locator('#node-input-scheduler').fill('');
  });

  // Node-RED checks every field again whenever one changes, so the mark follows the Refiner.
  it('judges Noise fraction 1 by the Refiner chosen in the form, again when the Refiner changes', async () => {
    await ensureEditDialog(NODE_ID);
    const fraction = page.locator('#node-input-highNoiseFraction');
    const marked = () => fraction.evaluate((input) => input.classList.contains('input-error'));
    await fraction.fill('1');
    await fraction.blur();
    await page.waitForFunction(() =>
      document.querySelector('#node-input-highNoiseFraction')?.classList.contains('input-error'),
    );
    await showTooltip(
      fraction,
      'Noise fraction: "1" is not allowed; allowed: below 1 while the refiner is on',
    );
    await page.locator('#node-input-refiner').selectOption('false');
    await page.waitForFunction(
      () => !document.querySelector('#node-input-highNoiseFraction')?.classList.contains('input-error'),
    );
    await page.locator('#node-input-refiner').selectOption('');
    await page.waitForFunction(() =>
      document.querySelector('#node-input-highNoiseFraction')?.classList.contains('input-error'),
    );
    assert.equal(await marked(), true);
    await fraction.fill('');
    await fraction.blur();
    // Leave no tooltip open for the next test's hover.
    await page.mouse.move(0, 0);
    await page.waitForFunction(
      () => !document.querySelector('#node-input-highNoiseFraction')?.classList.contains('input-error'),
    );
  });

  it('refuses an out-of-range value before deploy', async () => {
    await ensureEditDialog(NODE_ID);
    const steps = page.locator('#node-input-steps');
    await steps.fill('500');
    await steps.blur();
    await page.waitForFunction(() =>
      document.querySelector('#node-input-steps')?.classList.contains('input-error'),
    );
    // The field says why, in a tooltip on hover: the field, the value and what is allowed.
    await showTooltip(steps, 'Steps: "500" is not allowed; allowed: a whole number from 20 to 100');
    await page.screenshot({ path: `${SCREENSHOTS}out-of-range.png` });
    await closeEditDialog('ok');
    await page.locator(`#${NODE_ID} .red-ui-flow-node-error`).waitFor({ state: 'visible' });

    await page.locator('#red-ui-header-button-deploy').click();
    const warning = page.locator('.red-ui-notification', { hasText: /not properly configured|invalid/i });
    await warning.waitFor({ state: 'visible' });
    await page.screenshot({ path: `${SCREENSHOTS}deploy-refused.png` });
    await warning.getByRole('button', { name: /cancel/i }).click();
    await warning.waitFor({ state: 'detached' });
    const flows = (await (await fetch(`${nodeRed.editorUrl}flows`)).json()) as Record<string, unknown>[];
    assert.equal(flows.find((node) => node.id === NODE_ID)?.steps, '', 'the running flow kept its value');

    await openEditDialog(NODE_ID);
    // The dialog is ready once it shows the node's value; a value typed before that can be overwritten.
    await page.waitForFunction(
      () => (document.querySelector('#node-input-steps') as HTMLInputElement | null)?.value === '500',
    );
    await page.locator('#node-input-steps').fill('');
    await page.locator('#node-input-steps').blur();
    await page.waitForFunction(
      () => !document.querySelector('#node-input-steps')?.classList.contains('input-error'),
    );
    await closeEditDialog('ok');
    try {
      await page.locator(`#${NODE_ID} .red-ui-flow-node-error`).waitFor({ state: 'hidden' });
    } catch (error) {
      const why = await page.evaluate((id) => {
        const red = (window as unknown as { RED: { nodes: { node(id: string): Record<string, unknown> } } })
          .RED;
        const node = red.nodes.node(id);
        return JSON.stringify({
          valid: node.valid,
          errors: node.validationErrors,
          steps: node.steps,
          operation: node.operation,
        });
      }, NODE_ID);
      throw new Error(`the node stayed invalid: ${why}`, { cause: error });
    }
  });

  it("shows each operation's fields from the model declarations, and refuses their out-of-range values", async () => {
    await openEditDialog(NODE_ID);
    const operation = page.locator('#node-input-operation');
    assert.equal(await operation.inputValue(), 'generate', 'a flow from before the operations is generate');
    assert.equal(await page.locator('#node-input-upscaleScale').isVisible(), false);
    await operation.selectOption('upscale');
    await page.locator('#node-input-upscaleScale').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#node-input-steps').isVisible(), false, "generate's fields are hidden");
    assert.deepEqual(await page.locator('#node-input-upscaleScale option').allTextContents(), [
      'default (2)',
      '2',
      '4',
      '8',
    ]);
    assert.equal(await page.locator('#node-input-upscaleQuality').getAttribute('placeholder'), '95');
    const quality = page.locator('#node-input-upscaleQuality');
    await quality.fill('5');
    await quality.blur();
    await page.waitForFunction(() =>
      document.querySelector('#node-input-upscaleQuality')?.classList.contains('input-error'),
    );
    await showTooltip(quality, 'Quality: "5" is not allowed; allowed: a whole number from 10 to 100');
    await page.screenshot({ path: `${SCREENSHOTS}upscale-fields.png` });
    await quality.fill('');
    await quality.blur();
    await page.mouse.move(0, 0);

    await operation.selectOption('inpaint');
    await page.locator('#node-input-inpaintMaskProperty').waitFor({ state: 'visible' });
    // Empty (a node saved before the operations) reads msg.mask, as the placeholder says.
    assert.equal(await page.locator('#node-input-inpaintMaskProperty').getAttribute('placeholder'), 'mask');
    // A field whose default the contract does not know says so rather than inventing one.
    assert.equal(
      await page.locator('#node-input-inpaintStrength').getAttribute('placeholder'),
      'unknown (the server decides)',
    );
    await operation.selectOption('vary');
    await page.locator('#node-input-varyPrompt').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#node-input-inpaintStrength').isVisible(), false);
    await closeEditDialog('cancel');
  });

  it("does not let a value left in another operation's field block deploy", async () => {
    await openEditDialog(NODE_ID);
    const operation = page.locator('#node-input-operation');
    await operation.selectOption('upscale');
    const quality = page.locator('#node-input-upscaleQuality');
    await quality.waitFor({ state: 'visible' });
    await quality.fill('5');
    await quality.blur();
    await page.waitForFunction(() =>
      document.querySelector('#node-input-upscaleQuality')?.classList.contains('input-error'),
    );
    // Back to generate: the upscale value stays in the node, unused, and is not judged.
    await operation.selectOption('generate');
    await page.locator('#node-input-steps').waitFor({ state: 'visible' });
    await closeEditDialog('ok');
    const state = () =>
      page.evaluate((id) => {
        const red = (window as unknown as { RED: { nodes: { node(id: string): Record<string, unknown> } } })
          .RED;
        const node = red.nodes.node(id);
        return { valid: node.valid, quality: node.upscaleQuality, operation: node.operation };
      }, NODE_ID);
    assert.deepEqual(await state(), { valid: true, quality: '5', operation: 'generate' });
    assert.equal(await page.locator(`#${NODE_ID} .red-ui-flow-node-error`).isVisible(), false);

    // Chosen again, the operation's value is judged again.
    await openEditDialog(NODE_ID);
    await page.locator('#node-input-operation').selectOption('upscale');
    await closeEditDialog('ok');
    await page.locator(`#${NODE_ID} .red-ui-flow-node-error`).waitFor({ state: 'visible' });
    await openEditDialog(NODE_ID, 'upscaleQuality');
    await page.waitForFunction(
      () => (document.querySelector('#node-input-upscaleQuality') as HTMLInputElement | null)?.value === '5',
    );
    await quality.fill('');
    await quality.blur();
    await page.locator('#node-input-operation').selectOption('generate');
    await closeEditDialog('ok');
    await page.locator(`#${NODE_ID} .red-ui-flow-node-error`).waitFor({ state: 'hidden' });
  });

  it("shows the node's help in the help panel", async () => {
    await page.locator(`#${NODE_ID}`).click();
    await page.keyboard.press('Control+g');
    await page.keyboard.press('h');
    const help = page.locator('.red-ui-sidebar-info, .red-ui-help').filter({ hasText: 'Precedence' }).first();
    await help.waitFor({ state: 'visible', timeout: 10_000 });
    const text = await help.innerText();
    // It opens with what the node does: the four operations, not text-to-image alone.
    assert.match(text, /Operation is one of: generate .*, vary .*, inpaint .*, or upscale /);
    assert.match(
      text,
      /inpaint and upscale first upload .* to Segmind's storage, which gives it a public URL/,
    );
    assert.match(text, /msg\.sdxl/);
    assert.match(text, /steps/);
    assert.match(text, /a whole number from 20 to 100/);
    await page.screenshot({ path: `${SCREENSHOTS}help.png` });
  });

  it("shows the account's help in the help panel", async () => {
    // Config nodes have no palette entry to click; this is the call the editor makes when one is selected.
    await page.evaluate(() =>
      (
        window as unknown as { RED: { sidebar: { help: { show(type: string): void } } } }
      ).RED.sidebar.help.show('sdxl-config'),
    );
    const help = page.locator('.red-ui-help').filter({ hasText: 'exported flows never contain it' }).first();
    await help.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await help.innerText(), /Requests\/min/);
    assert.match(await help.innerText(), /budget_exceeded/);
  });

  it("offers the account's budget per hour or day, and refuses a negative one with a tooltip saying why", async () => {
    await dialogOk().waitFor({ state: 'detached' });
    // What the pencil beside the node's Account field opens.
    await page.evaluate(() =>
      (
        window as unknown as { RED: { editor: { editConfig(name: string, type: string, id: string): void } } }
      ).RED.editor.editConfig('', 'sdxl-config', 'sdxl-example-account'),
    );
    const budget = page.locator('#node-config-input-budget');
    await budget.waitFor({ state: 'visible' });
    try {
      await checkBudgetFields(budget);
    } finally {
      // The afterEach closes node trays only; this one is the account's.
      await page.mouse.move(0, 0);
      await page.locator('#node-config-dialog-cancel').click();
      await budget.waitFor({ state: 'detached' });
    }
  });

  it("gives a new account the client's defaults", async () => {
    const defaults = await page.evaluate(() => {
      const type = (
        window as unknown as {
          RED: { nodes: { getType(type: string): { defaults: Record<string, { value: unknown }> } } };
        }
      ).RED.nodes.getType('sdxl-config');
      return Object.fromEntries(Object.entries(type.defaults).map(([name, entry]) => [name, entry.value]));
    });
    assert.equal(defaults.baseUrl, CLIENT_DEFAULTS.baseUrl);
    assert.equal(Number(defaults.maxInFlight), CLIENT_DEFAULTS.maxInFlight);
    assert.equal(Number(defaults.lowCreditsThreshold), CLIENT_DEFAULTS.lowCreditsThreshold);
    assert.equal(Number(defaults.timeout) * 1000, CLIENT_DEFAULTS.timeoutMs);
    assert.equal(defaults.budget, '', 'no budget unless one is set');
    assert.equal(defaults.budgetWindow, 'day');
  });

  it('runs the deployed example flow and serves the images it made', async () => {
    const before = nodeRed.sandbox.requests.length;
    await page.locator('#sdxl-example-inject .red-ui-flow-node-button').click();
    // The example asks for two images; its Join node gathers them, and the debug node shows the count.
    await page.locator('#sdxl-example-node .red-ui-flow-node-status-label', { hasText: /2 images/ }).waitFor({
      timeout: 30_000,
    });
    assert.equal(nodeRed.sandbox.requests.length, before + 1);
    await page.screenshot({ path: `${SCREENSHOTS}flow-ran.png` });

    const image = await context.newPage();
    const response = await image.goto(`${nodeRed.editorUrl}sdxl/latest`);
    assert.equal(response?.headers()['content-type'], 'image/jpeg');
    const width = await image.evaluate(() => document.querySelector('img')?.naturalWidth);
    assert.equal(width, 1024);
    await image.screenshot({ path: `${SCREENSHOTS}latest-image.png` });
    await image.close();
  });

  it('never gives the API key back: not to the editor, the flow export or the log', async () => {
    const flows = await (await fetch(`${nodeRed.editorUrl}flows`)).text();
    const credentials = await (
      await fetch(`${nodeRed.editorUrl}credentials/sdxl-config/sdxl-example-account`)
    ).json();
    assert.deepEqual(credentials, { has_apiKey: true });
    const html = await page.content();
    for (const [where, text] of Object.entries({ flows, html, log: nodeRed.output() })) {
      assert.equal(text.includes(nodeRed.apiKey), false, `the key is absent from ${where}`);
    }
    assert.ok(flows.includes('sdxl-example-account'));
  });
});
