"""Grow a trained model without changing what it separates, to train on from there.

    python scripts/grow_model.py --model shipped --separator-layers 3 --extractor-layers 2 \
        --out runs/grown/init.pt
    python scripts/grow_model.py --model shipped --presence-gate --out runs/gated/init.pt
    rtsep train --settings rtsep/train/v1_grown.toml --init runs/grown/init.pt ...

How the new pieces start silent or open: :mod:`rtsep.model.growth`. The script refuses to
write a grown network whose whole-signal outputs (EDA and a label cue, on noise) differ from
the old one's (times the gate's initial gain, with ``--presence-gate``) by more than 1e-5. The
checkpoint keeps the old metadata and records the growth under ``"growth"``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rtsep.model import Model, load_model
from rtsep.model.growth import grown, with_presence_gate
from rtsep.model.presence import INITIAL_GAIN


def check_same_outputs(old: Model, new: Model, gain: float = 1.0, seconds: float = 2.0) -> float:
    """Largest absolute difference between the new whole-signal outputs and ``gain`` times the
    old ones (EDA and one cue), on noise."""
    torch.manual_seed(1)
    hops = int(seconds * old.sample_rate) // old.hop_samples
    mixture = 0.1 * torch.randn(1, hops * old.hop_samples)
    queries = old.cue_queries(["speech"]).unsqueeze(0)
    worst = 0.0
    with torch.no_grad():
        for q in (None, queries):
            a, b = gain * old.network(mixture, q).sources, new.network(mixture, q).sources
            worst = max(worst, float((a - b).abs().max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="shipped", help="checkpoint, or 'shipped'")
    parser.add_argument("--separator-layers", type=int, help="default: as the model has")
    parser.add_argument("--extractor-layers", type=int, help="default: as the model has")
    parser.add_argument(
        "--presence-gate", action="store_true", help="add a cue-presence gate to the outputs"
    )
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    old = load_model(None if args.model == "shipped" else args.model)
    new, gain = old, 1.0
    if args.separator_layers or args.extractor_layers:
        new = grown(
            new,
            args.separator_layers or old.config.separator_layers,
            args.extractor_layers or old.config.extractor_layers,
        )
    if args.presence_gate:
        new, gain = with_presence_gate(new), INITIAL_GAIN
    if new is old:
        parser.error("nothing to grow: give layers or --presence-gate")
    difference = check_same_outputs(old, new, gain)
    if difference > 1e-5:
        raise SystemExit(f"grown network differs from the old one by {difference:.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new.save(args.out)
    parameters = sum(p.numel() for p in new.network.parameters())
    print(f"wrote {args.out}: {parameters} parameters, outputs within {difference:.1e} of the old")


if __name__ == "__main__":
    main()
