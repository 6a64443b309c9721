"""``rtsep separate`` and ``rtsep demo``: files through the streaming engine."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from ..config import engine_config_from  # noqa: F401  (live_cmd imports it from here)
from ..stems import EXAMPLE, check_cues, plot_spectrograms, read_input, separate_to_folder
from .common import (
    add_model_options,
    cli_command,
    effective_config,
    load_configured_model,
    untrained_warning,
)
from .control_cmd import add_control_options, control_server

#: ``--backend``: checked with the configuration (rtsep.config), against the entry points.
BACKEND_HELP = (
    "auto, torch, onnxruntime, torch-cuda-graphs (with --device cuda) or a plugin's backend"
    " (rtsep info lists them)"
)


def register(commands: argparse._SubParsersAction) -> None:
    separate = commands.add_parser(
        "separate",
        help="separate an audio file into stems through the streaming engine",
        description="Without cues, every source found gets a file (source_1.wav, ...). With "
        "--cue, each cue gets one (cue_1.wav, ...) plus residual.wav (the mixture minus the "
        "cues). Outputs have the input's rate and length, sample-aligned with it; report.json "
        "says what was found.",
    )
    separate.add_argument(
        "mix", help="input audio file (any format libsndfile reads; downmixed to mono)"
    )
    separate.add_argument("--out", metavar="DIR", help="output folder (default: <mix name>_stems)")
    add_engine_options(separate)
    add_control_options(separate)
    separate.set_defaults(run=run_separate)

    demo = commands.add_parser(
        "demo",
        help="separate the shipped example mixture (no sound card needed) and report",
        description="Runs the shipped 8-second example (speech, music and crow calls) through "
        "the engine twice: separating every source found, then extracting by label cues. "
        "Writes the stems and a PNG of spectrograms.",
    )
    demo.add_argument(
        "--out", metavar="DIR", default="rtsep-demo", help="output folder (default: rtsep-demo)"
    )
    add_model_options(demo)
    demo.add_argument("--backend", dest="engine_backend", metavar="NAME", help=BACKEND_HELP)
    demo.set_defaults(run=run_demo)


def add_cue_options(parser: argparse.ArgumentParser) -> None:
    """``--cue``, ``--mode``, ``--backend`` and ``--threads``: shared by separate and live."""
    parser.add_argument(
        "--cue",
        action="append",
        dest="cues",
        metavar="CUE",
        help="a label (speech, music, env) or free text; repeat for several",
    )
    parser.add_argument(
        "--mode",
        choices=("separate", "extract", "remove"),
        help="default: extract with cues, separate without",
    )
    parser.add_argument("--backend", dest="engine_backend", metavar="NAME", help=BACKEND_HELP)
    parser.add_argument("--threads", dest="engine_threads", type=int, help="backend CPU threads")


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    add_cue_options(parser)
    parser.add_argument(
        "--blocksize",
        dest="engine_blocksize",
        type=int,
        metavar="FRAMES",
        help="host block size, 32..4096 frames",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="pace the file at the audio rate, as a live device would",
    )
    add_model_options(parser)


def _describe(report: dict, out_dir: Path) -> str:
    lines = [f"{report['mode']}: {len(report['sources'])} output(s) in {out_dir}/"]
    for source in report["sources"]:
        lines.append(
            f"  {source['file']:<14} {source['label'] or '-':<28} "
            f"active {source['active_seconds']:.2f} s"
        )
    threads = report["threads"]
    lines.append(f"  active: {report['activity']}")
    lines.append(
        f"  latency {report['latency_samples']:g} samples ({report['latency_ms']:.1f} ms), "
        f"real-time factor {report['rtf']:.3f} "
        f"({report['backend']}, {threads} thread{'' if threads == 1 else 's'})"
    )
    if len(report["cue_history"]) > 1:
        lines.append(f"  cue changes: {len(report['cue_history']) - 1} (report.json: cue_history)")
    if report["deadline_misses"] or report["dropped_samples"]:
        lines.append(
            f"  deadline misses {report['deadline_misses']}, "
            f"dropped {report['dropped_samples']} samples"
        )
    return "\n".join(lines)


def _warn_nonfinite(command: str, report: dict) -> None:
    count = report["nonfinite_samples"]
    if count:
        print(
            f"rtsep {command}: warning: {count} non-finite sample(s) (NaN/Inf) in "
            f"{report['input']} replaced by 0 (report.json: nonfinite_samples)",
            file=sys.stderr,
        )


@cli_command
def run_separate(args: argparse.Namespace) -> int:
    config = effective_config(args)
    mix = Path(args.mix)
    out_dir = Path(args.out) if args.out else mix.with_name(mix.stem + "_stems")
    if args.control is not None and not args.realtime:
        raise ValueError("--control needs --realtime (an unpaced file finishes before any command)")
    check_cues(args.cues)
    audio = read_input(mix)  # before the model loads: a bad file is a quick error
    model = load_configured_model(config)
    print(untrained_warning(model), end="")
    with contextlib.ExitStack() as servers:
        report = separate_to_folder(
            model,
            mix,
            out_dir,
            args.cues,
            args.mode,
            config,
            args.realtime,
            on_start=lambda engine: servers.enter_context(control_server(engine, args, config)),
            audio=audio,
        )
    _warn_nonfinite("separate", report)
    print(_describe(report, out_dir))
    return 0


@cli_command
def run_demo(args: argparse.Namespace) -> int:
    config = effective_config(args)
    model = load_configured_model(config)
    out_dir = Path(args.out)
    print(untrained_warning(model), end="")
    print(f"example: {EXAMPLE.name} (8 s at 16 kHz: speech, music, crow calls; CC-BY-SA-3.0)")
    found = separate_to_folder(
        model, EXAMPLE, out_dir / "sources", None, None, config, progress=False
    )
    print(_describe(found, out_dir / "sources"))
    cues = ["speech", "music", "env"]
    extracted = separate_to_folder(
        model, EXAMPLE, out_dir / "cues", cues, "extract", config, progress=False
    )
    print(_describe(extracted, out_dir / "cues"))
    png = out_dir / "demo.png"
    plot_spectrograms(png, EXAMPLE, [(out_dir / "sources", found), (out_dir / "cues", extracted)])
    print(f"spectrograms: {png}")
    return 0
