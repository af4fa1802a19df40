#!/bin/sh
# The Node-RED package end to end: first Node-RED's own validator (node-red-dev validate, the Flow
# Library's scorecard) on the packed package, offline where it must be (scripts/validate.ts); then a
# real Node-RED (red.js) with the package installed, an embedded sandbox and the example flow, driven
# by Debian's Chromium through playwright-core. Loopback only; bounded to a few minutes.
set -eu
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"

. e2e/support/chromium.sh

timeout 600 node nodes/node-red/scripts/validate.ts
npm run build -w nodes/node-red
timeout 300 node --test --test-timeout=240000 e2e/node-red/editor.test.ts
