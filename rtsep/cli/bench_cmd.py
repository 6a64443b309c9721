"""``rtsep bench latency``: parses the options and runs :mod:`rtsep.bench.latency`.

The benchmark streams the shipped example through the engine for every host block × sample
rate × backend × cue set and writes ``latency.json``, ``latency.md`` and ``latency.png`` into
``--out``: by default a new folder named by date under the current directory (the committed
``benchmarks/results`` only when given as ``--out``).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..bench.latency import BACKENDS, BLOCKS, DEFAULT_SECONDS, NO_CUES, RATES_HZ
from .common import add_model_options, cli_command, effective_config, load_configured_model

#: Prefix of the default results folder (``bench-latency-YYYY-MM-DD-HHMM`` in the cwd).
OUT_PREFIX = "bench-latency"


def _words(values) -> str:
    return " ".join(map(str, values))


def register(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="benchmarks: the latency table")
    kinds = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    latency = kinds.add_parser(
        "latency",
        help="reported latency and compute per host block, rate and backend",
        description="Streams audio through the engine for every host block x sample rate x "
        "backend x cue set (one thread each) and reports latency (samples, ms), per-chunk and "
        "per-hop compute (p50/p99/max, ms), real-time factor and deadline misses. Writes "
        "latency.json, latency.md and latency.png.",
    )
    add_latency_options(latency)
    latency.set_defaults(run=cli_command(run_latency))


def add_latency_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``rtsep bench latency`` (also used by ``python -m benchmarks.latency``)."""
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"seconds of audio per configuration (default {DEFAULT_SECONDS:g})",
    )
    for flag, values, metavar, what in (
        ("--blocks", BLOCKS, "FRAMES", "host block sizes, 32..4096 frames"),
        ("--rates", RATES_HZ, "HZ", "device sample rates"),
    ):
        parser.add_argument(
            flag,
            type=int,
            nargs="+",
            default=list(values),
            metavar=metavar,
            help=f"{what} (default: {_words(values)})",
        )
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS, help="default: both"
    )
    parser.add_argument(
        "--cues",
        nargs="+",
        default=["speech"],
        metavar="SET",
        help="cue sets: comma-separated cues (extract mode, one output each), or "
        f"'{NO_CUES}' to separate everything (one output per EDA slot); "
        "default: speech",
    )
    parser.add_argument("--threads", type=int, default=1, help="backend threads (default 1)")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="pace blocks at the device rate (deadline misses measured live); "
        "default: unpaced, which measures compute",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help=f"results folder (default: a new {OUT_PREFIX}-DATE-TIME folder here; give "
        "benchmarks/results to refresh the committed results)",
    )
    add_model_options(parser)


def run_latency(args: argparse.Namespace) -> int:
    from ..bench.latency import grid, markdown_table, parse_cue_sets, run_grid, write_results
    from ..bench.machine import dated_folder

    config = effective_config(args)
    out = args.out or dated_folder(OUT_PREFIX)
    model = load_configured_model(config)
    settings = grid(args.backends, args.rates, args.blocks, parse_cue_sets(args.cues, model))
    results, hop_times = run_grid(
        model, settings, config, args.seconds, args.threads, args.realtime
    )
    results["command"] = command_line(args)
    paths = write_results(results, hop_times, out)
    print(markdown_table(results["rows"]))
    print("wrote " + ", ".join(str(path) for path in paths))
    return 0


def command_line(args: argparse.Namespace) -> str:
    """The ``rtsep bench latency`` command that reproduces ``args``."""
    words = [
        "rtsep",
        "bench",
        "latency",
        "--seconds",
        f"{args.seconds:g}",
        "--blocks",
        *map(str, args.blocks),
        "--rates",
        *map(str, args.rates),
        "--backends",
        *args.backends,
        "--cues",
        *args.cues,
        "--threads",
        str(args.threads),
    ]
    if args.realtime:
        words.append("--realtime")
    for flag, value in (("--model", args.model_path), ("--device", args.model_device)):
        if value:
            words += [flag, value]
    if args.out:
        words += ["--out", str(args.out)]
    if getattr(args, "config", None):
        words[1:1] = ["--config", args.config]
    return shlex.join(words)
