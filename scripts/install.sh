#!/usr/bin/env bash
# Install Budget Tracker into ./.venv (creating it), then run `budget ARGS...` if given.
#   scripts/install.sh add-expense 12.50 Food "Lunch"
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh
ensure_venv
.venv/bin/python -m pip install --quiet .
if [ "$#" -gt 0 ]; then
  exec .venv/bin/budget "$@"
fi
echo "installed: run .venv/bin/budget --help" >&2
