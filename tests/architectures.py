"""One model per network architecture, for the contract tests that every architecture keeps."""

from __future__ import annotations

import torch

import rtsep
from rtsep.model import ARCHITECTURES, ModelConfig, build_network

__all__ = ["ARCHITECTURES", "model_of"]


def model_of(architecture: str) -> rtsep.Model:
    """The shipped model when it has ``architecture``, else a randomly initialised one (seed 0):
    the streaming and export contracts do not depend on the weights."""
    shipped = rtsep.load_model()
    if shipped.config.architecture == architecture:
        return shipped
    torch.manual_seed(0)
    return rtsep.Model(build_network(ModelConfig(architecture=architecture)))
