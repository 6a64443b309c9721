"""Throughput of many streams per model step: how many real-time streams one core (or GPU) carries.

    python -m benchmarks.streams [--batches 1 4 16 64] [--seconds 2] [--device cpu|cuda]
        [--cuda-graphs] [--cues speech | --eda] [--out benchmarks/results]

For each batch size B, :class:`rtsep.engine.BatchStreamer` separates B different noise-and-tone
streams hop by hop (128 samples per call, as a live engine feeds it), torch on one thread (CPU)
or on the GPU (with ``--cuda-graphs``, each hop a replayed CUDA graph). Reported per B: the
wall time per hop step (p50/p99/max over the steps; at B = 1 the per-hop latency), the
real-time factor (wall time / audio time, for all B streams together) and the streams carried
in real time (B / RTF). Writes ``streams.json`` and ``streams.md`` to ``--out`` (on a GPU
``streams_cuda`` or ``streams_cuda_graphs``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import rtsep
from rtsep.engine import BatchStreamer


def measure(
    model: rtsep.Model,
    batch: int,
    seconds: float,
    cues: list[str] | None,
    cuda_graphs: bool = False,
) -> dict:
    """Per-hop step times (ms) and the real-time figures for ``batch`` streams."""
    rng = np.random.default_rng(batch)
    hop = model.hop_samples
    hops = int(seconds * model.sample_rate) // hop
    audio = (0.1 * rng.standard_normal((batch, (hops + 1) * hop))).astype(np.float32)
    streamer = BatchStreamer(model, [cues] * batch, threads=None, cuda_graphs=cuda_graphs)
    streamer.process(audio[:, :hop])  # first call: allocations, warm caches
    synchronise = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    steps = []
    for index in range(1, hops + 1):
        start = time.perf_counter()
        streamer.process(audio[:, index * hop : (index + 1) * hop])
        synchronise()
        steps.append(time.perf_counter() - start)
    steps_ms = np.array(steps) * 1e3
    hop_ms = 1e3 * hop / model.sample_rate
    rtf = float(steps_ms.sum() / (hops * hop_ms))
    return {
        "batch": batch,
        "outputs": streamer.outputs,
        "hops": hops,
        "step_ms_p50": round(float(np.median(steps_ms)), 3),
        "step_ms_p99": round(float(np.percentile(steps_ms, 99)), 3),
        "step_ms_max": round(float(steps_ms.max()), 3),
        "real_time_factor": round(rtf, 4),
        "streams_in_real_time": round(batch / rtf, 1),
    }


def markdown(results: dict) -> str:
    lines = [
        "# Streams per model step (BatchStreamer)",
        "",
        f"- model: {results['model']}; device {results['device']}"
        f"{' (CUDA graphs)' if results['cuda_graphs'] else ''}, torch threads"
        f" {results['threads']}; outputs per stream {results['rows'][0]['outputs']}"
        f" ({results['mode']})",
        f"- {results['seconds']} s of audio per stream, one hop (8 ms) per call;"
        f" {results['date']}; machine {results['machine']}; load before the run"
        f" {results['load_before']}",
        f"- command: `{results['command']}`",
        "",
        "| B | step p50 (ms) | step p99 (ms) | step max (ms) | RTF (all B) | real-time streams |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['batch']} | {row['step_ms_p50']} | {row['step_ms_p99']} |"
            f" {row['step_ms_max']} | {row['real_time_factor']} | {row['streams_in_real_time']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--seconds", type=float, default=2.0, help="audio per stream (2)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--cuda-graphs", action="store_true", help="replay a CUDA graph per hop")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    parser.add_argument("--cues", nargs="+", default=None, help="cues of every stream")
    parser.add_argument("--model", help="checkpoint (default: the shipped weights)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = rtsep.load_model(args.model, device=args.device)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    rows = []
    for batch in args.batches:
        rows.append(measure(model, batch, args.seconds, args.cues, args.cuda_graphs))
        print(json.dumps(rows[-1]), flush=True)
    results = {
        "model": args.model or "shipped weights",
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "threads": args.threads,
        "cuda_graphs": args.cuda_graphs,
        "mode": f"cues {args.cues}" if args.cues else "EDA (every slot)",
        "seconds": args.seconds,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s)",
        "load_before": " ".join(load_before),
        "command": "python -m benchmarks.streams "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "streams" if args.device == "cpu" else f"streams_{args.device.replace(':', '')}"
    stem += "_graphs" if args.cuda_graphs else ""
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(results))
    print(f"wrote {args.out / stem}.json and .md")


if __name__ == "__main__":
    main()
