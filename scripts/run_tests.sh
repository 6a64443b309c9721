#!/usr/bin/env bash
# Run the test suite in the project venv. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${RTSEP_VENV:-.venv}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$venv/bin/python" -m pytest -q "$@"
