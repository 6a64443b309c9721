"""`rtsep ctl` and the bridges are light clients: they never import torch, numpy or the model.

The clients run in fresh subprocesses (an import cannot be undone in this one) against a real
control server on a real ZeroMQ socket.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import textwrap

import pytest
from ports import free_port

from rtsep.cli import main as cli
from rtsep.engine.control import ControlServer
from rtsep.engine.controllable import CueState

HEAVY = ("torch", "numpy", "rtsep.model", "rtsep.engine.runtime", "transformers")


_REPORT = f"""
import json, sys
print(json.dumps({{"rc": rc, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def _run(script: str) -> dict:
    """Run ``script`` (which sets ``rc``) in a fresh interpreter; returns ``rc`` and the heavy
    modules it imported."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script) + _REPORT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def server():
    state = CueState(["speech", "music"], 2)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with ControlServer(state, endpoint, "tcp://127.0.0.1:*") as running:
        yield running


def test_rtsep_ctl_ping_imports_neither_torch_nor_numpy(server) -> None:
    result = _run(
        f"""
        from rtsep.cli.main import main
        rc = main(["ctl", "--control", "{server.endpoint}", "ping"])
        """
    )
    assert result == {"rc": 0, "heavy": []}


def test_rtsep_ctl_status_and_set_cues_stay_light(server) -> None:
    result = _run(
        f"""
        from rtsep.cli.main import main
        rc = main(["ctl", "--control", "{server.endpoint}", "set-cues", "music"])
        rc += main(["ctl", "--control", "{server.endpoint}", "status"])
        """
    )
    assert result == {"rc": 0, "heavy": []}


@pytest.mark.parametrize("bridge", ["osc", "midi"])
def test_the_bridges_import_no_torch(bridge: str) -> None:
    result = _run(
        f"""
        from rtsep.cli.main import main
        rc = main(["bridge", "{bridge}", "--help"])
        import rtsep.bindings.{bridge}_bridge
        """
    )
    assert result["heavy"] == [] and result["rc"] == 0


def test_importing_the_package_imports_no_torch() -> None:
    result = _run("import rtsep, rtsep.config, rtsep.bindings\nrc = 0\n")
    assert result == {"rc": 0, "heavy": []}


def test_the_lazy_command_table_names_every_command_of_every_module() -> None:
    # The full parser (help, unknown commands) registers every module; a run registers only
    # the module its command names in COMMAND_MODULES. The two must agree.
    full = cli.build_parser()
    subparsers = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == set(cli.COMMAND_MODULES)
    for command, module in cli.COMMAND_MODULES.items():
        parser = argparse.ArgumentParser()
        commands = parser.add_subparsers()
        importlib.import_module(f"rtsep.cli.{module}").register(commands)
        assert command in commands.choices, (command, module)
