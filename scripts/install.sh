#!/usr/bin/env bash
# Install rtsep and everything it needs on a fresh Debian machine with Python 3.11.
#   scripts/install.sh            CPU: torch 2.13.0 (CPU build) + onnxruntime
#   scripts/install.sh --gpu      CUDA: onnxruntime-gpu instead of onnxruntime (never both)
# Creates ./.venv (override with RTSEP_VENV); with npm on PATH, bindings/node/node_modules.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
variant=cpu
[ "${1:-}" = "--gpu" ] && variant=gpu
venv="${RTSEP_VENV:-.venv}"

need_apt=()
for pkg in libportaudio2 jackd2 liblo-tools; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== apt: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  # jackd2 asks about real-time priority: answer no, non-interactively.
  echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "== venv: $venv"
  python3 -m venv "$venv"
fi
pip="$venv/bin/pip"
"$pip" install -q --upgrade pip >/dev/null
if [ "$variant" = cpu ]; then
  # Pinned: this build is the CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
  "$venv/bin/python" -c "import torch" 2>/dev/null || "$pip" install -q torch==2.13.0
else
  "$venv/bin/python" -c "import torch" 2>/dev/null || "$pip" install -q "torch>=2.4,<2.14"
fi
echo "== pip: rtsep[$variant,dev]"
"$pip" install -q -e ".[$variant,dev]"
# The Node.js client's dependency (zeromq), so tests/test_node_client.py runs instead of
# skipping. Only where npm exists; node_modules is git-ignored.
if command -v npm >/dev/null 2>&1 && [ ! -d bindings/node/node_modules/zeromq ]; then
  echo "== npm: bindings/node"
  (cd bindings/node && npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null)
fi
echo "== installed into $venv"
