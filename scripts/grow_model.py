"""Deepen a trained model v1 ("lstm") without changing what it computes, to train on from there.

    python scripts/grow_model.py --model shipped --separator-layers 3 --extractor-layers 2 \
        --out runs/grown/init.pt
    rtsep train --settings rtsep/train/v1_grown.toml --init runs/grown/init.pt ...

How the new layers start silent: :mod:`rtsep.model.growth`. The script refuses to write a
grown network whose whole-signal outputs (EDA and a label cue, on noise) differ from the old
one's by more than 1e-5. The checkpoint keeps the old metadata and records the growth under
``"growth"``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rtsep.model import Model, load_model
from rtsep.model.growth import grown


def check_same_outputs(old: Model, new: Model, seconds: float = 2.0) -> float:
    """Largest absolute difference of the whole-signal outputs (EDA and one cue) on noise."""
    torch.manual_seed(1)
    hops = int(seconds * old.sample_rate) // old.hop_samples
    mixture = 0.1 * torch.randn(1, hops * old.hop_samples)
    queries = old.cue_queries(["speech"]).unsqueeze(0)
    worst = 0.0
    with torch.no_grad():
        for q in (None, queries):
            a, b = old.network(mixture, q).sources, new.network(mixture, q).sources
            worst = max(worst, float((a - b).abs().max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="shipped", help="checkpoint, or 'shipped'")
    parser.add_argument("--separator-layers", type=int, required=True)
    parser.add_argument("--extractor-layers", type=int, required=True)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    old = load_model(None if args.model == "shipped" else args.model)
    new = grown(old, args.separator_layers, args.extractor_layers)
    difference = check_same_outputs(old, new)
    if difference > 1e-5:
        raise SystemExit(f"grown network differs from the old one by {difference:.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new.save(args.out)
    parameters = sum(p.numel() for p in new.network.parameters())
    print(f"wrote {args.out}: {parameters} parameters, outputs within {difference:.1e} of the old")


if __name__ == "__main__":
    main()
