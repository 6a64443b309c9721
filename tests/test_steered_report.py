"""report.json after a paced run steered with ``rtsep ctl``: real processes, real sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ports import free_port

from rtsep.stems import EXAMPLE

RTSEP = str(Path(sys.executable).with_name("rtsep"))


@pytest.mark.slow
def test_switching_from_separate_to_a_cue_is_in_the_report_with_its_chunk(tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "stems"
    engine = subprocess.Popen(
        [RTSEP, "separate", str(EXAMPLE), "--out", str(out), "--realtime"]
        + ["--control", endpoint, "--telemetry", "tcp://127.0.0.1:*"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ctl = [RTSEP, "ctl", "--control", endpoint, "--timeout", "1"]
        deadline = time.monotonic() + 120
        while subprocess.run([*ctl, "ping"], env=env, capture_output=True).returncode != 0:
            assert engine.poll() is None, engine.communicate()[1][-3000:]
            assert time.monotonic() < deadline
        steer = subprocess.run([*ctl, "set-cues", "speech"], env=env, capture_output=True)
        assert steer.returncode == 0, steer.stderr
        stdout, stderr = engine.communicate(timeout=120)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    assert engine.returncode == 0, stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    history = report["cue_history"]
    assert [(e["mode"], e["cues"]) for e in history] == [("separate", []), ("extract", ["speech"])]
    assert history[1]["chunk"] > 0 and history[1]["switch_ms"] >= 0
    assert report["mode"] == "extract" and report["cues"] == ["speech"] and report["count"] == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(report["files"])
    names = [s["file"] for s in report["sources"]]
    assert names[0] == "cue_1.wav" and "cue_2.wav" not in names  # no file for an unused output
    for source in report["sources"]:
        assert [h["from_chunk"] for h in source["label_history"]] == [0, history[1]["chunk"]]
    assert "cue changes: 1" in stdout
