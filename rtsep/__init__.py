"""rtsep: real-time streaming sound separation and target sound extraction."""

from .model import Model, Separation, load_model

__version__ = "0.1.0"

__all__ = ["Model", "Separation", "__version__", "load_model"]
