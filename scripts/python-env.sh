#!/usr/bin/env bash
# Creates .tools/venv with the official Python MCP SDK and pytest, once.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.tools/venv
stamp="$venv/.installed-v1"
if [ -f "$stamp" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "mcp==2.3.0" "pytest==8.3.4" "anyio>=4"
touch "$stamp"
