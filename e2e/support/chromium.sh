# Sourced by the browser tests' run.sh: Debian's Chromium, installed when missing.
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
