import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_BASE_URL, REQUEST_FIELDS, esrgan, sdxlImg2Img, sdxlInpaint } from '@sdxl-kit/client/core';
import { DIST_DIR, Sdxl, SdxlApi } from './harness.ts';

const PACKAGE_DIR = join(DIST_DIR, '..');
const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as Record<
  string,
  unknown
>;
const shipped = (manifest.n8n as { nodes: string[]; credentials: string[] }) ?? {
  nodes: [],
  credentials: [],
};

describe('n8n package: what ships', () => {
  it('is a community package with the node and credential, built, and no runtime dependencies', () => {
    assert.match(String(manifest.name), /^n8n-nodes-/);
    assert.ok((manifest.keywords as string[]).includes('n8n-community-node-package'));
    assert.equal(manifest.dependencies, undefined);
    assert.deepEqual(manifest.peerDependencies, { 'n8n-workflow': '*' });
    for (const file of [...shipped.nodes, ...shipped.credentials]) {
      assert.match(file, /^dist\//);
      assert.ok(existsSync(join(PACKAGE_DIR, file)), `${file} is built`);
    }
  });

  it('ships code that uses no process, environment, file system, console, timers or axios of its own', () => {
    for (const file of [...shipped.nodes, ...shipped.credentials]) {
      const code = readFileSync(join(PACKAGE_DIR, file), 'utf8');
      for (const forbidden of [
        /\bsetTimeout\b/,
        /\bsetInterval\b/,
        /\bsetImmediate\b/,
        /\bprocess\./,
        /\bconsole\./,
        /\bglobalThis\b/,
        /\b__dirname\b/,
        /\baxios\b/,
      ]) {
        assert.doesNotMatch(code, forbidden, `${file} contains ${forbidden}`);
      }
      const required = [...code.matchAll(/require\("([^"]+)"\)/g)].map((match) => match[1]);
      for (const name of required) {
        // node:crypto (on n8n's import allowlist) hashes the API key for the per-account limiter.
        assert.ok(['n8n-workflow', 'node:crypto'].includes(name as string), `${file} requires ${name}`);
      }
    }
  });

  it('makes no code from strings at run time: the bundled zod runs jitless', async () => {
    // The bundle holds zod's compiler (`const F = Function; new F(...)`), so the text alone cannot
    // tell. A fresh process counts every use of the Function constructor from the moment the bundle
    // loads, through a run with valid and invalid items and the credential test.
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(${JSON.stringify(join(DIST_DIR, 'nodes/Sdxl/Sdxl.node.js'))});
      require('n8n-workflow');
      const { startSandbox } = await import(${JSON.stringify(import.meta.resolve('@sdxl-kit/sandbox'))});
      const made = [];
      globalThis.Function = new Proxy(Function, {
        construct(target, args) { made.push(String(args.at(-1)).slice(0, 60)); return Reflect.construct(target, args); },
        apply(target, self, args) { made.push(String(args.at(-1)).slice(0, 60)); return Reflect.apply(target, self, args); },
      });
      const { runNode, testCredential } = await import(${JSON.stringify(import.meta.resolve('./harness.ts'))});
      const sandbox = await startSandbox({ apiKey: 'sk-jitless-check-0001' });
      const credentials = { apiKey: 'sk-jitless-check-0001', baseUrl: sandbox.url };
      const { items } = await runNode({
        credentials,
        continueOnFail: true,
        items: [{ json: {} }, { json: {} }],
        parameters: (index) => ({ prompt: 'x', options: index === 1 ? { steps: 5 } : { samples: 2 } }),
      });
      await testCredential(credentials);
      await sandbox.close();
      process.stdout.write(JSON.stringify({ items: items.length, made }));
    `;
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], (error, out, err) =>
        error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out),
      ),
    );
    const { items, made } = JSON.parse(stdout) as { items: number; made: string[] };
    assert.equal(items, 3, 'two images and one error item');
    assert.deepEqual(made, [], 'no Function constructor use');
  });

  it('ships light and dark icons for node and credential, and the codex file', () => {
    for (const file of [
      'nodes/Sdxl/sdxl.svg',
      'nodes/Sdxl/sdxl.dark.svg',
      'nodes/Sdxl/Sdxl.node.json',
      'icons/sdxl.svg',
      'icons/sdxl.dark.svg',
    ]) {
      assert.ok(existsSync(join(DIST_DIR, file)), `dist/${file}`);
    }
    const codex = JSON.parse(readFileSync(join(DIST_DIR, 'nodes/Sdxl/Sdxl.node.json'), 'utf8'));
    assert.ok(codex.categories.length > 0);
  });
});

describe('n8n package: the node and credential as n8n sees them', () => {
  const description = new Sdxl().description;
  /** The parameters n8n shows for one operation (the Operation drop-down itself included). */
  const shownFor = (operation: string) =>
    description.properties.filter((property) => {
      const show = property.displayOptions?.show?.operation as string[] | undefined;
      return !show || show.includes(operation);
    });
  const generateForm = shownFor('generateImage');
  const options = generateForm.find((property) => property.name === 'options');

  it('offers Generate, Vary, Inpaint, Upscale Image and Resume Request, sorted, Generate the default', () => {
    const operation = description.properties[0];
    assert.equal(operation?.name, 'operation');
    assert.equal(operation?.default, 'generateImage');
    const names = (operation?.options ?? []).map((option) => (option as { name: string }).name);
    assert.deepEqual(names, [
      'Generate Image',
      'Inpaint Image',
      'Resume Request',
      'Upscale Image',
      'Vary Image',
    ]);
  });

  it('builds each image operation`s form from its model`s declaration: images by binary field or URL, the rest with the declared defaults', () => {
    for (const [operation, model] of [
      ['varyImage', sdxlImg2Img],
      ['inpaintImage', sdxlInpaint],
      ['upscaleImage', esrgan],
    ] as const) {
      const form = shownFor(operation);
      const byName = new Map(form.map((property) => [property.name, property]));
      const modelOptions = new Map(
        (
          (byName.get('options')?.options ?? []) as { name: string; default: unknown; displayName: string }[]
        ).map((option) => [option.name, option]),
      );
      for (const field of model.fields) {
        if (field.kind === 'image') {
          assert.equal(
            byName.get(`${field.name}Source`)?.default,
            'binary',
            `${operation} ${field.name}Source`,
          );
          assert.equal(
            byName.get(`${field.name}BinaryField`)?.default,
            field.role === 'source' ? 'data' : field.name,
          );
          assert.ok(byName.get(`${field.name}Url`), `${operation} ${field.name}Url`);
          continue;
        }
        const offered = byName.get(field.name) ?? modelOptions.get(field.name);
        assert.ok(offered, `${operation} offers ${field.name}`);
        assert.equal(offered.displayName, field.label);
        // An unknown default starts empty: nothing is sent until the user sets it.
        assert.equal(offered.default, field.default ?? '', `${operation} ${field.name} default`);
        if (field.required) assert.equal(byName.get(field.name)?.required, true);
      }
      const labels = [...modelOptions.values()].map((option) => option.displayName);
      assert.deepEqual(
        labels,
        [...labels].sort((a, b) => a.localeCompare(b)),
        `${operation} options sorted`,
      );
    }
  });

  it('puts Prompt (required) and Negative Prompt up front, every other contract field under Options', () => {
    const names = generateForm.map((property) => property.name);
    assert.deepEqual(names, ['operation', 'prompt', 'negativePrompt', 'options']);
    assert.equal(generateForm[1]?.required, true);
    const offered = new Map(
      (options?.options ?? []).map((option) => [(option as { name: string }).name, option]),
    );
    for (const field of REQUEST_FIELDS) {
      if (field.name === 'prompt' || field.name === 'negativePrompt' || field.name === 'base64') continue;
      const option = offered.get(field.name) as Record<string, unknown> | undefined;
      assert.ok(option, `${field.name} is offered`);
      assert.equal(option.default, field.default, `${field.name} default`);
      assert.ok(String(option.description).length > 20, `${field.name} is described`);
      const typeOptions = option.typeOptions as { minValue?: number; maxValue?: number } | undefined;
      if (field.min !== undefined && !field.values) assert.equal(typeOptions?.minValue, field.min);
      if (field.max !== undefined && !field.values) assert.equal(typeOptions?.maxValue, field.max);
    }
  });

  it('offers Style and Scheduler as drop-downs of the known values', () => {
    const offered = (options?.options ?? []) as {
      name: string;
      type: string;
      options?: { value: unknown }[];
    }[];
    const scheduler = offered.find((option) => option.name === 'scheduler');
    assert.equal(scheduler?.type, 'options');
    assert.ok(scheduler?.options?.some((choice) => choice.value === 'Euler a'));
    assert.equal(offered.find((option) => option.name === 'style')?.type, 'options');
  });

  it('sorts options alphabetically, as n8n`s linter asks', () => {
    const names = (options?.options ?? []).map((option) => (option as { displayName: string }).displayName);
    assert.deepEqual(
      names,
      [...names].sort((a, b) => a.localeCompare(b)),
    );
  });

  it('can be used as an AI agent tool and tests its credential with the balance call', () => {
    assert.equal(description.usableAsTool, true);
    assert.equal(description.credentials?.[0]?.testedBy, 'sdxlApiCredentialTest');
  });

  it('keeps the key in a password field and sends it as x-api-key; the Base URL defaults to the hosted API', () => {
    const credential = new SdxlApi();
    const apiKey = credential.properties.find((property) => property.name === 'apiKey');
    assert.equal(apiKey?.typeOptions?.password, true);
    assert.equal(
      credential.properties.find((property) => property.name === 'baseUrl')?.default,
      DEFAULT_BASE_URL,
    );
    assert.deepEqual(credential.authenticate, {
      type: 'generic',
      properties: { headers: { 'x-api-key': '={{$credentials.apiKey}}' } },
    });
  });
});
