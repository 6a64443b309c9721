"""The README's Use section, run as written from a fresh clone's layout.

The checkout's files (what git tracks, plus untracked files it does not ignore) are copied
into a new folder that is made a git repository of its own; ``../shared`` beside it is this
checkout's ``../shared`` (the corpus) when there is one. Every ``rtsep`` line of the README's
shell block then runs there in a real process, and afterwards ``git status`` must be clean:
every output of a README command is git-ignored.

What the test adds to a command, and why: long benchmarks and training get flags that
shorten them (``SHORTER``; the command is otherwise as written); the control port comes from
``$RTSEP_CONFIG``/``$RTSEP_CONTROL`` (free ports, so that parallel tests cannot collide);
commands with the placeholders ``IN``/``OUT`` (device numbers) are only checked to be
explained. The Python block runs too.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ports import free_port

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PLACEHOLDERS = {"IN", "OUT"}
#: Flags appended to commands that would take minutes as written (a later flag wins).
SHORTER = {
    ("bench", "latency"): ["--seconds", "0.2", "--blocks", "256", "--rates", "16000"],
    ("evaluate",): ["--mixtures", "1", "--seconds", "1", "--no-progress"],
    ("train",): ["--stage1-steps", "1", "--stage2-steps", "1", "--batch-size", "1"],
}
NEEDS_CORPUS = {("evaluate",), ("train",)}


def readme_block(language: str) -> str:
    return re.search(rf"## Use\n.*?```{language}\n(.*?)```", README.read_text(), re.S).group(1)


def readme_commands() -> list[list[str]]:
    """The ``rtsep`` command lines of the Use section's shell block, comments removed."""
    return [
        shlex.split(line, comments=True)
        for line in readme_block("sh").splitlines()
        if line.startswith("rtsep ")
    ]


def _key(words: list[str]) -> tuple[str, ...]:
    return tuple(words[1:3]) if words[1] == "bench" else (words[1],)


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fresh")
    folder = root / "rtsep"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in listed)):
        source = REPO / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    subprocess.run(["git", "add", "-A"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fresh"], cwd=folder, check=True)
    shared = REPO.parent / "shared"
    if (shared / "corpus" / "manifest.csv").exists():
        (root / "shared").symlink_to(shared)
    return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    port = free_port()
    config = tmp_path_factory.mktemp("config") / "ports.toml"
    config.write_text(
        f'[control]\nendpoint = "tcp://127.0.0.1:{port}"\n'
        f'telemetry = "tcp://127.0.0.1:{free_port()}"\n'
    )
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "RTSEP_CONFIG": str(config),
        "RTSEP_CONTROL": f"tcp://127.0.0.1:{port}",
    }


def _argv(words: list[str]) -> list[str]:
    rtsep = Path(sys.executable).with_name("rtsep")
    return [str(rtsep), *words[1:], *SHORTER.get(_key(words), [])]


def _run(words, clone, env, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        _argv(words), cwd=clone, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_readme_has_the_commands_this_test_knows():
    commands = readme_commands()
    keys = {_key(words) for words in commands}
    for key in [("demo",), ("separate",), ("ctl",), ("bench", "latency"), ("info",)]:
        assert key in keys
    placeholders = [w for w in commands if PLACEHOLDERS & set(w)]
    assert placeholders and all(w[1] == "live" for w in placeholders)
    assert "`rtsep devices`" in README.read_text()  # where IN and OUT come from


@pytest.mark.slow
def test_every_readme_command_runs_on_a_fresh_clone_and_leaves_only_ignored_files(clone, env):
    commands = readme_commands()
    has_corpus = (clone.parent / "shared" / "corpus" / "manifest.csv").exists()
    skipped = []
    index = 0
    while index < len(commands):
        words = commands[index]
        index += 1
        if PLACEHOLDERS & set(words):
            continue
        if _key(words) in NEEDS_CORPUS and not has_corpus:
            skipped.append(shlex.join(words))
            continue
        if "--control" in words:  # runs while the next command (rtsep ctl) steers it
            steer = commands[index]
            index += 1
            _run_steered(words, steer, clone, env)
        elif words[1:3] == ["bridge", "osc"]:
            if not _udp_free(words[words.index("--listen") + 1]):
                skipped.append(f"{shlex.join(words)} (its port is taken)")
                continue
            _run_until_interrupted(words, clone, env)
        else:
            result = _run(words, clone, env)
            assert result.returncode == 0, (shlex.join(words), result.stderr[-3000:])
            assert "Traceback" not in result.stderr, shlex.join(words)
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout
    assert status == "", f"README outputs that git does not ignore:\n{status}"
    if skipped:
        pytest.skip(f"ran all but these (no ../shared/corpus, or a port taken): {skipped}")


def _run_steered(words, steer, clone, env) -> None:
    """Start the paced run, send the README's ``rtsep ctl`` command once the engine answers,
    and check that report.json tells what happened."""
    import json

    assert steer[:2] == ["rtsep", "ctl"], steer
    engine = subprocess.Popen(
        _argv(words), cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        ping = [str(Path(sys.executable).with_name("rtsep")), "ctl", "--timeout", "1", "ping"]
        deadline = time.monotonic() + 120
        while subprocess.run(ping, env=env, capture_output=True).returncode != 0:
            assert engine.poll() is None, engine.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the engine's control channel never answered"
        result = _run(steer, clone, env, timeout=60)
        assert result.returncode == 0, result.stderr
        _, stderr = engine.communicate(timeout=120)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    assert engine.returncode == 0, stderr[-3000:]
    out = clone / words[words.index("--out") + 1]
    report = json.loads((out / "report.json").read_text())
    wanted = steer[steer.index("set-cues") + 1 :]
    assert [entry["cues"] for entry in report["cue_history"]] == [["music"], wanted]
    assert report["cue_history"][1]["chunk"] > 0
    assert report["cues"] == wanted and report["count"] == len(wanted)
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(report["files"])
    assert [s["label"] for s in report["sources"]][: len(wanted)] == wanted


def _udp_free(host_port: str) -> bool:
    import socket

    host, port = host_port.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


def _run_until_interrupted(words, clone, env) -> None:
    process = subprocess.Popen(
        _argv(words), cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(3)
    assert process.poll() is None, process.communicate()[1]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert "Traceback" not in stderr and "error" not in stderr.lower(), stderr


@pytest.mark.slow
def test_the_readme_python_example_runs_on_a_fresh_clone(clone, env):
    result = subprocess.run(
        [sys.executable, "-c", readme_block("python")],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
