"""Package a trained checkpoint as the weights rtsep ships (rtsep/weights/rtsep_default.pt).

    python scripts/ship_weights.py runs/gpu2/best.pt \
        --evaluation benchmarks/results/quality.json --corpus ../shared/corpus \
        --lineage runs/v3:2000 runs/gpu1

The shipped file carries, besides the weights and the model config, everything the model card
(docs/model.md) states: the training settings, steps and wall time (from the run's log.jsonl),
the corpus sources trained on and held out, and the measured validation scores of
``rtsep evaluate`` on this very checkpoint. The weights are stored in float32 (about 2.6 MB).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rtsep.data import Corpus, split_entries, validation_sources
from rtsep.model import load_model
from rtsep.model.model import SHIPPED_WEIGHTS


def training_time_s(log_path: Path, until_step: int | None = None) -> float:
    """Wall time of a run in seconds up to ``until_step`` (default: its end): the sum over its
    sessions (each resume restarts the ``elapsed_s`` clock of log.jsonl, so a session ends
    where the clock next drops)."""
    total = last = 0.0
    with log_path.open() as handle:
        for line in handle:
            record = json.loads(line)
            elapsed = record.get("elapsed_s")
            if elapsed is None:
                continue
            if until_step is not None and record["step"] > until_step:
                break
            if elapsed < last:
                total += last
            last = elapsed
    return round(total + last, 1)


def run_summary(run_dir: Path, steps: int | None) -> dict:
    """Settings, steps and wall time of one run (up to ``steps``, default: all of it)."""
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    last_step = max(r["step"] for r in records if "elapsed_s" in r)
    return {
        "run": run_dir.name,
        "settings": json.loads((run_dir / "settings.json").read_text()),
        "steps": steps if steps is not None else last_step,
        "wall_time_s": training_time_s(run_dir / "log.jsonl", steps),
    }


def evaluation_summary(results: dict) -> dict:
    """The headline figures of an ``rtsep evaluate`` result (means in dB, accuracies 0-1)."""
    extraction = {
        label: {
            "label_cue_si_snri_db": scores["label_cue"]["si_snri_db"]["mean"],
            "text_cue_si_snri_db": scores["text_cue"]["si_snri_db"]["mean"],
            "oracle_irm_si_snri_db": scores["oracle_irm"]["si_snri_db"]["mean"],
            "mixtures": scores["mixtures"],
        }
        for label, scores in results["extraction"].items()
    }
    separation = {
        n: {
            "model_si_snri_db": scores["model"]["si_snri_db"]["mean"],
            "oracle_irm_si_snri_db": scores["oracle_irm"]["si_snri_db"]["mean"],
        }
        for n, scores in results["separation"].items()
    }
    return {
        "settings": results["settings"],
        "git_commit": results.get("git_commit"),
        "extraction": extraction,
        "separation": separation,
        "source_count_accuracy": results["source_count"]["accuracy"],
        "attractor_matching_accuracy": results["attractor_matching"]["accuracy"],
        **_newer_sections(results),
    }


def _newer_sections(results: dict) -> dict:
    """Headline figures of the sections that evaluations before session 6 lack."""
    sections = {}
    if "absent_cue" in results:
        sections["absent_cue_level_db"] = {
            label: row["level_db"]["mean"] for label, row in results["absent_cue"].items()
        }
    speech = results["extraction"].get("speech", {})
    if "label_minus_rnnoise_si_snri_db" in speech:
        sections["speech_label_minus_rnnoise_si_snri_db"] = speech[
            "label_minus_rnnoise_si_snri_db"
        ]["mean"]
    if "channel_consistency" in results:
        sections["channel_consistency"] = results["channel_consistency"]["all"]["consistency"]
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="model checkpoint of a run (best.pt)")
    parser.add_argument(
        "--evaluation", type=Path, required=True, help="rtsep evaluate JSON of that checkpoint"
    )
    parser.add_argument("--corpus", type=Path, required=True, help="corpus trained on")
    parser.add_argument(
        "--lineage",
        nargs="*",
        default=[],
        metavar="RUN[:STEPS]",
        help="earlier runs this one started from (each --init'ed from the next), oldest first,"
        " with the step whose weights were passed on",
    )
    parser.add_argument(
        "--continues",
        type=Path,
        metavar="WEIGHTS",
        help="a shipped weights file the run was --init'ed from: its recorded stages come first"
        " (e.g. the previous rtsep/weights/rtsep_default.pt, saved aside before overwriting)",
    )
    parser.add_argument("--out", type=Path, default=SHIPPED_WEIGHTS, help="shipped file")
    args = parser.parse_args()

    results = json.loads(args.evaluation.read_text())
    first = next(iter(results["validations"].values())) if "validations" in results else results
    evaluated = first["model"]["checkpoint"]
    if evaluated is None or Path(evaluated).resolve() != args.checkpoint.resolve():
        raise SystemExit(f"{args.evaluation} scores {evaluated}, not {args.checkpoint}")
    model = load_model(args.checkpoint)
    training = dict(model.metadata.get("training", {}))
    held_out = training.get("validation_sources") or sorted(validation_sources())
    corpus = Corpus(args.corpus)
    training["training_sources"] = sorted(
        {entry.source for entry in split_entries(corpus, "train", held_out)}
    )
    training["validation_sources"] = sorted(held_out)
    stages = []
    if args.continues:
        stages += load_model(args.continues).metadata["training"]["stages"]
    for item in args.lineage:
        folder, _, steps = item.partition(":")
        stages.append(run_summary(Path(folder), int(steps) if steps else None))
    stages.append(run_summary(args.checkpoint.parent, training.get("steps")))
    training["stages"] = stages
    training["total_steps"] = sum(stage["steps"] for stage in stages)
    training["wall_time_s"] = round(sum(stage["wall_time_s"] for stage in stages), 1)
    if "validations" in results:  # rtsep evaluate --validation both (the default)
        evaluation = {
            "validations": {
                name: evaluation_summary(scores) for name, scores in results["validations"].items()
            }
        }
    else:
        evaluation = evaluation_summary(results)
    metadata = {"training": training, "evaluation": evaluation}
    if "calibration" in model.metadata:  # rtsep calibrate's rules: the evaluation used them
        metadata["calibration"] = model.metadata["calibration"]
    if "growth" in model.metadata:  # how the network's shape came about (scripts/grow_model.py)
        metadata["growth"] = model.metadata["growth"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out, metadata)
    size_mb = args.out.stat().st_size / 1e6
    print(
        f"wrote {args.out} ({size_mb:.1f} MB, {training['total_steps']} steps in"
        f" {len(stages)} runs, {training['wall_time_s']:g} s of training)"
    )


if __name__ == "__main__":
    main()
