#!/usr/bin/env bash
# All the GPU work of a session lent a device machine, in one call (15 minutes of device time
# in all: start-up, this script and the transfers). First, here:
#   .venv/bin/python scripts/pack_device_tree.py --corpus ../shared/corpus --run RUN_DIR
#   echo /.device/ >> .git/info/exclude
# then the device tool's run with carry [".device"] and the command
#   INIT=shipped bash scripts/device_session.sh 300
# It checks the GPU path (pytest -m gpu), measures streams per GPU (benchmarks/streams.py:
# eager, then with CUDA graphs; the B = 1 rows are the per-hop latency with and without),
# then continues training the model for TRAIN_SECONDS (default 300) on the corpus subset and
# brings back best.pt, its log and every result file under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
train_seconds="${1:-300}"
out="${OUT:-/tmp/rtsep-device-out}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .device/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$out/install.log" 2>&1 \
    || { cat "$out/install.log"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/gpu.txt"
python3 -m pytest -q -m gpu tests/test_gpu.py tests/test_train.py -p no:cacheprovider 2>&1 \
    | tee "$out/pytest_gpu.log" | tail -5
for graphs in "" --cuda-graphs; do
    python3 -m benchmarks.streams --device cuda $graphs --batches 1 16 64 256 1024 --seconds 2 \
        --out "$out" 2>&1 | tail -2
done
run=/tmp/rtsep-run
mkdir -p "$run" && cp .device/phrasings.pt "$run/"
python3 -m rtsep.cli.main train --settings rtsep/train/v2_gpu.toml --corpus .device/corpus \
    --run-dir "$run" --time-limit "$train_seconds" ${INIT:+--init "$INIT"} 2>&1 \
    | tr '\r' '\n' | grep -v '^train:' | tail -15
cp "$run/best.pt" "$run/log.jsonl" "$run/settings.json" "$out/" 2>/dev/null
ls -la "$out"
