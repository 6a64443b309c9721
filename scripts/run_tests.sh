#!/usr/bin/env bash
# Lint, format check, then the test suite, in the project venv. Extra arguments go to pytest.
# `ruff check` and `ruff format --check` (configured in pyproject.toml) fail the run before
# any test starts: a lint error fails CI (.ci/run → make test → this script).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${RTSEP_VENV:-.venv}"
echo "== ruff check"
"$venv/bin/ruff" check .
echo "== ruff format --check"
"$venv/bin/ruff" format --check .
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "== pytest"
exec "$venv/bin/python" -m pytest -q "$@"
