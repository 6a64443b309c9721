"""``rtsep train``: the two-stage training run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_debug_option, cli_command


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train the model on a corpus (resumes a run folder)",
        description="Two-stage training (separation + EDA, then joint separation + extraction). "
        "Re-running with the same run folder resumes from its last checkpoint.",
    )
    train.add_argument(
        "--settings", metavar="TOML", help="training settings file (see rtsep/train/settings.py)"
    )
    train.add_argument("--corpus", help="corpus folder with manifest.csv")
    train.add_argument("--run-dir", help="run folder (checkpoints, log.jsonl, curves.png)")
    train.add_argument(
        "--init", help="start from a checkpoint, or 'shipped' for the packaged weights"
    )
    train.add_argument("--stage1-steps", type=int)
    train.add_argument("--stage2-steps", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--threads", type=int, help="torch CPU threads")
    train.add_argument("--device", help="cpu, cuda, or auto (cuda when available); default cpu")
    train.add_argument(
        "--loader-workers", type=int, metavar="N", help="processes simulating mixtures"
    )
    train.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="stop after this wall time, validated and checkpointed (resume later)",
    )
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any training setting (rtsep/train/settings.py), VALUE in TOML syntax, e.g."
        " --set train_time_limit_s=1800 --set 'gain_range_db=[-5.0, 5.0]'; repeatable, wins"
        " over the settings file and the options above",
    )
    train.add_argument(
        "--export",
        type=Path,
        metavar="PT",
        help="do not train: save the run's weights as they stand in its last checkpoint (the"
        " average when the run keeps one), quick-validated, as a model file PT",
    )
    train.add_argument(
        "--validate",
        action="store_true",
        help="do not train: print the quick validation (one JSON line) of the weights the run"
        " would go on from (its last checkpoint, else --init; the average when kept); the run"
        " folder is created if it does not exist",
    )
    add_debug_option(train)
    train.set_defaults(run=cli_command(run_train))


def run_train(args: argparse.Namespace) -> int:
    from ..train import Trainer, TrainSettings

    options = dict(
        corpus=args.corpus,
        run_dir=args.run_dir,
        init=args.init,
        stage1_steps=args.stage1_steps,
        stage2_steps=args.stage2_steps,
        batch_size=args.batch_size,
        threads=args.threads,
        device=args.device,
        loader_workers=args.loader_workers,
        time_limit_s=args.time_limit,
    )
    settings = TrainSettings.load(args.settings, **(options | parse_settings(args.set)))
    manifest = Path(settings.corpus) / "manifest.csv"
    if not manifest.is_file():  # before the run folder is made: no half-started run
        raise FileNotFoundError(f"no corpus manifest at {manifest} (give --corpus DIR)")
    if args.export:
        if not (Path(settings.run_dir) / "last.pt").is_file():
            raise FileNotFoundError(f"no last.pt in run folder {settings.run_dir} to export")
        trainer = Trainer(settings)
        scores = trainer.export_model(args.export)
        print(f"wrote {args.export}: step {trainer.step}, quick validation {scores}")
        return 0
    if args.validate:
        trainer = Trainer(settings)
        print(json.dumps({"step": trainer.step, **trainer.quick_validation()}))
        return 0
    Trainer(settings).run()
    print(f"done: best checkpoint in {settings.run_dir}/best.pt")
    return 0


def parse_settings(assignments: list[str]) -> dict:
    """``["KEY=VALUE", ...]`` (VALUE in TOML syntax) as a dict; ValueError naming a malformed
    one."""
    import tomllib

    values = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError("no KEY=")
            values[key.strip()] = tomllib.loads(f"value = {value}")["value"]
        except (ValueError, tomllib.TOMLDecodeError) as error:
            raise ValueError(
                f"--set {assignment!r}: expected KEY=VALUE with a TOML value ({error})"
            ) from error
    return values
