#!/usr/bin/env bash
# Prints the path of a Chromium the browser tests can drive, getting one when there is none:
# CHROMIUM_PATH if set, else a system Chromium, else Playwright's own download, else the
# distribution's package when we run as root. Stops with one line saying what to install.
# Usage: scripts/ensure_chromium.sh PYTHON
set -uo pipefail
python="${1:-python3}"

if [[ -n "${CHROMIUM_PATH:-}" ]]; then
  [[ -x "$CHROMIUM_PATH" ]] && { echo "$CHROMIUM_PATH"; exit 0; }
  echo "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file" >&2; exit 1
fi

system_chromium() {
  for name in chromium chromium-browser google-chrome-stable google-chrome; do
    command -v "$name" 2>/dev/null && return 0
  done
  return 1
}

playwright_chromium() {
  "$python" - <<'PY' 2>/dev/null
import os, sys
from playwright.sync_api import sync_playwright
with sync_playwright() as playwright:
    path = playwright.chromium.executable_path
sys.exit(0 if os.path.isfile(path) and print(path) is None else 1)
PY
}

system_chromium && exit 0
playwright_chromium && exit 0
echo "no Chromium here: trying Playwright's own download" >&2
if timeout 600 "$python" -m playwright install chromium >&2 2>/dev/null && playwright_chromium; then
  exit 0
fi
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "no download either: installing the distribution's chromium package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 && apt-get install -y -q --no-install-recommends chromium >&2
  system_chromium && exit 0
fi
echo "make test needs Chromium for the browser tests: install it (apt-get install chromium)," \
  "let 'playwright install chromium' reach the internet, or set CHROMIUM_PATH" >&2
exit 1
