"""One model per network variant, for the contract tests that every variant keeps.

A variant is an architecture name, optionally with ``+presence`` (a cue-presence gate, with
random gate weights so that it is not a constant gain)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import rtsep
from rtsep.model import ARCHITECTURES, ModelConfig, build_network

VARIANTS = (*ARCHITECTURES, "lstm+presence")

#: VARIANTS for the contract tests that cost seconds per variant (every block plan, 200 chunks
#: through ONNX): the dual-path network (model v2, not the shipped architecture, the slowest
#: per hop) runs them in the slow group (make test-slow, CI); its cheaper contract tests stay
#: in make test. Use as ``@pytest.mark.parametrize("model", COSTLY, indirect=True)``.
COSTLY = [pytest.param(v, marks=pytest.mark.slow) if v == "dualpath" else v for v in VARIANTS]

__all__ = ["COSTLY", "VARIANTS", "model_of"]


def model_of(variant: str) -> rtsep.Model:
    """The shipped weights where the variant has the shipped architecture, else a randomly
    initialised network (seed 0): the streaming and export contracts do not depend on them."""
    architecture, _, extra = variant.partition("+")
    shipped = rtsep.load_model()
    same = shipped.config.architecture == architecture
    if same and not extra:
        return shipped
    torch.manual_seed(0)
    config = shipped.config if same else ModelConfig(architecture=architecture)
    network = build_network(dataclasses.replace(config, presence_gate=extra == "presence"))
    if same:
        network.load_state_dict(shipped.network.state_dict(), strict=False)
    for name, parameter in network.named_parameters():
        if ".presence.logit" in name:
            torch.nn.init.normal_(parameter, std=0.5)
    return rtsep.Model(network)
