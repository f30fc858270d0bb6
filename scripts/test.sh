#!/usr/bin/env bash
# The one test command: install everything, start PostgreSQL + PgBouncer (transaction
# mode), then lint, type-check and run the whole suite against both backends.
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh

source scripts/python-env.sh
ensure_venv
.venv/bin/python -m pip install --quiet -c scripts/constraints.txt -e '.[test]'

.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
