"""Training throughput per architecture: seconds of audio learned per second of CPU time.

    python -m benchmarks.train_throughput [--models lstm dualpath bandrnn
        bandrnn:core_dim=224,head_dim=32] [--batch 8] [--seconds 2] [--steps 3] [--threads 1]
        [--cores 128 192 256] [--out DIR]

For each model (an architecture name, optionally with ``ModelConfig`` overrides after a colon),
a randomly initialised network takes Adam steps (forward, backward, update) on random input of
``batch`` × ``seconds``: in cue mode (one label cue per mixture) and in EDA mode (every slot an
output, ``max_sources``, and the attractor decoder). The loss is a stand-in (output power and
existence logits): its cost is negligible next to the network's. Reported per model and mode:
the median step time over ``steps`` steps after one warm-up step, and audio seconds per second
(``batch * seconds / step``); with them the parameter count and the counted MAC/s of inference
(``rtsep.model.complexity``). ``--cores`` also times one residual recurrent layer (LSTM and
GRU) at each width on ``batch`` × ``seconds`` of frames, forward and backward: the recurrent
core's cost per parameter. Writes ``train_throughput.json`` and ``.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import nn

from benchmarks.live_jack import write_results
from rtsep.model import ModelConfig, build_network
from rtsep.model.complexity import macs_per_second


def config_of(model: str) -> ModelConfig:
    """``"bandrnn:core_dim=224,head_dim=32"`` → that configuration (integers only)."""
    architecture, _, overrides = model.partition(":")
    fields = dict(item.split("=") for item in overrides.split(",") if item)
    return ModelConfig(architecture=architecture, **{k: int(v) for k, v in fields.items()})


def median_step_s(step: Callable[[], None], steps: int) -> float:
    """Median wall time of ``step()`` over ``steps`` calls after one warm-up call."""
    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_model(model: str, batch: int, seconds: float, steps: int) -> dict:
    """Step times and audio seconds per second of ``model`` in cue and EDA mode."""
    config = config_of(model)
    torch.manual_seed(0)
    network = build_network(config).train()
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-4)
    samples = int(seconds * config.sample_rate_hz) // config.hop_samples * config.hop_samples
    mixture = 0.1 * torch.randn(batch, samples)
    labels = torch.randint(len(config.labels), (batch, 1))

    def step(eda: bool) -> None:
        queries = None if eda else network.cues.embed_labels(labels)
        out = network(mixture, queries)
        loss = out.sources.square().mean() + out.existence_logits.mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    row: dict = {
        "model": model,
        "parameters": sum(p.numel() for p in network.parameters()),
        "mmacs_per_s_one_output": round(macs_per_second(config, 1) / 1e6, 1),
        "mmacs_per_s_eda": round(macs_per_second(config, config.max_sources) / 1e6, 1),
    }
    for mode, eda in (("cue", False), ("eda", True)):
        step_s = median_step_s(partial(step, eda), steps)
        row[f"{mode}_step_ms"] = round(1e3 * step_s, 1)
        row[f"{mode}_audio_s_per_s"] = round(batch * samples / config.sample_rate_hz / step_s, 1)
    return row


def measure_core(kind: str, width: int, batch: int, frames: int, steps: int) -> dict:
    """One pre-norm residual recurrent layer, forward and backward, on ``[batch, frames,
    width]``: milliseconds per pass and parameter-frames per microsecond."""
    norm = nn.LayerNorm(width)
    layer = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](width, width, batch_first=True)
    x = torch.randn(batch, frames, width, requires_grad=True)

    def step() -> None:
        y, _ = layer(norm(x))
        (x + y).square().mean().backward()

    step_s = median_step_s(step, steps)
    parameters = sum(p.numel() for p in layer.parameters())
    return {
        "kind": kind,
        "width": width,
        "parameters": parameters,
        "step_ms": round(1e3 * step_s, 1),
        "parameter_frames_per_us": round(parameters * batch * frames / step_s / 1e6, 1),
    }


def markdown(results: dict) -> str:
    lines = [
        "# Training throughput per architecture",
        "",
        f"- {results['date']}; {results['machine']['cpu']}, torch threads {results['threads']};"
        f" load before {results['load_before']}",
        f"- batch {results['batch']} × {results['seconds']} s, random input, Adam; median of"
        f" {results['steps']} steps after a warm-up; command: `{results['command']}`",
        "",
        "| model | parameters | M MAC/s (1 cue / 4 EDA) | cue step (ms) | cue audio s/s"
        " | EDA step (ms) | EDA audio s/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["models"]:
        lines.append(
            f"| {r['model']} | {r['parameters']:,} | {r['mmacs_per_s_one_output']} /"
            f" {r['mmacs_per_s_eda']} | {r['cue_step_ms']} | {r['cue_audio_s_per_s']} |"
            f" {r['eda_step_ms']} | {r['eda_audio_s_per_s']} |"
        )
    if results["cores"]:
        lines += [
            "",
            "One residual recurrent layer, forward + backward on the same frames:",
            "",
            "| layer | width | parameters | step (ms) | parameter-frames / µs |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in results["cores"]:
            lines.append(
                f"| {r['kind']} | {r['width']} | {r['parameters']:,} | {r['step_ms']} |"
                f" {r['parameter_frames_per_us']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["lstm", "dualpath", "bandrnn"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0, help="audio per mixture (2)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode (3)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    parser.add_argument("--cores", type=int, nargs="*", default=[], help="core widths to time")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    rows = []
    for model in args.models:
        rows.append(measure_model(model, args.batch, args.seconds, args.steps))
        print(rows[-1], flush=True)
    frames = int(args.seconds * ModelConfig().sample_rate_hz) // ModelConfig().hop_samples
    cores = [
        measure_core(kind, width, args.batch, frames, args.steps)
        for width in args.cores
        for kind in ("lstm", "gru")
    ]
    results = {
        "threads": args.threads,
        "batch": args.batch,
        "seconds": args.seconds,
        "steps": args.steps,
        "load_before": load_before,
        "models": rows,
        "cores": cores,
    }
    write_results("train_throughput", argv, results, markdown, args.out)


if __name__ == "__main__":
    main()
