"""``rtsep evaluate``: the quality benchmark on held-out mixtures, streamed as users hear it;
``rtsep calibrate``: fit a checkpoint's counting and naming rules on training mixtures."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .common import (
    add_model_options,
    cli_command,
    effective_config,
    load_configured_model,
    untrained_warning,
)

#: Environment variable naming the corpus folder when ``--corpus`` is not given.
CORPUS_ENV = "RTSEP_CORPUS"
#: Corpus folder used when neither ``--corpus`` nor ``$RTSEP_CORPUS`` is given.
DEFAULT_CORPUS = Path("..") / "shared" / "corpus"
#: Prefix of the default results folder (``evaluate-YYYY-MM-DD-HHMM`` in the cwd).
OUT_PREFIX = "evaluate"


def register(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="score extraction, separation and source counting on held-out mixtures",
        description="Quality benchmark on mixtures simulated from the validation split: "
        "SI-SNRi/SDRi of extraction by label and held-out text cues (speech beside RNNoise "
        "and DeepFilterNet3 when the dev extras are installed), the output level of cues for "
        "absent classes, "
        "separation of 2 and 3 sources with unknown count, source-count accuracy, "
        "attractor-cue matching, channel consistency, and an oracle ideal ratio mask as "
        "upper bound. Outputs are streamed through the engine. Two validations, side by "
        "side: 'split' mixes held-out sources as training does, 'scenes' as a user's scene "
        "is (every source from the start, levels within ±5 dB, short clips repeated). "
        "Writes JSON and a Markdown table.",
    )
    evaluate.add_argument(
        "--corpus",
        metavar="DIR",
        help=f"corpus folder holding manifest.csv (default: ${CORPUS_ENV}, else {DEFAULT_CORPUS})",
    )
    add_model_options(evaluate)
    evaluate.add_argument(
        "--mixtures",
        type=int,
        metavar="N",
        help="mixtures per condition (default 100): 900 mixtures in all (extraction per "
        "class, absent cues per class, 1-3 sources), each one or two streamed passes plus "
        "metrics, and as many 6-s channel-consistency scenes: 100 took 456 s on one idle "
        "core of a 2-core VM",
    )
    evaluate.add_argument("--seed", type=int, help="seed of the mixture simulator (default 7)")
    evaluate.add_argument(
        "--backend",
        default="onnxruntime",
        metavar="NAME",
        help="streaming backend: onnxruntime (default), torch, auto or a plugin's",
    )
    evaluate.add_argument(
        "--threads", type=int, default=1, help="CPU threads for the backend (default 1)"
    )
    evaluate.add_argument(
        "--seconds",
        type=float,
        metavar="S",
        help="length of each mixture in seconds (default 3 for the split, 4 for the scenes)",
    )
    evaluate.add_argument(
        "--validation",
        choices=("both", "split", "scenes"),
        default="both",
        help="which held-out mixtures: the split's, the user scenes, or both side by side "
        "(default both; each takes about as long as the other)",
    )
    evaluate.add_argument(
        "--out",
        metavar="JSON",
        help=f"results file (default: quality.json in a new {OUT_PREFIX}-DATE-TIME folder "
        "here; benchmarks/results/quality.json refreshes the committed results); the "
        "Markdown table is written beside it with the suffix .md",
    )
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    evaluate.set_defaults(run=cli_command(run_evaluate))

    calibrate = commands.add_parser(
        "calibrate",
        help="fit a checkpoint's source-count thresholds and label offsets; write a copy",
        description="Streams mixtures of 1 to max_sources sources drawn from the corpus's "
        "training split (never the validation split that rtsep evaluate scores), fits the "
        "EDA stopping threshold of each slot (count accuracy) and an offset per label for "
        "naming attractors (class-balanced accuracy), and writes the checkpoint with the "
        "fitted rules in its metadata. Weights are unchanged.",
    )
    calibrate.add_argument(
        "--corpus",
        metavar="DIR",
        help=f"corpus folder holding manifest.csv (default: ${CORPUS_ENV}, else {DEFAULT_CORPUS})",
    )
    add_model_options(calibrate)
    calibrate.add_argument("--out", required=True, metavar="PT", help="calibrated checkpoint")
    calibrate.add_argument(
        "--mixtures",
        type=int,
        metavar="N",
        help="mixtures per source count (default 100; about 0.1 s each on an idle core)",
    )
    calibrate.add_argument("--seed", type=int, help="seed of the mixture simulator (default 11)")
    calibrate.add_argument(
        "--backend", default="onnxruntime", metavar="NAME", help="streaming backend"
    )
    calibrate.add_argument(
        "--threads", type=int, default=1, help="CPU threads for the backend (default 1)"
    )
    calibrate.add_argument(
        "--seconds", type=float, metavar="S", help="length of each mixture in seconds (default 3)"
    )
    calibrate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    calibrate.set_defaults(run=cli_command(run_calibrate))


def corpus_folder(given: str | None) -> Path:
    """``--corpus``, else ``$RTSEP_CORPUS``, else ``../shared/corpus``; checked to be a folder
    before the model loads (its manifest is checked by :func:`rtsep.evaluate.evaluate_quality`)."""
    folder = Path(given or os.environ.get(CORPUS_ENV) or DEFAULT_CORPUS)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"corpus folder not found: {folder} (give --corpus DIR or set {CORPUS_ENV})"
        )
    return folder


def check_counts(args: argparse.Namespace) -> None:
    """``ValueError`` naming the flag for a count or duration that cannot be run."""
    for flag, value in (("--threads", args.threads), ("--mixtures", args.mixtures)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} {value}: give a whole number, 1 or more")
    if args.seconds is not None and not args.seconds > 0:
        raise ValueError(f"--seconds {args.seconds:g}: give a positive duration, e.g. 3")


def mixture_options(args: argparse.Namespace) -> dict:
    """The keyword arguments that ``evaluate`` and ``calibrate`` share, from their flags; the
    library's defaults where a flag was not given."""
    given = {"mixtures": args.mixtures, "seed": args.seed, "segment_seconds": args.seconds}
    return {
        "backend": args.backend,
        "threads": args.threads,
        "progress": not args.no_progress,
        **{name: value for name, value in given.items() if value is not None},
    }


def run_evaluate(args: argparse.Namespace) -> int:
    check_counts(args)
    corpus = corpus_folder(args.corpus)
    from ..bench.machine import dated_folder
    from ..evaluate import evaluate_quality, render_markdown, write_results
    from ..evaluate.quality import VALIDATIONS
    from ..evaluate.report import combine_validations

    config = effective_config(args)
    model = load_configured_model(config)
    print(untrained_warning(model), end="", file=sys.stderr)
    checkpoint = config["model"]["path"]
    validations = VALIDATIONS if args.validation == "both" else (args.validation,)
    by_validation = {
        validation: evaluate_quality(
            model,
            corpus,
            checkpoint=str(Path(checkpoint).resolve()) if checkpoint else None,
            validation=validation,
            **mixture_options(args),
        )
        for validation in validations
    }
    results = (
        combine_validations(by_validation)
        if len(validations) > 1
        else by_validation[validations[0]]
    )
    out = args.out or dated_folder(OUT_PREFIX) / "quality.json"
    json_path, markdown_path = write_results(results, out)
    print(render_markdown(results), end="")
    seconds = sum(r["wall_time_s"] for r in by_validation.values())
    print(f"wrote {json_path} and {markdown_path} ({seconds:g} s)")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    check_counts(args)
    corpus = corpus_folder(args.corpus)
    from ..evaluate.calibration import calibrate_checkpoint, collect_decisions, fit_calibration

    model = load_configured_model(effective_config(args))
    print(untrained_warning(model), end="", file=sys.stderr)
    data = collect_decisions(model, corpus, **mixture_options(args))
    calibration, report = fit_calibration(data, len(model.labels))
    out = calibrate_checkpoint(model, args.out, calibration, report)
    print(json.dumps(calibration.to_metadata() | {"fit": report}, indent=2))
    print(f"wrote {out}")
    return 0
