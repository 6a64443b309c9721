"""The causal unified separation + extraction model."""

from .architectures import build_network
from .config import ARCHITECTURES, ModelConfig
from .model import Model, Separation, UnknownCueError, load_model
from .network import STATE_NAMES, NetworkOutput, SeparationNetwork, StreamingNetwork

__all__ = [
    "ARCHITECTURES",
    "STATE_NAMES",
    "Model",
    "ModelConfig",
    "NetworkOutput",
    "Separation",
    "SeparationNetwork",
    "StreamingNetwork",
    "UnknownCueError",
    "build_network",
    "load_model",
]
