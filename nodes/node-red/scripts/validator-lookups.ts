// Loaded into node-red-dev's process (`node --import`) by validate.ts. The validator looks two things
// up on the network with its own axios: the Flow Library's catalogue (for P08 and N01) and the npm
// registry's node-red entry (for P06 and P07). Where a look-up cannot be made, it would stop the whole
// run with an error; instead it gets a stand-in answer, and the look-up is written down so that
// validate.ts reports the checks that hang on it as not checked rather than passed.
import { appendFileSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

interface AxiosConfig {
  url?: string;
  timeout?: number;
}
type Adapter = (config: AxiosConfig) => Promise<unknown>;

const validatorPackage = process.env.SDXL_VALIDATOR_PACKAGE ?? '';
const lookupLog = process.env.SDXL_VALIDATOR_LOOKUPS ?? '';
const nodeRedPackage = process.env.SDXL_VALIDATOR_NODE_RED ?? '';
if (!validatorPackage || !lookupLog || !nodeRedPackage) {
  throw new Error('validator-lookups: run it through validate.ts');
}

/** The look-ups the validator makes, and what stands in for each when it cannot be made. */
const LOOKUPS: { name: string; matches: (url: URL) => boolean; standIn: () => unknown }[] = [
  {
    name: 'catalogue',
    matches: (url) => url.hostname === 'catalogue.nodered.org',
    // No module at all: nothing to clash with, which proves nothing; validate.ts says so.
    standIn: () => ({ modules: [] }),
  },
  {
    name: 'registry',
    matches: (url) => url.hostname === 'registry.npmjs.org' && url.pathname === '/node-red',
    // The node-red installed here, in the shape of its registry entry, so the run goes on.
    standIn: () => {
      const { version, engines } = JSON.parse(readFileSync(nodeRedPackage, 'utf8')) as {
        version: string;
        engines?: Record<string, string>;
      };
      return { 'dist-tags': { latest: version }, versions: { [version]: { engines: engines ?? {} } } };
    },
  },
];

// The validator's own copy of axios: the module node-red-dev will get from the same require cache.
const axios = createRequire(validatorPackage)('axios') as { defaults: { adapter: Adapter } };
const send = axios.defaults.adapter;
axios.defaults.adapter = async (config) => {
  const lookup = config.url
    ? LOOKUPS.find((candidate) => candidate.matches(new URL(config.url!)))
    : undefined;
  if (!lookup) return await send(config);
  try {
    // A network that drops packets would otherwise hang the run: axios 0.21 waits forever by default.
    return await send({ ...config, timeout: config.timeout || 20_000 });
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    appendFileSync(
      lookupLog,
      `${JSON.stringify({ lookup: lookup.name, url: config.url, reason: code ?? message })}\n`,
    );
    return { data: lookup.standIn(), status: 200, statusText: 'OK', headers: {}, config, request: {} };
  }
};
