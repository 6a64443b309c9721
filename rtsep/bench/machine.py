"""Facts about the machine and checkout a benchmark ran on, and small helpers that the
benchmarks and their tests share (no torch at import)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from datetime import datetime
from pathlib import Path


def machine_facts() -> dict:
    """CPU model, cores, software versions and the git commit of this checkout."""
    import torch

    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    changed = git_output("diff-index", "--name-only", "HEAD", "--")
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort_version,
        "git_commit": git_commit(),
        "git_dirty": None if changed is None else changed != "",
    }


def cpu_model() -> str:
    """The ``model name`` of ``/proc/cpuinfo`` (Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_output(*arguments: str, folder: str | Path | None = None) -> str | None:
    """Output of a read-only git command run in ``folder`` (default: this package's), or
    ``None`` where git or the checkout is missing."""
    try:
        result = subprocess.run(
            ["git", *arguments],
            cwd=Path(folder) if folder else Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_commit(folder: str | Path | None = None) -> str | None:
    """The commit checked out in ``folder`` (default: this package's), or ``None``."""
    return git_output("rev-parse", "HEAD", folder=folder) or None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS just handed out (and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dated_folder(prefix: str, parent: str | Path = ".") -> Path:
    """A new folder name under ``parent`` named by the local date and time
    (``PREFIX-2026-12-02-0415``; ``-2``, ``-3``, … if taken). Not created here."""
    stem = f"{prefix}-{datetime.now():%Y-%m-%d-%H%M}"
    path = Path(parent) / stem
    index = 2
    while path.exists():
        path = Path(parent) / f"{stem}-{index}"
        index += 1
    return path
