#!/usr/bin/env bash
# Packs @sdxl-kit/client, @sdxl-kit/sandbox and @sdxl-kit/cli as npm would publish them, installs the
# tarballs into a fresh project and uses them there (about half a minute). Idempotent.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
export PATH="$REPO/node_modules/.bin:$PATH"
node --test e2e/packages/run.test.ts
