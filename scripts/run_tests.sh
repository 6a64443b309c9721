#!/usr/bin/env bash
# Lint, format check, then the tests, in the project venv.
#   scripts/run_tests.sh [--slow | --all] [PYTEST ARGS...]
# Default: every test not marked slow (`make test`, the README's test command; the developer
# loop, under 5 minutes on a 2-core machine). --slow: only the tests marked slow (`make
# test-slow`: real-time runs on JACK, every README command on a fresh clone, sustained load,
# installs). --all: both in one run. CI (.ci/run) runs `make test`, then `make test-slow`.
# `ruff check` and `ruff format --check` (configured in pyproject.toml) fail the run before
# any test starts: a lint error fails CI (.ci/run → make test → this script).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${RTSEP_VENV:-.venv}"
select=(-m "not slow")
case "${1:-}" in
  --slow) select=(-m slow); shift ;;
  --all) select=(); shift ;;
esac
echo "== ruff check"
"$venv/bin/ruff" check .
echo "== ruff format --check"
"$venv/bin/ruff" format --check .
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "== pytest ${select[*]}"
exec "$venv/bin/python" -m pytest -q "${select[@]}" "$@"
