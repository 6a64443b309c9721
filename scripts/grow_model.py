"""Deepen a trained model v1 ("lstm") without changing what it computes, to train on from there.

    python scripts/grow_model.py --model shipped --separator-layers 3 --extractor-layers 2 \
        --out runs/grown/init.pt
    rtsep train --settings rtsep/train/v1_grown.toml --init runs/grown/init.pt ...

Both LSTM stacks of v1 are pre-norm residual (``x = x + lstm(norm(x))``). A layer appended to a
stack starts with its cell-candidate gate at zero (weights and biases), so its cell state stays
0 and its output ``o * tanh(c)`` is exactly 0: the grown network computes what the old one did
(checked here on noise, streamed and whole-signal), while the gradient into that gate is not
zero, so the new layer learns from the first step. The other gates start as PyTorch
initialises them. The checkpoint keeps the old metadata and records the growth under
``"growth"``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from rtsep.model import Model, build_network, load_model

CELL_GATE = 2  # PyTorch's LSTM gate order: input, forget, cell candidate, output


def grown(model: Model, separator_layers: int, extractor_layers: int) -> Model:
    """A copy of ``model`` with its stacks deepened to the given numbers of layers."""
    config = model.config
    if config.architecture != "lstm":
        raise ValueError(f"only model v1 ('lstm') can be grown, not {config.architecture!r}")
    if separator_layers < config.separator_layers or extractor_layers < config.extractor_layers:
        raise ValueError("growing cannot remove layers")
    bigger = dataclasses.replace(
        config, separator_layers=separator_layers, extractor_layers=extractor_layers
    )
    torch.manual_seed(0)
    network = build_network(bigger)
    missing, unexpected = network.load_state_dict(model.network.state_dict(), strict=False)
    if unexpected:
        raise RuntimeError(f"weights with no place in the grown network: {unexpected}")
    with torch.no_grad():
        for stack in (network.separator.lstms, network.masks.lstms):
            for lstm in stack:
                if any(name.startswith(_prefix(network, lstm)) for name in missing):
                    _silence(lstm)
    metadata = dict(model.metadata)
    metadata["growth"] = [
        *model.metadata.get("growth", []),
        {
            "from": {
                "separator_layers": config.separator_layers,
                "extractor_layers": config.extractor_layers,
            },
            "to": {"separator_layers": separator_layers, "extractor_layers": extractor_layers},
        },
    ]
    return Model(network, metadata)


def _prefix(network: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(name for name, m in network.named_modules() if m is module) + "."


def _silence(lstm: torch.nn.LSTM) -> None:
    """Zero the cell-candidate gate: the layer's cell state and output stay exactly 0."""
    size = lstm.hidden_size
    rows = slice(CELL_GATE * size, (CELL_GATE + 1) * size)
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        getattr(lstm, name)[rows] = 0.0


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
