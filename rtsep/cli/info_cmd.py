"""``rtsep info``, ``rtsep config`` and ``rtsep export``."""

from __future__ import annotations

import argparse
import json

from ..config import to_toml
from ..plugins import BACKENDS_GROUP, BRIDGES_GROUP, describe
from .common import (
    add_debug_option,
    add_model_options,
    cli_command,
    effective_config,
    load_configured_model,
    untrained_warning,
)


def register(commands: argparse._SubParsersAction) -> None:
    info = commands.add_parser(
        "info", help="print the model's rate, hop, latency, size and compute"
    )
    add_model_options(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(run=cli_command(run_info))

    config = commands.add_parser("config", help="print the effective configuration (TOML)")
    add_debug_option(config)
    config.set_defaults(run=cli_command(run_config))

    export = commands.add_parser("export", help="export the streaming step graph to ONNX")
    add_model_options(export)
    export.add_argument(
        "--onnx", required=True, metavar="PATH", help="where to write the .onnx file"
    )
    export.set_defaults(run=cli_command(run_export))


PLUGIN_GROUPS = {"backends": BACKENDS_GROUP, "bridges": BRIDGES_GROUP}


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
    facts.update(training_lineage(model.metadata))
    return facts


def training_lineage(metadata: dict) -> dict:
    """What a checkpoint's metadata says about how it was made, read generically: the runs it
    came from (``training.stages``: name, steps, device, wall time), their total, the quick
    validation scores of the last run and the headline numbers of ``evaluation``. Keys the
    metadata lacks are left out."""
    training = metadata.get("training") or {}
    facts: dict = {}
    if not training:
        return facts
    runs = []
    for stage in training.get("stages") or []:
        settings = stage.get("settings") or {}
        runs.append(
            {
                "run": stage.get("run"),
                "steps": stage.get("steps"),
                "device": settings.get("device", "cpu"),
                "wall_time_s": stage.get("wall_time_s"),
            }
        )
    steps = training.get("total_steps")
    if steps is None:
        steps = sum(r["steps"] or 0 for r in runs) if runs else training.get("steps")
    facts["training_steps"] = steps
    if runs:
        facts["training_runs"] = runs
    if training.get("wall_time_s") is not None:
        facts["training_wall_time_s"] = training["wall_time_s"]
    for key in ("training_sources", "validation_sources"):
        if training.get(key):
            facts[key] = list(training[key])
    validation = training.get("scores") or training.get("quick_validation")
    if validation:
        facts["validation"] = validation
    evaluation = metadata.get("evaluation") or {}
    if evaluation:
        facts["evaluation"] = _evaluation_headline(evaluation)
    return facts


def _evaluation_headline(evaluation: dict) -> dict:
    """The headline scores of an ``rtsep evaluate`` result: its scalar scores, and the dB
    figures of each condition (only ``all`` where a group has it); with several validations
    (``{"validations": {name: result}}``) each one's, named ``"<validation>: <score>"``."""
    if isinstance(evaluation.get("validations"), dict):
        return {
            f"{validation}: {name}": value
            for validation, result in evaluation["validations"].items()
            for name, value in _evaluation_headline(result).items()
        }
    headline: dict = {}
    for name, value in evaluation.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            headline[name] = value
        elif isinstance(value, dict) and name not in ("settings", "machine", "rules"):
            groups = {"all": value["all"]} if isinstance(value.get("all"), dict) else value
            for inner, scores in groups.items():
                if isinstance(scores, dict):
                    figures = {
                        key: number
                        for key, number in scores.items()
                        if key.endswith("_db") and isinstance(number, int | float)
                    }
                    if figures:
                        headline[f"{name} {inner}"] = figures
    return headline


def _scores(scores: dict) -> str:
    words = []
    for name, value in scores.items():
        label = name.removeprefix("validation_").replace("_", " ")
        words.append(f"{label} {value:.3g}" if isinstance(value, float) else f"{label} {value}")
    return ", ".join(words)


def _training_lines(facts: dict) -> list[str]:
    if "training_steps" not in facts:
        return []
    pad = " " * 19
    head = f"training           {facts['training_steps']:,} steps"
    runs = facts.get("training_runs") or []
    if runs:
        head += f" in {len(runs)} run{'s' if len(runs) != 1 else ''}"
    if facts.get("training_wall_time_s"):
        head += f", {facts['training_wall_time_s'] / 60:.0f} min"
    lines = [head]
    for run in runs:
        steps = f"{run['steps']:,}" if isinstance(run["steps"], int) else "?"
        lines.append(f"{pad}{run['run'] or '?'}: {steps} steps on {run['device']}")
    for key, title in (("training_sources", "trained on"), ("validation_sources", "held out")):
        if facts.get(key):
            lines.append(f"{pad}{title} {len(facts[key])} recording sources")
    if facts.get("validation"):
        lines.append(f"validation         {_scores(facts['validation'])} (last run, quick)")
    for index, (name, value) in enumerate((facts.get("evaluation") or {}).items()):
        title = "evaluation         " if index == 0 else pad
        if isinstance(value, dict):
            text = ", ".join(
                f"{key.removesuffix('_db').replace('_', ' ')} {number:.1f} dB"
                for key, number in value.items()
            )
        else:
            text = f"{value:g}"
        lines.append(f"{title}{name.replace('_', ' ')}: {text}")
    return lines


def run_info(args: argparse.Namespace) -> int:
    model = load_configured_model(effective_config(args))
    facts = model_facts(model)
    facts["plugins"] = plugins = {kind: describe(g) for kind, g in PLUGIN_GROUPS.items()}
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
    print("plugins            " + "; ".join(f"{k}: {', '.join(v)}" for k, v in plugins.items()))
    print(
        f"sources (EDA)      up to {facts['max_sources']}, attractors every "
        f"{facts['attractor_interval_hops']} hops"
    )
    for line in _training_lines(facts):
        print(line)
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
