// The node's one doorway to the shared SDXL client. The build bundles the client's core entry into
// dist (no axios, no Node timers), so the published package has no runtime dependency; n8n's linter
// still flags this import in the sources, and only here.
export * from '@sdxl-kit/client/core';
