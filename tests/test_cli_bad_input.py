"""Bad input to ``rtsep separate``, as a user meets it: real files, a real ``rtsep`` process.

Each case must exit non-zero with exactly one line on stderr that starts with
``rtsep separate: error:`` and names the problem, print no traceback (unless ``--debug``), and
leave nothing in the output folder that looks like a finished run.

The cases run as children forked from one preloaded Python (``cli_process.PreloadedCli``:
real processes, exit statuses and output streams, without ~2.5 s of start-up each); the
``--debug`` case runs as a fresh ``python -m rtsep.cli.main``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from cli_process import PreloadedCli

RATE = 16000
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def cli():
    """``cli(*argv, umask=...)``: ``rtsep ARGV`` in a process forked from a preloaded one."""
    with PreloadedCli(ENV) as run:
        yield run


def rtsep(*argv: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the ``rtsep`` command line in a fresh Python process."""
    return subprocess.run(
        [sys.executable, "-m", "rtsep.cli.main", *argv],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=timeout,
    )


def _mix(path: Path, seconds: float = 1.0) -> Path:
    t = np.arange(int(seconds * RATE)) / RATE
    audio = 0.2 * np.sin(2 * np.pi * 330 * t) + 0.02 * np.random.default_rng(0).standard_normal(
        t.size
    )
    sf.write(path, audio.astype(np.float32), RATE, subtype="FLOAT")
    return path


def _all_nan(path: Path) -> Path:
    sf.write(path, np.full(RATE, np.nan, np.float32), RATE, subtype="FLOAT")
    return path


# case → (how to build the mixture, extra arguments, words the one error line must hold)
CASES = {
    "missing file": (None, [], "not found"),
    "corrupt file": ("corrupt", [], "cannot decode"),
    "empty file": ("empty", [], "empty"),
    "all samples NaN": ("all-nan", [], "NaN or infinite"),
    "unknown label": ("mix", ["--cue", "label:violin"], "unknown label"),
    "same cue twice": ("mix", ["--cue", "speech", "--cue", "speech"], "given twice"),
    "same cue, other case": ("mix", ["--cue", "speech", "--cue", "Speech"], "given twice"),
    "threads 0": ("mix", ["--threads", "0"], "engine.threads = 0 (from --threads)"),
    "threads -3": ("mix", ["--threads", "-3"], "engine.threads = -3"),
    "threads in a config file": ("mix", ["CONFIG:[engine]\nthreads = 'two'\n"], "engine.threads"),
    "unknown config key": ("mix", ["CONFIG:[engine]\nthread = 2\n"], "unknown config key"),
    "config file not TOML": ("mix", ["CONFIG:[engine\nthreads = 2\n"], "not valid TOML"),
    "config file missing": ("mix", ["--config-missing"], "config file not found"),
    "blocksize 16": ("mix", ["--blocksize", "16"], "engine.blocksize = 16"),
    "cuda without CUDA": ("mix", ["--device", "cuda"], "no CUDA device"),
    "control without realtime": ("mix", ["--control"], "--control needs --realtime"),
    "unwritable folder": ("mix", ["UNWRITABLE"], "cannot write to output folder"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_line_a_nonzero_exit_and_no_finished_looking_output(
    case, tmp_path, cli
):
    build, extra, words = CASES[case]
    if case == "cuda without CUDA" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    mix = tmp_path / "mix.wav"
    if build == "mix":
        _mix(mix)
    elif build == "corrupt":
        mix.write_bytes(b"RIFF not really a wave file" * 10)
    elif build == "empty":
        mix.write_bytes(b"")
    elif build == "all-nan":
        _all_nan(mix)
    out = tmp_path / "stems"
    argv, prefix = [], []
    for word in extra:
        if word.startswith("CONFIG:"):
            config = tmp_path / "user.toml"
            config.write_text(word.removeprefix("CONFIG:"))
            prefix = ["--config", str(config)]
        elif word == "--config-missing":
            prefix = ["--config", str(tmp_path / "none.toml")]
        elif word == "UNWRITABLE":
            blocker = tmp_path / "a-file"
            blocker.write_text("a file where the folder should be")
            out = blocker / "stems"
        else:
            argv.append(word)
    result = cli(*prefix, "separate", str(mix), "--out", str(out), *argv)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rtsep separate: error:") and words in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    leftovers = sorted(p.name for p in out.rglob("*")) if out.is_dir() else []
    assert not [name for name in leftovers if name.endswith(".wav") or name == "report.json"]


def test_debug_adds_the_traceback_to_the_one_line(tmp_path):
    mix = _mix(tmp_path / "mix.wav")
    result = rtsep("separate", str(mix), "--cue", "speech", "--cue", "speech", "--debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("rtsep separate: error:")


def test_a_few_nonfinite_samples_are_zeroed_counted_reported_and_warned_once(tmp_path, cli):
    mix = tmp_path / "mix.wav"
    audio = sf.read(_mix(mix, seconds=1.5), dtype="float32")[0]
    audio[[100, 101, 5000]] = np.nan
    audio[9000] = np.inf
    audio[12000] = -np.inf
    sf.write(mix, audio, RATE, subtype="FLOAT")
    out = tmp_path / "stems"
    result = cli("separate", str(mix), "--out", str(out), "--cue", "speech")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "5 non-finite sample(s)" in warnings[0]
    report = json.loads((out / "report.json").read_text())
    assert report["nonfinite_samples"] == 5
    for name in report["files"]:
        if name.endswith(".wav"):
            stem, _ = sf.read(out / name, dtype="float32")
            assert np.isfinite(stem).all(), name
            assert np.abs(stem).max() > 0, name  # the model state was not poisoned to zero


def test_outputs_get_the_permissions_of_the_users_umask(tmp_path, cli):
    mix = _mix(tmp_path / "mix.wav")
    out = tmp_path / "stems"
    for umask, mode in ((0o022, 0o644), (0o002, 0o664)):
        folder = out / f"{umask:03o}"
        result = cli("separate", str(mix), "--out", str(folder), "--cue", "speech", umask=umask)
        assert result.returncode == 0, result.stderr
        for path in folder.iterdir():
            assert path.stat().st_mode & 0o777 == mode, (path.name, oct(path.stat().st_mode))


# The other commands: (argv, words of the one error line); {tmp} is the test's folder.
OTHER_CASES = {
    "evaluate --threads 0": (["evaluate", "--threads", "0"], "--threads 0"),
    "evaluate --seconds -1": (["evaluate", "--seconds", "-1"], "positive duration"),
    "evaluate without a corpus": (["evaluate", "--corpus", "{tmp}/none"], "corpus folder"),
    "bench --threads -3": (
        ["bench", "latency", "--threads", "-3", "--out", "{tmp}/out"],
        "--threads -3",
    ),
    "bench --blocks 16": (["bench", "latency", "--blocks", "16", "--out", "{tmp}/out"], "32..4096"),
    "train without a corpus": (
        ["train", "--corpus", "{tmp}/none", "--run-dir", "{tmp}/out"],
        "no corpus manifest",
    ),
    "info --device cuda:7": (["info", "--device", "cuda:7"], 'model.device = "cuda:7"'),
    "info with a missing model": (["info", "--model", "{tmp}/none.pt"], "not found"),
}


@pytest.mark.parametrize("case", list(OTHER_CASES))
def test_other_commands_refuse_bad_options_in_one_line_and_leave_nothing(case, tmp_path, cli):
    argv, words = OTHER_CASES[case]
    if "cuda" in case and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that CUDA device")
    result = cli(*(word.format(tmp=tmp_path) for word in argv))
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"rtsep {argv[0]}: error:") and words in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
