"""The network class of each architecture name (``ModelConfig.architecture``)."""

from __future__ import annotations

from .bandrnn import BandRnnNetwork
from .config import ModelConfig
from .dualpath import DualPathNetwork
from .network import SeparationNetwork, StreamingNetwork

NETWORKS: dict[str, type[StreamingNetwork]] = {
    "bandrnn": BandRnnNetwork,
    "dualpath": DualPathNetwork,
    "lstm": SeparationNetwork,
}


def build_network(config: ModelConfig) -> StreamingNetwork:
    """A randomly initialised network of ``config.architecture``."""
    return NETWORKS[config.architecture](config)
