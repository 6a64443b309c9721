#!/usr/bin/env bash
# All the GPU work of a session lent a device machine, in one call (15 minutes of device time
# in all: start-up, this script and the transfers). First, here:
#   .venv/bin/python scripts/pack_device_tree.py --corpus ../shared/corpus --run RUN_DIR
#   echo /.device/ >> .git/info/exclude
# then the device tool's run with carry [".device"] and the command
#   INIT=shipped bash scripts/device_session.sh 420
# It checks the GPU path (pytest -m gpu), measures streams per GPU (benchmarks/streams.py:
# eager, then with CUDA graphs; the B = 1 rows are the per-hop latency with and without),
# then continues training the model for TRAIN_SECONDS (first argument, default 300) on the
# corpus subset with RECIPE and brings back best.pt, last.pt, its log and every result file
# under $OUT.
# Settings (environment): RECIPE (default rtsep/train/v1_scenes_gpu.toml, the chosen design);
# INIT (a checkpoint or "shipped"; empty = from scratch); DEVICE (default cuda; cpu skips the
# GPU checks and trains on the CPU, which is how tests/test_device_session.py runs this script
# end to end with a tiny budget); DEVICE_TREE (default .device); RUN_DIR (default
# /tmp/rtsep-run). A fresh device image gets the packed wheels and rtsep installed first; where
# this checkout's rtsep already imports, nothing is installed.
set -uo pipefail
cd "$(dirname "$0")/.."
train_seconds="${1:-300}"
out="${OUT:-/tmp/rtsep-device-out}"
tree="${DEVICE_TREE:-.device}"
recipe="${RECIPE:-rtsep/train/v1_scenes_gpu.toml}"
device="${DEVICE:-cuda}"
run="${RUN_DIR:-/tmp/rtsep-run}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
here_imports() {  # whether python3 imports rtsep from this checkout
    python3 -c "import pathlib, sys, rtsep
sys.exit(pathlib.Path(rtsep.__file__).resolve().parents[1] != pathlib.Path.cwd().resolve())" \
        2>/dev/null
}
if ! here_imports; then
    if compgen -G "$tree/whl/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site "$tree"/whl/*.whl || exit 1
        export PYTHONPATH=/tmp/site
    fi
    python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$out/install.log" \
        2>&1 || { cat "$out/install.log"; exit 1; }
fi
if [ "$device" != cpu ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/gpu.txt"
    python3 -m pytest -q -m gpu tests/test_gpu.py tests/test_train.py -p no:cacheprovider 2>&1 \
        | tee "$out/pytest_gpu.log" | tail -5
    for graphs in "" --cuda-graphs; do
        python3 -m benchmarks.streams --device cuda $graphs --batches 1 16 64 256 1024 \
            --seconds 2 --out "$out" 2>&1 | tail -2
    done
fi
mkdir -p "$run" && cp "$tree/phrasings.pt" "$run/"
python3 -m rtsep.cli.main train --settings "$recipe" --corpus "$tree/corpus" --run-dir "$run" \
    --device "$device" --time-limit "$train_seconds" ${INIT:+--init "$INIT"} 2>&1 \
    | tr '\r' '\n' | grep -v '^train:' | tail -15
trained=${PIPESTATUS[0]}
cp "$run/best.pt" "$run/last.pt" "$run/log.jsonl" "$run/settings.json" "$out/" 2>/dev/null
ls -la "$out"
exit "$trained"
