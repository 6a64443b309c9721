"""Plugins by entry point: a third-party package adds a backend and a bridge to rtsep.

The package is built by the test in a temporary folder (its own pyproject.toml), installed
into this environment with pip and uninstalled at teardown; rtsep runs as a separate process
so that it reads the installed metadata afresh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tomllib

from rtsep.plugins import BACKENDS_GROUP, BRIDGES_GROUP, BUILTIN, PluginError, load, registered

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIST = "rtsep-test-plugin"
PLUGIN_BACKEND = "wrapped-onnx"

PLUGIN_MODULE = '''
"""A backend that wraps rtsep's onnxruntime backend, and a bridge that says hello."""

import argparse

from rtsep.engine.backends import OnnxBackend


class WrappedOnnx:
    """Every Backend call goes to an OnnxBackend; ``steps`` counts the worker's calls."""

    name = "wrapped-onnx"

    def __init__(self, model, threads):
        self._inner = OnnxBackend(model, threads)
        self.hop_samples = self._inner.hop_samples
        self.steps = 0

    def step(self, chunk):
        self.steps += 1
        return self._inner.step(chunk)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def make_backend(model, threads):
    return WrappedOnnx(model, threads)


def register_bridge(kinds):
    hello = kinds.add_parser("hello", help="a plugin's bridge")
    hello.add_argument("--name", default="world")
    hello.set_defaults(run=lambda args: print(f"hello {args.name}") or 0)
'''

PLUGIN_PYPROJECT = f"""
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{PLUGIN_DIST}"
version = "0.0.1"

[project.entry-points."rtsep.backends"]
{PLUGIN_BACKEND} = "rtsep_test_plugin:make_backend"

[project.entry-points."rtsep.bridges"]
hello = "rtsep_test_plugin:register_bridge"

[tool.setuptools]
py-modules = ["rtsep_test_plugin"]
"""


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
    )


def _rtsep(*args: str) -> subprocess.CompletedProcess:
    code = "from rtsep.cli.main import main; raise SystemExit(main())"
    env = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd="/",  # not the checkout: its rtsep.egg-info must not stand in for the install
    )


@pytest.fixture(scope="module")
def plugin_installed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (folder / "rtsep_test_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    # No build isolation: the environment's setuptools builds it, without the network.
    result = _pip("install", "--no-deps", "--no-build-isolation", str(folder))
    assert result.returncode == 0, result.stderr
    try:
        yield folder
    finally:
        _pip("uninstall", "-y", PLUGIN_DIST)


def test_the_builtin_backends_and_bridges_register_through_the_entry_points():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    for group in (BACKENDS_GROUP, BRIDGES_GROUP):
        assert declared[group] == BUILTIN[group]  # the fallback table says the same
        installed = {e.name: e.value for e in metadata.entry_points(group=group)}
        assert {k: installed.get(k) for k in declared[group]} == declared[group], (
            "the installed metadata lacks rtsep's entry points: pip install -e ."
        )
    assert set(registered(BACKENDS_GROUP)) >= {"torch", "onnxruntime"}
    assert set(registered(BRIDGES_GROUP)) >= {"osc", "midi"}
    assert callable(load(BACKENDS_GROUP, "onnxruntime"))
    with pytest.raises(PluginError, match="no backend named 'nope': installed: .*onnxruntime"):
        load(BACKENDS_GROUP, "nope")


def test_an_unknown_backend_is_refused_with_the_installed_names(tmp_path):
    result = _rtsep("separate", str(tmp_path / "x.wav"), "--backend", "nope")
    assert result.returncode == 1
    assert 'engine.backend = "nope" (from --backend): use one of "auto"' in result.stderr
    assert '"onnxruntime"' in result.stderr and '"torch"' in result.stderr


@pytest.mark.slow
def test_a_third_party_backend_separates_exactly_like_onnxruntime(plugin_installed, tmp_path):
    rate = 16000
    example = ROOT / "rtsep" / "examples" / "example_mix.flac"
    audio, file_rate = sf.read(example, dtype="float32")
    assert file_rate == rate
    sf.write(tmp_path / "mix.wav", audio[: 2 * rate], rate, subtype="FLOAT")
    stems = {}
    for backend in (PLUGIN_BACKEND, "onnxruntime"):
        out = tmp_path / backend
        result = _rtsep(
            "separate", str(tmp_path / "mix.wav"), "--out", str(out), "--backend", backend
        )
        assert result.returncode == 0, result.stderr
        report = json.loads((out / "report.json").read_text())
        assert report["backend"] == backend  # the plugin's own backend ran, not a fallback
        stems[backend] = {
            name: sf.read(out / name, dtype="float32")[0] for name in report["files"][:-1]
        }
    assert stems[PLUGIN_BACKEND].keys() == stems["onnxruntime"].keys() and stems["onnxruntime"]
    for name, signal in stems["onnxruntime"].items():
        np.testing.assert_array_equal(stems[PLUGIN_BACKEND][name], signal, err_msg=name)


def test_a_third_party_bridge_becomes_an_rtsep_bridge_command(plugin_installed):
    listing = _rtsep("bridge", "--help")
    assert listing.returncode == 0 and "hello" in listing.stdout
    result = _rtsep("bridge", "hello", "--name", "plugins")
    assert result.returncode == 0 and result.stdout.strip() == "hello plugins", result.stderr


def test_rtsep_info_lists_the_installed_backends_and_bridges(plugin_installed):
    result = _rtsep("info", "--json")
    assert result.returncode == 0, result.stderr
    plugins = json.loads(result.stdout)["plugins"]
    names = {kind: [line.split(" ")[0] for line in lines] for kind, lines in plugins.items()}
    assert {"torch", "onnxruntime", PLUGIN_BACKEND} <= set(names["backends"])
    assert {"osc", "midi", "hello"} <= set(names["bridges"])
    assert f"{PLUGIN_BACKEND} ({PLUGIN_DIST} 0.0.1)" in plugins["backends"]
