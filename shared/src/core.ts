// The client without Node-specific defaults: what hosts that bring their own HTTP and timers import
// (the n8n node bundles this entry, so it must not pull in axios or Node timers).
export * from './client.ts';
export * from './errors.ts';
export * from './limiter.ts';
export * from './response.ts';
export * from './retry.ts';
export * from './schema.ts';
export * from './transport.ts';
export * from './image-input.ts';
export * from './model-request.ts';
export * from './models/index.ts';
export * from './async-api.ts';
export * from './money/index.ts';
export { POLL_DEFAULTS } from './async-jobs.ts';
export * from './job-times.ts';
export { forecast, nextCheckAt, type Cadence, type Checked, type Forecast } from './poll-schedule.ts';
export * from './parameters.ts';
export { embedText, PARAMETERS_KEYWORD } from './embed-text.ts';
