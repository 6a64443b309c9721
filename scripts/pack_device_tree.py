"""Prepare ``.device/`` for a session lent a GPU machine (see scripts/device_session.sh).

    python scripts/pack_device_tree.py --corpus ../shared/corpus --run RUN_DIR [--megabytes 40]
        [--out .device] [--no-wheels]

The device machine gets only the checkout, capped at 64 MiB, and has no network: ``../shared``
does not travel and packages missing there must come as wheels. This writes, in the ignored
folder ``.device/`` of the checkout (``--out``; tests pack elsewhere):

- ``corpus/``: a subset of the corpus with its own ``manifest.csv``: every source of the
  validation split in full is not needed there (the quick validation uses 64 mixtures), so
  training sources get up to ``--megabytes`` in all, shared equally per source, files chosen
  by a fixed hash of their path; FLAC files are re-encoded as 32 kbit/s Ogg/Opus (as the
  corpus's new files are); validation sources get a tenth of that budget;
- ``phrasings.pt``: the trainer's cached sentence embeddings of the training phrasings (from
  ``RUN/phrasings.pt``), so that training there needs no text encoder (its 88 MB package
  does not fit);
- ``whl/``: wheels of the packages the device image lacks (soundfile, soxr, pyzmq), for its
  Python 3.12 (``pip download``, as the device tool's README says).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import soundfile as sf

from rtsep.data import validation_sources

DEVICE = Path(".device")
WHEELS = ("soundfile", "soxr", "pyzmq")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def pick_files(rows: list[dict], budget_bytes: float, root: Path) -> list[dict]:
    """Rows of one source, in hash order, until their stored size reaches the budget."""
    ordered = sorted(rows, key=lambda r: hashlib.sha1(r["path"].encode()).hexdigest())
    chosen, used = [], 0.0
    for row in ordered:
        size = (root / row["path"]).stat().st_size
        if row["path"].endswith(".flac"):
            size = float(row["duration_s"]) * 32000 / 8  # what 32 kbit/s Opus will take
        if used + size > budget_bytes and chosen:
            break
        chosen.append(row)
        used += size
    return chosen


def copy_audio(row: dict, root: Path, target: Path) -> str:
    """Copy (Opus) or re-encode (FLAC → Opus) one file; returns its new relative path."""
    source = root / row["path"]
    relative = Path(row["path"]).with_suffix(".opus")
    destination = target / relative
    destination.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".opus":
        shutil.copyfile(source, destination)
    else:
        audio, rate = sf.read(source, dtype="float32")
        sf.write(destination, audio, rate, format="OGG", subtype="OPUS", bitrate_mode="VARIABLE")
    return str(relative)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="corpus folder")
    parser.add_argument("--run", type=Path, required=True, help="a run folder with phrasings.pt")
    parser.add_argument("--megabytes", type=float, default=40.0, help="corpus subset budget")
    parser.add_argument("--no-wheels", action="store_true", help="skip the pip download")
    parser.add_argument("--out", type=Path, default=DEVICE, help="the tree (default .device)")
    parser.add_argument(
        "--validation-sources",
        help="comma-separated held-out sources (default: the recorded split's)",
    )
    args = parser.parse_args()
    tree = args.out
    target = tree / "corpus"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with (args.corpus / "manifest.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames
        rows = list(reader)
    held_out = (
        set(args.validation_sources.split(",")) if args.validation_sources else validation_sources()
    )
    by_source: dict[tuple[str, bool], list[dict]] = defaultdict(list)
    for row in rows:
        by_source[(row["source"], row["source"] in held_out)].append(row)
    train_sources = sum(1 for _, held in by_source if not held)
    valid_sources = len(by_source) - train_sources
    if not train_sources or not valid_sources:
        sys.exit(f"{args.corpus}: needs training and held-out sources ({sorted(held_out)})")
    budget = args.megabytes * 1e6
    kept = []
    for (_, held), source_rows in sorted(by_source.items()):
        share = 0.1 * budget / valid_sources if held else 0.9 * budget / train_sources
        for row in pick_files(source_rows, share, args.corpus):
            kept.append({**row, "path": copy_audio(row, args.corpus, target)})
    with (target / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    shutil.copyfile(args.run / "phrasings.pt", tree / "phrasings.pt")
    if not args.no_wheels:
        platforms = [flag for p in PLATFORMS for flag in ("--platform", p)]
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
            + ["--python-version", "3.12", "--implementation", "cp", *platforms]
            + ["-d", str(tree / "whl"), *WHEELS],
            check=True,
        )
    size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file()) / 1e6
    minutes = sum(float(r["duration_s"]) for r in kept) / 60
    print(f"{tree}: {len(kept)} files, {minutes:.0f} min of audio, {size:.1f} MB in all")


if __name__ == "__main__":
    main()
