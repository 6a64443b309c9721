"""Training: settings, losses and the two-stage loop."""

from .settings import TrainSettings
from .trainer import Trainer

__all__ = ["TrainSettings", "Trainer"]
