#!/bin/sh
# Browser end-to-end test of the CLI's contact sheet: real `sdxl` batches against a sandbox over HTTP,
# the page opened from disk in Debian's Chromium through playwright-core. Loopback only; bounded.
set -eu
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"

if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

timeout 300 node --test --test-timeout=240000 e2e/contact-sheet/sheet.test.ts
