"""``rtsep info``, ``rtsep config`` and ``rtsep export``."""

from __future__ import annotations

import argparse
import json

from ..config import to_toml
from .common import add_model_options, effective_config, load_configured_model, untrained_warning


def register(commands: argparse._SubParsersAction) -> None:
    info = commands.add_parser(
        "info", help="print the model's rate, hop, latency, size and compute"
    )
    add_model_options(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(run=run_info)

    config = commands.add_parser("config", help="print the effective configuration (TOML)")
    config.set_defaults(run=run_config)

    export = commands.add_parser("export", help="export the streaming step graph to ONNX")
    add_model_options(export)
    export.add_argument(
        "--onnx", required=True, metavar="PATH", help="where to write the .onnx file"
    )
    export.set_defaults(run=run_export)


def model_facts(model) -> dict:
    from ..model.complexity import macs_per_second

    c = model.config
    facts = {
        "trained": model.trained,
        "sample_rate_hz": model.sample_rate,
        "hop_samples": model.hop_samples,
        "hop_ms": 1000 * model.hop_samples / model.sample_rate,
        "latency_samples": model.latency_samples,
        "latency_ms": 1000 * model.latency_samples / model.sample_rate,
        "parameters": sum(p.numel() for p in model.network.parameters()),
        "labels": model.labels,
        "max_sources": c.max_sources,
        "attractor_interval_hops": c.attractor_interval_hops,
        "mmacs_per_second_one_output": round(macs_per_second(c, 1) / 1e6, 1),
        "mmacs_per_second_eda": round(macs_per_second(c, c.max_sources) / 1e6, 1),
    }
    training = model.metadata.get("training", {})
    if training:
        facts["training_steps"] = training.get("steps")
        facts["validation"] = training.get("scores") or training.get("quick_validation")
    return facts


def run_info(args: argparse.Namespace) -> int:
    model = load_configured_model(effective_config(args))
    facts = model_facts(model)
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    print(untrained_warning(model), end="")
    print(f"sample rate        {facts['sample_rate_hz']} Hz")
    print(f"hop                {facts['hop_samples']} samples ({facts['hop_ms']:.1f} ms)")
    print(
        f"latency            {facts['latency_samples']} samples "
        f"({facts['latency_ms']:.1f} ms, algorithmic)"
    )
    print(f"parameters         {facts['parameters']:,}")
    print(
        f"compute            {facts['mmacs_per_second_one_output']} M MAC/s with one cue, "
        f"{facts['mmacs_per_second_eda']} M MAC/s separating {facts['max_sources']} slots"
    )
    print(f"labels             {', '.join(facts['labels'])}")
    print(
        f"sources (EDA)      up to {facts['max_sources']}, attractors every "
        f"{facts['attractor_interval_hops']} hops"
    )
    if "training_steps" in facts:
        print(
            f"training           {facts['training_steps']} steps; validation {facts['validation']}"
        )
    return 0


def run_config(args: argparse.Namespace) -> int:
    print(to_toml(effective_config(args)), end="")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..export import export_onnx

    model = load_configured_model(effective_config(args))
    path = export_onnx(model, args.onnx)
    print(
        f"wrote {path} (step graph: one hop of {model.hop_samples} samples, "
        "state as inputs/outputs)"
    )
    return 0
