"""Designs compared at equal compute: each candidate recipe trains for the same training time
on this machine, validated on the same mixtures of both validations (the split and the user
scenes) at the same training-time marks; the learning curves come out as a table and a PNG.

Quality per CPU-hour, not per step, is what chooses a design here: a step of one network can
cost several of another's (docs/model.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .settings import TrainSettings

#: The figures of one validation record compared across designs: (log key suffix, title).
FIGURES = (
    ("label_si_snri", "label SI-SNRi (dB)"),
    ("eda_si_snri", "EDA SI-SNRi (dB)"),
    ("count_accuracy", "count accuracy"),
)
#: Log prefix → name: the split's mixtures, the user scenes.
VALIDATIONS = {"validation": "split", "scenes": "scenes"}


@dataclass(frozen=True)
class Candidate:
    """One design: its name (the recipe's file stem) and the run that trained it."""

    name: str
    recipe: Path
    run_dir: Path


def train_candidates(
    recipes: list[Path],
    *,
    corpus: str,
    runs_root: Path,
    minutes: float,
    mark_minutes: float,
    init: str | None = None,
    parallel: int = 1,
) -> list[Candidate]:
    """Train each recipe for ``minutes`` of training CPU time (``rtsep.train.clock``),
    validated on both validations every ``mark_minutes``; runs in ``runs_root/<recipe stem>``
    (an existing run there is resumed), each an ``rtsep train`` process of its own with its
    output in ``runs_root/<recipe stem>.log``, ``parallel`` of them at a time (two at one
    thread each share two cores). ``init`` overrides every recipe's starting weights. Raises
    RuntimeError naming the candidates whose run failed, with the end of their logs."""
    runs_root.mkdir(parents=True, exist_ok=True)
    candidates = [Candidate(recipe.stem, recipe, runs_root / recipe.stem) for recipe in recipes]
    overrides = {
        "corpus": corpus,
        "train_time_limit_s": 60.0 * minutes,
        "validate_every_s": 60.0 * mark_minutes,
        "validate_every": 10**9,  # only the marks (and the end)
        "time_limit_s": 0.0,
    }
    if init is not None:
        overrides["init"] = init
    pending = list(candidates)
    running: list[tuple[Candidate, subprocess.Popen]] = []
    failed: list[str] = []
    while pending or running:
        while pending and len(running) < max(1, parallel):
            candidate = pending.pop(0)
            running.append((candidate, _start_run(candidate, overrides)))
        time.sleep(0.2)
        for candidate, process in list(running):
            if process.poll() is not None:
                running.remove((candidate, process))
                if process.returncode != 0:
                    tail = _log_path(candidate).read_text()[-2000:]
                    failed.append(f"{candidate.name} (exit {process.returncode}):\n{tail}")
    if failed:
        raise RuntimeError("candidate runs failed: " + "\n".join(failed))
    return candidates


def _log_path(candidate: Candidate) -> Path:
    return candidate.run_dir.with_name(candidate.name + ".log")


def _start_run(candidate: Candidate, overrides: dict) -> subprocess.Popen:
    """``rtsep train`` on the candidate's recipe with ``overrides``; the user scenes are
    validated beside the split (as many as the split's mixtures unless the recipe says)."""
    settings = TrainSettings.load(candidate.recipe)
    values = dict(overrides)
    if settings.scene_validation_mixtures <= 0:
        values["scene_validation_mixtures"] = settings.validation_mixtures
    command = [sys.executable, "-m", "rtsep", "train", "--settings", str(candidate.recipe)]
    command += ["--run-dir", str(candidate.run_dir)]
    for key, value in values.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    with _log_path(candidate).open("w") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def learning_curves(run_dir: Path) -> dict:
    """A run's validation records by training CPU time: ``{"minutes": [...],
    "<prefix>_<figure>": [...], "audio_s_per_s": float}``, the last being training throughput
    (seconds of audio per CPU second of training)."""
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    marks = [r for r in records if "train_s" in r]
    curves: dict = {"minutes": [round(r["train_s"] / 60.0, 2) for r in marks]}
    for prefix in VALIDATIONS:
        for key, _ in FIGURES:
            curves[f"{prefix}_{key}"] = [r.get(f"{prefix}_{key}") for r in marks]
    settings = json.loads((run_dir / "settings.json").read_text())
    steps = [r for r in records if "total" in r]
    audio_s = len(steps) * settings["batch_size"] * settings["segment_seconds"]
    curves["audio_s_per_s"] = round(audio_s / marks[-1]["train_s"], 1) if marks else None
    return curves


def render_table(candidates: list[Candidate]) -> str:
    """Markdown: one row per candidate and mark; the split's and the scenes' figures."""
    header = ["design", "training CPU min", "audio s / CPU s"]
    header += [f"{name}: {title}" for name in VALIDATIONS.values() for _, title in FIGURES]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for candidate in candidates:
        curves = learning_curves(candidate.run_dir)
        for index, minutes in enumerate(curves["minutes"]):
            cells = [candidate.name, f"{minutes:g}", str(curves["audio_s_per_s"])]
            for prefix in VALIDATIONS:
                for key, _ in FIGURES:
                    cells.append(_cell(curves[f"{prefix}_{key}"][index], key))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(candidates: list[Candidate], png_path: Path) -> None:
    """Label and EDA SI-SNRi and count accuracy against training minutes, one panel each;
    the split solid, the scenes dashed, one colour per design."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(FIGURES), figsize=(5 * len(FIGURES), 4))
    for colour, candidate in enumerate(candidates):
        curves = learning_curves(candidate.run_dir)
        for axis, (key, title) in zip(axes, FIGURES, strict=True):
            for prefix, style in zip(VALIDATIONS, ("-", "--"), strict=True):
                points = [
                    (m, v)
                    for m, v in zip(curves["minutes"], curves[f"{prefix}_{key}"], strict=True)
                    if v is not None
                ]
                if points:
                    minutes, values = np.array(points).T
                    axis.plot(minutes, values, style, color=f"C{colour}", marker="o",
                              label=f"{candidate.name} ({VALIDATIONS[prefix]})")  # fmt: skip
            axis.set_xlabel("training CPU minutes")
            axis.set_title(title)
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def _cell(value: float | None, key: str) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.0f} %" if key == "count_accuracy" else f"{value:.2f}"
