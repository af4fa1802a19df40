#!/usr/bin/env bash
# n8n's own checks on this package, offline:
#   1. `n8n-node lint` (@n8n/node-cli, strict, its template eslint config) on the package's sources;
#   2. @n8n/scan-community-package's lint of the packed tarball (compiled JS and package.json);
#   3. the same scanner's lint of the sources ({nodes,credentials}/**, package.json).
# The scanner's other steps (npm provenance, downloading the attested GitHub source) need the public
# registry's attestations and GitHub, so its CLI cannot run here; its lint legs are called directly.
# The tools are installed once into a cache folder outside the repo: they pin eslint 9.29, which
# would clash with the repo's own eslint in the workspace tree.
# Exit status: non-zero when any check finds anything. The sources import the shared client's core
# entry, which the build bundles into dist, so it is a devDependency: what no-restricted-imports asks
# of a bundled import ("dev dependencies are never installed at runtime on n8n Cloud").
set -euo pipefail

NODE_CLI_VERSION=0.48.3
SCANNER_VERSION=0.32.0
PACKAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "$PACKAGE_DIR/../.." && pwd)"
CACHE="${SDXL_KIT_CACHE:-$HOME/.cache/sdxl-kit}"
TOOLS="$CACHE/n8n-lint-tools-$NODE_CLI_VERSION-$SCANNER_VERSION"
export PATH="$REPO/node_modules/.bin:$PATH"

mkdir -p "$TOOLS"
# Several checkouts on one machine (git worktrees) share the tools: one installs, the others wait.
exec 9>"$TOOLS.lock"
flock 9
# The marker is written only by an install made under the lock: a folder installed before there was
# one may have had two installs run into it at once, which leaves files missing (seen here: lodash's
# and eslint's), so it is installed again, once.
if [[ ! -f "$TOOLS/.installed-locked" ]]; then
  echo "n8n-checks: installing @n8n/node-cli@$NODE_CLI_VERSION and @n8n/scan-community-package@$SCANNER_VERSION into $TOOLS" >&2
  rm -rf "$TOOLS/node_modules" "$TOOLS/.installed"
  (cd "$TOOLS" && echo '{ "name": "n8n-lint-tools", "private": true }' >package.json &&
    npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
      "@n8n/node-cli@$NODE_CLI_VERSION" "@n8n/scan-community-package@$SCANNER_VERSION" >&2)
  touch "$TOOLS/.installed-locked"
fi
flock -u 9

# Staged inside the tools folder, so the template config finds @n8n/node-cli.
# A stage of this run's own, so runs from several checkouts at once do not pack into each other's.
STAGE="$(mktemp -d "$TOOLS/stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/source/node_modules/@sdxl-kit" "$STAGE/tarball"
cp -r "$PACKAGE_DIR/package.json" "$PACKAGE_DIR/nodes" "$PACKAGE_DIR/credentials" "$PACKAGE_DIR/icons" "$STAGE/source/"
printf "import { config } from '@n8n/node-cli/eslint';\n\nexport default config;\n" >"$STAGE/source/eslint.config.mjs"
ln -s "$REPO/shared" "$STAGE/source/node_modules/@sdxl-kit/client"

(cd "$REPO" && npm run build -w nodes/n8n --silent && npm pack -w nodes/n8n --pack-destination "$STAGE" --silent >/dev/null)
tar -xzf "$STAGE"/n8n-nodes-sdxl-*.tgz -C "$STAGE/tarball" --strip-components=1

cat >"$STAGE/scan.mjs" <<'SCAN'
import { analyzePackage, SOURCE_FILE_PATTERNS } from '@n8n/scan-community-package/scanner/scanner.mjs';
const [dir, leg] = process.argv.slice(2);
const result = await analyzePackage(dir, leg === 'source' ? SOURCE_FILE_PATTERNS : ['**/*.js', 'package.json']);
process.stdout.write(result.passed ? 'no findings\n' : `${result.message}\n${result.details ?? ''}\n`);
SCAN

# report TITLE EXIT_CODE OUTPUT: passes only when the tool exited 0 and listed no finding, so a tool
# that crashes or reports in another shape fails the check rather than passing it.
report() {
  local title="$1" code="$2" output="$3"
  local clean findings
  clean="$(printf '%s\n' "$output" | sed 's/\x1b\[[0-9;]*m//g')"
  findings="$(printf '%s\n' "$clean" | grep -E '^\s+[0-9]+:[0-9]+\s+(error|warning)' || true)"
  echo "== $title"
  printf '%s\n' "$clean" | grep -v '^\s*$' || true
  if [[ "$code" != 0 || -n "$findings" ]]; then
    echo "-> failed (exit $code)"
    return 1
  fi
  echo "-> passed"
}

# Runs a command, printing its output and exit code as "CODE<newline>OUTPUT".
capture() {
  local output code=0
  output="$("$@" 2>&1)" || code=$?
  printf '%s\n%s' "$code" "$output"
}

check() {
  local title="$1" result
  shift
  result="$(capture "$@")"
  report "$title" "${result%%$'\n'*}" "${result#*$'\n'}"
}

status=0
check "n8n-node lint $NODE_CLI_VERSION (strict) on the sources" \
  bash -c 'cd "$1" && "$2" lint' _ "$STAGE/source" "$TOOLS/node_modules/.bin/n8n-node" || status=1
# scan.mjs exits 0 and prints "no findings" on a pass; anything else is a finding.
check "scan-community-package $SCANNER_VERSION lint of the packed tarball" \
  bash -c 'cd "$1" && out="$(node scan.mjs "$2" tarball)" && echo "$out" && [[ "$out" == "no findings" ]]' _ "$STAGE" "$STAGE/tarball" || status=1
check "scan-community-package $SCANNER_VERSION lint of the sources" \
  bash -c 'cd "$1" && out="$(node scan.mjs "$2" source)" && echo "$out" && [[ "$out" == "no findings" ]]' _ "$STAGE" "$STAGE/source" || status=1
exit $status
