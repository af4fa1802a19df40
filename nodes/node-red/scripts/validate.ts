// Node-RED's own validator, `node-red-dev validate` (the scorecard the Flow Library shows), on the
// package as npm packs it. The validator is installed once into a cache folder outside the repo
// (${SDXL_KIT_CACHE:-~/.cache/sdxl-kit}): it brings about 440 packages of its own.
//
// It looks two things up on the network (validator-lookups.ts): where one cannot be made, the checks
// that rest on it are reported as not checked and do not fail the run. Every other check does, and so
// does anything the validator says that this script does not recognise, a check it did not run, or
// its own failure. Exit status: 0 when every check passed or was not checked for want of a network.
import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify, stripVTControlCharacters } from 'node:util';

const VALIDATOR_VERSION = '0.1.6';
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const cache = process.env.SDXL_KIT_CACHE || join(homedir(), '.cache', 'sdxl-kit');
const tools = join(cache, `node-red-dev-${VALIDATOR_VERSION}`);
const validatorDir = join(tools, 'node_modules', 'node-red-dev');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = promisify(execFile);

/** Every check node-red-dev 0.1.6 makes, with what it checks. */
const CHECKS: Record<string, string> = {
  P01: 'a licence',
  P03: 'a repository or bugs address',
  P04: 'a valid (scoped) name',
  P05: 'the node-red keyword',
  P06: 'compatible with a current Node-RED',
  P07: 'a Node.js version Node-RED supports',
  P08: 'no similarly named package in the Flow Library',
  N01: 'node types no other package uses',
  N02: 'an example for every node',
  D01: 'at most 6 dependencies',
  D02: 'no incompatible package among the dependencies',
  D03: 'dependencies at their latest versions',
};

/** The checks that rest on each network look-up (see validator-lookups.ts). */
const RESTS_ON: Record<string, string[]> = {
  catalogue: ['P08', 'N01'],
  registry: ['P06', 'P07'],
};

/**
 * Findings known and accepted, with the reason. Each must still be found: once it passes, its entry
 * is stale and the run fails until it is removed, so nothing stays excused by accident.
 */
const ACCEPTED: Record<string, string> = {
  P03: 'the project has no public repository or issue tracker yet; the README says so, and no address is made up',
};

/** The scorecard the validator writes: one entry per check it ran (and the package's name). */
type Scorecard = Record<string, { test?: boolean } | undefined>;

/**
 * Installs the validator into the cache once. It is installed beside the cache folder and renamed into
 * place, so a run cut short, or another run at the same time (another worktree), never leaves a
 * half-installed folder that looks whole.
 */
async function ensureValidator(): Promise<void> {
  if (existsSync(join(validatorDir, 'bin', 'run'))) return;
  console.error(`validate: installing node-red-dev@${VALIDATOR_VERSION} into ${tools}`);
  await mkdir(cache, { recursive: true });
  const staging = await mkdtemp(`${tools}.installing-`);
  try {
    await writeFile(join(staging, 'package.json'), '{ "name": "node-red-dev-tools", "private": true }\n');
    // Its one install script (core-js's postinstall) only prints a banner.
    await run(
      npm,
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        '--loglevel=error',
        `node-red-dev@${VALIDATOR_VERSION}`,
      ],
      { cwd: staging, maxBuffer: 16 * 1024 * 1024 },
    );
    // Another run may have put its copy in place meanwhile, and may be using it: keep that one.
    if (existsSync(join(validatorDir, 'bin', 'run'))) return;
    await rm(tools, { recursive: true, force: true });
    await rename(staging, tools);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Packs the package as npm would publish it (prepack builds dist/) and unpacks it into `work`. */
async function packed(work: string): Promise<string> {
  const { stdout } = await run(npm, ['pack', '--json', '--pack-destination', work], {
    cwd: packageDir,
    maxBuffer: 16 * 1024 * 1024,
  });
  const [{ filename }] = JSON.parse(stdout.slice(stdout.indexOf('['))) as [{ filename: string }];
  await run('tar', ['-xzf', join(work, filename), '-C', work]);
  return join(work, 'package');
}

/** Runs the validator on `dir`; resolves with its exit code and everything it printed. */
function validate(
  dir: string,
  scorecard: string,
  lookups: string,
): Promise<{ code: number; output: string }> {
  const nodeRed = createRequire(join(packageDir, 'package.json')).resolve('node-red/package.json');
  const child = spawn(
    process.execPath,
    [
      '--import',
      pathToFileURL(join(packageDir, 'scripts', 'validator-lookups.ts')).href,
      join(validatorDir, 'bin', 'run'),
      'validate',
      '--path',
      dir,
      '--output',
      scorecard,
    ],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        NO_COLOR: '1',
        SDXL_VALIDATOR_PACKAGE: join(validatorDir, 'package.json'),
        SDXL_VALIDATOR_LOOKUPS: lookups,
        SDXL_VALIDATOR_NODE_RED: nodeRed,
      },
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

/** The look-ups that could not be made, by name, with why. */
async function failedLookups(file: string): Promise<Map<string, string>> {
  const failed = new Map<string, string>();
  const text = existsSync(file) ? await readFile(file, 'utf8') : '';
  for (const line of text.split('\n').filter(Boolean)) {
    const { lookup, url, reason } = JSON.parse(line) as { lookup: string; url: string; reason: string };
    failed.set(lookup, `${new URL(url).host} could not be reached (${reason})`);
  }
  return failed;
}

await ensureValidator();
const work = await mkdtemp(join(tmpdir(), 'sdxl-node-red-validate-'));
try {
  const dir = await packed(work);
  const scorecardFile = join(work, 'scorecard.json');
  const lookupsFile = join(work, 'lookups.jsonl');
  const { code, output } = await validate(dir, scorecardFile, lookupsFile);
  const printed = stripVTControlCharacters(output);
  console.log(`== node-red-dev ${VALIDATOR_VERSION} validate, on the packed package`);
  console.log(printed.trimEnd());

  const problems: string[] = [];
  if (code !== 0) problems.push(`the validator exited with ${code}`);
  const scorecard: Scorecard = existsSync(scorecardFile)
    ? (JSON.parse(await readFile(scorecardFile, 'utf8')) as Scorecard)
    : {};
  // Warnings carry a check's code; the validator records P05 as passed even when it warns.
  const warned = new Set<string>();
  for (const line of printed.split('\n')) {
    if (!/\bWarning:/.test(line)) continue;
    const check = /\bWarning: ([PND]\d\d)\b/.exec(line)?.[1];
    if (check && check in CHECKS) warned.add(check);
    else problems.push(`a warning this script does not know: ${line.trim()}`);
  }
  // A node file it could not read leaves it no node to check, and every node check then passes.
  if (/Unable to parse/.test(printed)) problems.push('the validator could not read a node file');

  const unreachable = await failedLookups(lookupsFile);
  const notChecked = new Map<string, string>();
  for (const [lookup, why] of unreachable)
    for (const check of RESTS_ON[lookup] ?? []) notChecked.set(check, why);

  console.log('== verdict');
  for (const [check, what] of Object.entries(CHECKS)) {
    const result = scorecard[check];
    const passed = result?.test === true && !warned.has(check);
    let verdict: string;
    if (!result) {
      verdict = 'not run';
      problems.push(`${check} (${what}) was not run`);
    } else if (notChecked.has(check)) {
      verdict = `not checked: ${notChecked.get(check)}`;
    } else if (check in ACCEPTED) {
      verdict = passed ? 'passed, but is listed as accepted' : `open, accepted: ${ACCEPTED[check]}`;
      if (passed) problems.push(`${check} passes now: remove it from ACCEPTED in scripts/validate.ts`);
    } else {
      verdict = passed ? 'passed' : 'FAILED';
      if (!passed) problems.push(`${check} (${what}) failed`);
    }
    console.log(`${check} ${what}: ${verdict}`);
  }
  if (problems.length > 0) {
    console.log(`-> failed:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  } else {
    console.log('-> passed');
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
