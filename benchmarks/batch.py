"""Throughput of ``rtsep batch``: seconds of audio separated per wall-clock second.

    python -m benchmarks.batch [--files 8] [--seconds 10] [--workers 1 2] [--streams 1]
        [--torch] [--ray] [--out benchmarks/results]

Writes ``--files`` noise-and-tone files of ``--seconds`` each into a temporary folder, runs
:func:`rtsep.batch.run_batch` over them (two cues, the shipped model, one model thread per
worker) once per worker count and ``--streams`` value (files stepped together per worker,
one batched torch call per hop), with ``--torch`` also one file at a time on the torch
backend (what the batched step replaces; the configured backend is ``auto``), and on a
local Ray cluster with ``--ray``, each into a fresh output folder; reports wall time and
audio seconds per second. Runs in this process (one worker) come after a warm-up file, so the
model load (about 2 s) is in none of them; worker processes load it in their time. Writes
``NAME.json`` and ``NAME.md`` to ``--out`` (``--name``, default ``batch``).
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
    parser.add_argument("--streams", type=int, nargs="+", default=[1], help="files per step")
    parser.add_argument("--torch", action="store_true", help="also streams 1 on torch")
    parser.add_argument("--ray", action="store_true", help="also on a local Ray cluster")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--name", default="batch", help="stem of the result files (batch)")
    args = parser.parse_args(argv)
    config = load_config()
    runs = [(w, None, b, "auto") for w in args.workers for b in args.streams]
    runs += [(w, None, 1, "torch") for w in args.workers] if args.torch else []
    runs += [(max(args.workers), "local", 1, "auto")] if args.ray else []
    rows = []
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp), args.files, args.seconds)
        run_batch(inputs[:1], Path(tmp) / "warm-up", config, CUES, progress=False)
        for workers, ray, streams, backend in runs:
            out = Path(tmp) / f"out-{workers}-{ray}-{streams}-{backend}"
            run_config = {**config, "engine": {**config["engine"], "backend": backend}}
            record = run_batch(inputs, out, run_config, CUES, None, workers, ray, False, streams)
            audio_seconds = args.files * args.seconds
            rows.append(
                {
                    "workers": workers,
                    "streams": streams,
                    "backend": "torch (batched)" if streams > 1 else backend,
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
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# rtsep batch throughput",
        "",
        f"- {args.files} files x {args.seconds} s, cues {', '.join(CUES)}, shipped model,"
        f" one model thread per worker; {results['date']}; {results['machine']};"
        f" load before {load_before}",
        f"- command: `{results['command']}`",
        "- one worker runs in this process after a warm-up file (the model load, about 2 s, is"
        " not timed); worker processes and Ray load it in their wall time",
        "",
        "| workers | streams | backend | Ray | files done | wall (s) | audio s per s |",
        "|---:|---:|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['workers']} | {r['streams']} | {r['backend']} | {r['ray'] or '-'} | {r['done']} |"
        f" {r['wall_seconds']} | {r['audio_seconds_per_second']} |"
        for r in rows
    ]
    (args.out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}/{args.name}.json and .md")


if __name__ == "__main__":
    main()
