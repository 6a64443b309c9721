"""The latency benchmark: the engine's latency and compute over host blocks, rates and
backends (``rtsep bench latency``, ``python -m benchmarks.latency``).

Each configuration (backend × device rate × host block × cue set) streams a few seconds of
the shipped example mixture, resampled to the device rate, through the live engine in file
mode (:func:`rtsep.engine.file_runner.run_file`). Unpaced, this measures compute; paced
(``realtime=True``) the blocks come like a sound card's, so deadline misses mean what they
mean live. :func:`write_results` writes ``latency.json``, ``latency.md`` (the table) and
``latency.png``; ``benchmarks/README.md`` says how to read them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from ..config import engine_config_from
from .machine import machine_facts

BLOCKS = (64, 128, 256, 512, 1024, 2048)  # host block sizes, frames
RATES_HZ = (16000, 44100, 48000)
BACKENDS = ("torch", "onnxruntime")
DEFAULT_SECONDS = 5.0  # audio per configuration: the default grid, unpaced, takes ~1.5 min
# on a busy 2-core machine (~3 min paced)
NO_CUES = "none"  # cue set meaning "separate everything" (one output per EDA slot)
#: Share of a hop's duration one hop's compute may take: the rest is for the host and jitter.
BUDGET_FRACTION = 0.25
WARMUP_SECONDS = 0.25  # streamed once per backend before measuring (lazy init, ONNX export)
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "example_mix.flac"


@dataclass(frozen=True)
class Setting:
    """One configuration of the grid."""

    backend: str
    rate_hz: int
    block_samples: int
    cues: tuple[str, ...]  # empty: separate mode


@dataclass
class Measurement:
    """One configuration's JSON row and its per-hop compute times ``[chunks]`` (ms)."""

    row: dict
    hop_compute_ms: np.ndarray


def parse_cue_sets(values: list[str], model) -> list[tuple[str, ...]]:
    """``["speech", "speech,music", "none"]`` → ``[("speech",), ("speech", "music"), ()]``;
    raises ``ValueError`` naming an unusable cue."""
    sets = []
    for value in values:
        cues = () if value == NO_CUES else tuple(c.strip() for c in value.split(","))
        for cue in cues:
            model.validate_cue(cue)
        sets.append(cues)
    return sets


def grid(backends, rates_hz, blocks, cue_sets) -> list[Setting]:
    """Every configuration, backends innermost so that both see the same machine load."""
    for block in blocks:
        if not 32 <= block <= 4096:
            raise ValueError(f"host block of {block} frames: use 32..4096")
    for rate in rates_hz:
        if rate <= 0:
            raise ValueError(f"sample rate {rate} Hz: use a positive rate such as 48000")
    return [
        Setting(backend, rate, block, cues)
        for cues in cue_sets
        for rate in rates_hz
        for block in blocks
        for backend in backends
    ]


def run_grid(
    model,
    settings: list[Setting],
    config: dict,
    seconds: float,
    threads: int,
    realtime: bool,
) -> tuple[dict, list[np.ndarray]]:
    """Measure every setting: the JSON-ready results (``rows`` and how they were measured)
    and, per row, its per-hop compute times ``[chunks]`` in ms.

    ``config`` is the effective rtsep configuration (chunk hops, safety margin, tracker settings).
    """
    from tqdm import tqdm

    from ..engine.file_runner import run_file

    if seconds <= 0:
        raise ValueError(f"--seconds {seconds}: give a positive duration, e.g. 5")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"--threads {threads}: give a whole number, 1 or more")
    if any(s.backend == "onnxruntime" for s in settings) and not find_spec("onnxruntime"):
        raise RuntimeError(
            "onnxruntime is not installed: pip install onnxruntime, or pass --backends torch"
        )
    base = replace(engine_config_from(config), threads=threads, residual=False)
    warmup = example_audio(model.sample_rate, WARMUP_SECONDS)
    for backend in sorted({s.backend for s in settings}):
        run_file(
            model,
            warmup,
            model.sample_rate,
            replace(base, backend=backend),
            list(settings[0].cues) or None,
        )
    audio = {rate: example_audio(rate, seconds) for rate in {s.rate_hz for s in settings}}
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    measurements = []
    bar = tqdm(settings, desc="bench latency", unit="config")
    for setting in bar:
        cues = ",".join(setting.cues) or NO_CUES
        bar.set_postfix_str(
            f"{setting.backend} {setting.rate_hz} Hz {setting.block_samples} {cues}"
        )
        engine_config = replace(base, block_samples=setting.block_samples, backend=setting.backend)
        run = run_file(
            model,
            audio[setting.rate_hz],
            setting.rate_hz,
            engine_config,
            list(setting.cues) or None,
            realtime=realtime,
        )
        measurements.append(measure(run, setting, realtime))
    hop_ms = 1000.0 * model.hop_samples / model.sample_rate
    results = {
        "benchmark": "latency",
        "date": started,
        "paced": realtime,
        "seconds_per_configuration": seconds,
        "threads": threads,
        "chunk_hops": base.chunk_hops,
        "safety_ms": base.safety_ms,
        "model": {
            "trained": model.trained,
            "sample_rate_hz": model.sample_rate,
            "hop_samples": model.hop_samples,
            "window_samples": model.config.window_samples,
            "max_sources": model.config.max_sources,
        },
        "hop_ms": hop_ms,
        "budget_ms_per_hop": BUDGET_FRACTION * hop_ms,
        "machine": machine_facts() | {"load_before": load_before, "load_after": os.getloadavg()},
        "rows": [m.row for m in measurements],
    }
    return results, [m.hop_compute_ms for m in measurements]


def measure(run, setting: Setting, realtime: bool) -> Measurement:
    """The row of one :class:`~rtsep.engine.file_runner.FileRun`.

    Per-hop times are per-chunk times divided by hops per chunk. ``wall_real_time_factor``
    (unpaced only) is the whole run's wall time over the audio time it streamed: model,
    resampling, ring buffers and block handling. ``deadline_misses`` (output callbacks that
    played silence) and ``dropped_samples`` (device input discarded to catch up) are only
    measured paced: unpaced, every block is processed before its output is pulled.
    """
    engine = run.engine
    stats = engine.stats.snapshot()
    chunk_hops = engine.config.chunk_hops
    recent = engine.stats.compute_ms[: min(stats["chunks"], engine.stats.history)]
    hop_compute_ms = recent / chunk_hops
    hop_p50, hop_p99 = np.percentile(hop_compute_ms, [50, 99]) if recent.size else (0.0, 0.0)
    streamed_seconds = stats["callbacks"] * setting.block_samples / setting.rate_hz
    row = {
        "backend": setting.backend,
        "rate_hz": setting.rate_hz,
        "block_samples": setting.block_samples,
        "cues": list(setting.cues),
        "mode": engine.mode,
        "outputs": engine.channels,
        "latency_samples": round(engine.latency.total_samples, 3),
        "latency_ms": round(engine.latency.total_ms, 3),
        "latency_terms": engine.latency.as_dict(),
        "chunk_ms": stats["chunk_ms"],
        "chunks": stats["chunks"],
        "compute_ms_p50": round(stats["compute_ms_p50"], 4),
        "compute_ms_p99": round(stats["compute_ms_p99"], 4),
        "compute_ms_max": round(stats["compute_ms_max"], 4),
        "hop_compute_ms_p50": round(float(hop_p50), 4),
        "hop_compute_ms_p99": round(float(hop_p99), 4),
        "real_time_factor": round(stats["real_time_factor"], 4),
        "wall_real_time_factor": None if realtime else round(run.seconds / streamed_seconds, 4),
        "late_chunks": stats["late_chunks"],
        "callbacks": stats["callbacks"],
        "deadline_misses": stats["deadline_misses"] if realtime else None,
        "dropped_samples": stats["dropped_samples"] if realtime else None,
        "compute_ms_histogram": stats["compute_ms_histogram"],
    }
    return Measurement(row, hop_compute_ms)


def example_audio(rate_hz: int, seconds: float) -> np.ndarray:
    """The shipped example mixture at ``rate_hz``, repeated or cut to ``seconds``:
    ``float32 [1, frames]``."""
    import soxr

    from ..engine.file_io import read_audio

    audio, rate = read_audio(EXAMPLE)
    mono = audio.mean(axis=0)
    if rate != rate_hz:
        mono = soxr.resample(mono, rate, rate_hz)
    frames = max(1, int(round(seconds * rate_hz)))
    return np.resize(mono, frames).astype(np.float32)[None]


# ------------------------------------------------------------------------------------ reports
#: Markdown columns: header and the row's value as text.
COLUMNS = (
    ("backend", lambda r: r["backend"]),
    ("rate (Hz)", lambda r: str(r["rate_hz"])),
    ("block", lambda r: str(r["block_samples"])),
    ("cues", lambda r: ",".join(r["cues"]) or f"{NO_CUES} ({r['outputs']} out)"),
    ("latency (samples)", lambda r: f"{r['latency_samples']:.1f}"),
    ("latency (ms)", lambda r: f"{r['latency_ms']:.2f}"),
    ("chunk p50 (ms)", lambda r: f"{r['compute_ms_p50']:.3f}"),
    ("chunk p99 (ms)", lambda r: f"{r['compute_ms_p99']:.3f}"),
    ("chunk max (ms)", lambda r: f"{r['compute_ms_max']:.2f}"),
    ("hop p50 (ms)", lambda r: f"{r['hop_compute_ms_p50']:.3f}"),
    ("hop p99 (ms)", lambda r: f"{r['hop_compute_ms_p99']:.3f}"),
    ("RTF", lambda r: f"{r['real_time_factor']:.3f}"),
    ("wall RTF", lambda r: _measured(r["wall_real_time_factor"], "{:.3f}".format)),
    ("late chunks", lambda r: f"{r['late_chunks']}/{r['chunks']}"),
    ("deadline misses", lambda r: _measured(r["deadline_misses"], f"{{}}/{r['callbacks']}".format)),
    (
        "dropped (ms)",
        lambda r: _measured(r["dropped_samples"], lambda v: f"{1000 * v / r['rate_hz']:.0f}"),
    ),
)


def _measured(value, text: Callable[[Any], str]) -> str:
    """``text(value)``, or a dash for a figure this run does not measure (``None``)."""
    return "–" if value is None else text(value)


def markdown_table(rows: list[dict]) -> str:
    """The Neutone/anira-style table, one row per configuration."""
    lines = [
        "| " + " | ".join(header for header, _ in COLUMNS) + " |",
        "|" + "|".join("---" if i < 4 else "--:" for i in range(len(COLUMNS))) + "|",
    ]
    lines += ["| " + " | ".join(cell(row) for _, cell in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _safety(results: dict) -> str:
    return f"{results['safety_ms']:g} ms safety margin"


def markdown_report(results: dict) -> str:
    """``latency.md``: how it was measured, then the table."""
    m, model, r = results["machine"], results["model"], results
    load = [", ".join(f"{x:.2f}" for x in m[key]) for key in ("load_before", "load_after")]
    commit = (m["git_commit"] or "unknown")[:12]
    commit += " (uncommitted changes)" if m["git_dirty"] else ""
    pacing = "paced in real time" if r["paced"] else "unpaced (compute measurement)"
    untrained = "" if model["trained"] else " (untrained weights: same compute)"
    facts = {
        "command": f"`{r['command']}`",
        "date": f"{r['date']}, commit {commit}",
        "machine": f"{m['cpu']}, {m['cores']} cores",
        "load average (1/5/15 min)": f"{load[0]} before, {load[1]} after",
        "software": f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, Python {m['python']}",
        "run": f"{pacing}, {r['seconds_per_configuration']:g} s of audio per configuration, "
        f"{r['threads']} thread(s), {r['chunk_hops']} hop(s) per chunk, {_safety(r)}",
        "model": f"{model['sample_rate_hz']} Hz, hop {model['hop_samples']} samples "
        f"({r['hop_ms']:g} ms), window {model['window_samples']} samples{untrained}",
        "budget": f"{BUDGET_FRACTION:.0%} of a hop = {r['budget_ms_per_hop']:g} ms per hop",
        "RTF": "model compute / audio time; wall RTF: the whole engine's time (unpaced runs)",
    }
    lines = ["# Latency benchmark", "", *(f"- {key}: {value}" for key, value in facts.items())]
    return "\n".join([*lines, "", markdown_table(r["rows"])])


def write_results(results: dict, hop_times: list[np.ndarray], out: Path) -> list[Path]:
    """Write ``latency.json``, ``latency.md`` and ``latency.png`` (which also shows
    ``hop_times``, each row's per-hop compute in ms) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "latency.json", out / "latency.md", out / "latency.png"]
    paths[0].write_text(json.dumps(results, indent=2) + "\n")
    paths[1].write_text(markdown_report(results))
    plot(results, hop_times, paths[2])
    return paths


def plot(results: dict, hop_times: list[np.ndarray], path: Path) -> None:
    """Latency vs block per rate; per-hop p99 vs block per backend and rate; per-hop compute
    distribution per backend and cue set (box: quartiles, whiskers: 1st-99th percentile)."""
    from matplotlib.figure import Figure

    rows = results["rows"]
    figure = Figure(figsize=(15, 4.5), layout="constrained")
    latency_axes, hop_axes, box_axes = figure.subplots(1, 3)
    styles = ("-", "--", ":", "-.")
    for index, rate in enumerate(sorted({r["rate_hz"] for r in rows})):
        latency = {r["block_samples"]: r["latency_ms"] for r in rows if r["rate_hz"] == rate}
        latency_axes.plot(list(latency), list(latency.values()), "o-", label=f"{rate} Hz")
        for backend in sorted({r["backend"] for r in rows}):
            p99: dict[int, float] = {}  # the worst cue set at each block
            for r in rows:
                if r["rate_hz"] == rate and r["backend"] == backend:
                    block = r["block_samples"]
                    p99[block] = max(p99.get(block, 0.0), r["hop_compute_ms_p99"])
            hop_axes.plot(
                list(p99),
                list(p99.values()),
                styles[index % len(styles)],
                marker="o",
                color="C0" if backend == "torch" else "C1",
                label=f"{backend} {rate} Hz",
            )
    budget = results["budget_ms_per_hop"]
    hop_axes.axhline(budget, color="red", linewidth=1, label=f"budget {budget:g} ms")
    groups: dict[str, list[np.ndarray]] = {}
    for row, times in zip(rows, hop_times, strict=True):
        name = f"{row['backend']}\n{','.join(row['cues']) or NO_CUES}"
        groups.setdefault(name, []).append(times)
    box_axes.boxplot([np.concatenate(t) for t in groups.values()], whis=(1, 99), showfliers=False)
    box_axes.set_xticks(range(1, len(groups) + 1), list(groups))
    box_axes.axhline(budget, color="red", linewidth=1)
    for axes, title, ylabel in (
        (latency_axes, "reported latency", "ms"),
        (hop_axes, "per-hop compute p99", "ms"),
        (box_axes, "per-hop compute, all configurations", "ms"),
    ):
        axes.set_title(title)
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
    blocks = sorted({r["block_samples"] for r in rows})
    for axes in (latency_axes, hop_axes):
        axes.set_xscale("log", base=2)
        axes.set_xticks(blocks, [str(block) for block in blocks])
        axes.minorticks_off()
        axes.set_xlabel("host block (frames)")
        axes.legend(fontsize="small")
    figure.savefig(path, dpi=110)
