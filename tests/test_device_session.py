"""The lent-GPU session script, run end to end on the CPU with a tiny budget: pack the device
tree from a corpus → train a few seconds → the checkpoint comes back, validated, loadable.

The same two scripts a GPU session runs (scripts/pack_device_tree.py, scripts/device_session.sh);
``DEVICE=cpu`` only skips the GPU checks and benchmarks, so a lent H200 spends its lease
training, not debugging the script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from synthetic_corpus import HELD_OUT, SOUNDS, write_corpus

import rtsep
from rtsep.train import Trainer, TrainSettings

REPO = Path(__file__).resolve().parents[1]
RECIPE = """
validation_sources = {held_out}
batch_size = 2
segment_seconds = 1.0
source_count_weights = [1.0, 2.0, 1.0, 1.0]
onset_tolerance_s = 0.25
repeat_probability = 0.5
stage1_steps = 0
stage2_steps = 100000
validate_every = 100000
checkpoint_every = 100000
validation_mixtures = 2
scene_validation_mixtures = 2
"""


def test_the_device_session_packs_trains_and_brings_the_checkpoint_back(tmp_path: Path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, SOUNDS, 16000)
    phrasing_run = tmp_path / "phrasing-run"  # where the trainer caches its text embeddings
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.format(held_out=json.dumps(sorted(HELD_OUT))))
    Trainer(TrainSettings.load(recipe, corpus=str(corpus), run_dir=str(phrasing_run)))
    tree, out = tmp_path / "tree", tmp_path / "out"

    subprocess.run(
        [sys.executable, "scripts/pack_device_tree.py", "--corpus", str(corpus)]
        + ["--run", str(phrasing_run), "--megabytes", "1", "--no-wheels", "--out", str(tree)]
        + ["--validation-sources", ",".join(sorted(HELD_OUT))],
        cwd=REPO,
        check=True,
    )
    packed = (tree / "corpus" / "manifest.csv").read_text().splitlines()[1:]
    assert {row.split(",")[1] for row in packed} & HELD_OUT  # held-out sources travel too
    assert (tree / "phrasings.pt").is_file()

    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DEVICE": "cpu",
        "DEVICE_TREE": str(tree),
        "RECIPE": str(recipe),
        "RUN_DIR": str(tmp_path / "device-run"),
        "OUT": str(out),
        "INIT": "shipped",
    }
    session = subprocess.run(
        ["bash", "scripts/device_session.sh", "4"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert session.returncode == 0, session.stdout + session.stderr
    assert not (out / "install.log").exists()  # this checkout's rtsep imported: no install

    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [record for record in records if "total" in record]
    assert steps and all(torch.isfinite(torch.tensor(record["total"])) for record in steps)
    validated = [record for record in records if "scenes_eda_si_snri" in record]
    assert validated and "validation_label_si_snri" in validated[-1]  # both validations
    model = rtsep.load_model(out / "best.pt")
    assert model.trained and model.metadata["training"]["steps"] == validated[-1]["step"]
    assert model.network.config.presence_gate  # the shipped network, continued
    last = torch.load(out / "last.pt", weights_only=False)
    assert last["step"] == steps[-1]["step"]
