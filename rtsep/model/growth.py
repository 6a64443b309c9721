"""Growing a trained model without changing what it separates.

Deepening model v1 ("lstm"):

Both LSTM stacks of v1 are pre-norm residual (``x = x + lstm(norm(x))``). A layer appended to a
stack starts with its cell-candidate gate at zero (weights and biases), so its cell state stays
0 and its output ``o * tanh(c)`` is exactly 0: the grown network computes what the old one did,
streamed or whole-signal, while the gradient into that gate is not zero, so the new layer
learns from the first training step. The other gates start as PyTorch initialises them.

Adding a cue-presence gate (either architecture, :mod:`rtsep.model.presence`): the gate starts
as a constant gain of ``INITIAL_GAIN`` on every output, so the SI-SNR of every output
is unchanged and its level drops by 0.06 dB.
"""

from __future__ import annotations

import dataclasses

import torch

from .architectures import build_network
from .model import Model
from .presence import INITIAL_GAIN

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


def with_presence_gate(model: Model) -> Model:
    """A copy of ``model`` with a cue-presence gate on its outputs, starting open."""
    if model.config.presence_gate:
        raise ValueError("the model already has a presence gate")
    torch.manual_seed(0)
    network = build_network(dataclasses.replace(model.config, presence_gate=True))
    missing, unexpected = network.load_state_dict(model.network.state_dict(), strict=False)
    if unexpected or not all(".presence." in name for name in missing):
        raise RuntimeError(f"weights that do not match: {unexpected or missing}")
    metadata = dict(model.metadata)
    metadata["growth"] = [
        *model.metadata.get("growth", []),
        {"presence_gate": {"initial_gain": INITIAL_GAIN}},
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
