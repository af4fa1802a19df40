#!/bin/sh
# Browser end-to-end test of the CLI's contact sheet: real `sdxl` batches against a sandbox over HTTP,
# the page opened from disk in Debian's Chromium through playwright-core. Loopback only; bounded.
set -eu
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"

. e2e/support/chromium.sh

timeout 300 node --test --test-timeout=240000 e2e/contact-sheet/sheet.test.ts
