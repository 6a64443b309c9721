"""The causal unified separation + extraction model."""

from .config import ModelConfig
from .model import Model, Separation, UnknownCueError, load_model
from .network import STATE_NAMES, NetworkOutput, SeparationNetwork

__all__ = [
    "STATE_NAMES",
    "Model",
    "ModelConfig",
    "NetworkOutput",
    "Separation",
    "SeparationNetwork",
    "UnknownCueError",
    "load_model",
]
