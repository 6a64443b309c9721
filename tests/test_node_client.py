"""The Node.js client (bindings/node) against a real control server on 127.0.0.1.

Needs node (>= 18) and the npm package zeromq v6, which ``scripts/install.sh`` installs when
npm is on PATH (by hand: ``cd bindings/node && npm install --no-package-lock``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from ports import free_port

from rtsep.engine.control import ControlServer
from rtsep.engine.controllable import CueState

NODE_DIR = Path(__file__).resolve().parents[1] / "bindings" / "node"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node not found: apt-get install -y nodejs"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / "zeromq").is_dir(),
        reason="npm package zeromq missing: run scripts/install.sh with npm on PATH",
    ),
]


def encode_words(text: str, kind: str) -> object:
    return ("speech", "music", "env").index(text) if kind == "label" else tuple(text.split())


def test_node_client_round_trips_every_command():
    state = CueState(("speech", "music", "env"), 4, encode_words)
    with ControlServer(state, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as server:
        dead = f"tcp://127.0.0.1:{free_port()}"
        run = subprocess.run(
            [NODE, "smoke.js", server.endpoint, dead],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 0, run.stderr
    steps = {line["step"]: line for line in map(json.loads, run.stdout.splitlines())}

    assert steps["ping"]["result"] == {"pong": True, "protocol": 1}
    assert steps["list_labels"]["result"]["labels"] == ["speech", "music", "env"]
    assert steps["set_cues"]["result"]["cues"] == [
        {"text": "speech", "kind": "label"},
        {"text": "a dog barking", "kind": "text"},
    ]
    assert steps["set_mode"]["result"]["mode"] == "remove"
    assert steps["set_gain"]["result"]["gain_db"] == -6.0
    assert steps["mute"]["result"]["mute"] is True
    assert steps["solo"]["result"]["solo"] is True
    status = steps["status"]["result"]
    assert status["mode"] == "remove" and status["telemetry"] == server.telemetry_endpoint
    assert "control" in steps["stats"]["result"]
    assert steps["reset_stats"]["result"] == {}
    assert steps["unknown_command"]["error"]["code"] == "unknown_command"
    assert steps["bad_args"]["error"]["code"] == "bad_args"
    assert steps["watch_status"]["result"]["mode"] == "remove"
    assert steps["timeout"]["error"]["name"] == "ControlTimeout"

    snap = state.snapshot()
    assert [cue.text for cue in snap.cues] == ["speech", "a dog barking"]
    assert snap.mode == "remove" and snap.gains_db[1] == -6.0 and snap.muted[2] and snap.soloed[1]
