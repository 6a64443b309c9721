"""``rtsep batch``: many files, one folder each, in parallel processes or on a Ray cluster."""

from __future__ import annotations

import argparse

from .common import add_model_options, cli_command, effective_config
from .separate_cmd import add_cue_options


def register(commands: argparse._SubParsersAction) -> None:
    batch = commands.add_parser(
        "batch",
        help="separate many files (folders searched recursively), one output folder each",
        description="Each input gets DIR/<stem>/ with exactly what 'rtsep separate' writes "
        "(stems, report.json); a stem already taken gets -2, -3, ... in sorted path order. "
        "DIR/batch.json lists every input as done, skipped (already complete) or failed, with "
        "its error. A failing file never stops the others; running again redoes only what is "
        "not complete.",
    )
    batch.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR", help="audio files or folders")
    batch.add_argument("--out", metavar="DIR", required=True, help="output folder")
    add_cue_options(batch)
    batch.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes on this machine, one model thread each (default 1); with --ray "
        "local, the CPUs of the local cluster",
    )
    batch.add_argument(
        "--streams",
        type=int,
        default=1,
        metavar="B",
        help="files each worker separates together, one batched torch step per hop for all "
        "B (default 1: one file at a time, the configured backend); same outputs",
    )
    batch.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run the files as Ray tasks: 'local' (the default when no address is given) "
        "starts a local cluster, an ADDRESS joins one (needs: pip install 'rtsep[ray]')",
    )
    add_model_options(batch)
    batch.set_defaults(run=run_batch_command)


@cli_command
def run_batch_command(args: argparse.Namespace) -> int:
    from ..batch import run_batch

    if args.workers < 1:
        raise ValueError(f"--workers takes a whole number >= 1, not {args.workers}")
    if args.streams < 1:
        raise ValueError(f"--streams takes a whole number >= 1, not {args.streams}")
    config = effective_config(args)
    record = run_batch(
        args.inputs,
        args.out,
        config,
        cues=args.cues or (),
        mode=args.mode,
        workers=args.workers,
        ray_address=args.ray,
        streams=args.streams,
    )
    print(
        f"{record['done']} done, {record['skipped']} skipped (complete), {record['failed']}"
        f" failed in {record['wall_seconds']:.1f} s; {args.out}/batch.json"
    )
    return 1 if record["failed"] else 0
