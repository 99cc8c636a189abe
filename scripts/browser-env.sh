#!/usr/bin/env bash
# What the browser test (tests/interop/test_browser.py) needs, once: Debian's Chromium (apt, as
# root; no browser is downloaded from anywhere else) and Python playwright in .tools/venv, which
# drives that Chromium through `executable_path`. Run after scripts/python-env.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "browser-env: /usr/bin/chromium is missing and only root can apt-get install it" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
venv=.tools/venv
stamp="$venv/.playwright-v1"
if [ ! -f "$stamp" ]; then
  # The wheel carries its driver; `playwright install` (a browser download) is never run.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "playwright==1.65.2"
  touch "$stamp"
fi
