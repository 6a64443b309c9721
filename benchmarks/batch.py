"""Throughput of ``rtsep batch``: seconds of audio separated per wall-clock second.

    python -m benchmarks.batch [--files 8] [--seconds 10] [--workers 1 2] [--ray]
        [--out benchmarks/results]

Writes ``--files`` noise-and-tone files of ``--seconds`` each into a temporary folder, runs
:func:`rtsep.batch.run_batch` over them (two cues, the shipped model, one model thread per
worker) once per worker count (and on a local Ray cluster with ``--ray``), each into a fresh
output folder, and reports wall time and audio seconds per second. Writes ``batch.json`` and
``batch.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from rtsep.batch import run_batch
from rtsep.config import load_config

RATE = 16000
CUES = ("speech", "music")


def make_inputs(folder: Path, files: int, seconds: float) -> list[Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    paths = []
    for index in range(files):
        tone = 0.2 * np.sin(2 * np.pi * (150 + 40 * index) * t)
        path = folder / f"file{index:03d}.wav"
        sf.write(path, (tone + 0.05 * rng.standard_normal(t.size)).astype(np.float32), RATE)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per file (10)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--ray", action="store_true", help="also on a local Ray cluster")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    config = load_config()
    runs = [(w, None) for w in args.workers] + ([(max(args.workers), "local")] if args.ray else [])
    rows = []
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp), args.files, args.seconds)
        for workers, ray in runs:
            out = Path(tmp) / f"out-{workers}-{ray}"
            record = run_batch(inputs, out, config, CUES, None, workers, ray, progress=False)
            audio_seconds = args.files * args.seconds
            rows.append(
                {
                    "workers": workers,
                    "ray": ray,
                    "done": record["done"],
                    "wall_seconds": record["wall_seconds"],
                    "audio_seconds_per_second": round(audio_seconds / record["wall_seconds"], 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    results = {
        "files": args.files,
        "seconds_per_file": args.seconds,
        "cues": list(CUES),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_before": load_before,
        "command": "python -m benchmarks.batch "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batch.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# rtsep batch throughput",
        "",
        f"- {args.files} files x {args.seconds} s, cues {', '.join(CUES)}, shipped model,"
        f" one model thread per worker; {results['date']}; {results['machine']};"
        f" load before {load_before}",
        f"- command: `{results['command']}`",
        "",
        "| workers | Ray | files done | wall (s) | audio s per s |",
        "|---:|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['workers']} | {r['ray'] or '-'} | {r['done']} | {r['wall_seconds']} |"
        f" {r['audio_seconds_per_second']} |"
        for r in rows
    ]
    (args.out / "batch.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}/batch.json and batch.md")


if __name__ == "__main__":
    main()
