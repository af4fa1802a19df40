// The client's schemas use zod, which the build bundles in. zod compiles each object schema into a
// function made from a string (`new Function`) unless told not to; a verified node makes no code from
// strings. This module must be the node's first import: zod decides when a schema is made, and the
// client makes its schemas as it loads.
import { config } from 'zod/v4';

config({ jitless: true });
