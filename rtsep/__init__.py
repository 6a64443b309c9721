"""rtsep: real-time streaming sound separation and target sound extraction.

The model is imported on first use (``rtsep.load_model``, ``rtsep.Model``): importing the
package, or any light part of it (the control client ``rtsep ctl``, the bridges, the
configuration), does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Model", "Separation", "__version__", "load_model"]

_FROM_MODEL = ("Model", "Separation", "load_model")

if TYPE_CHECKING:
    from .model import Model, Separation, load_model


def __getattr__(name: str) -> Any:
    """``rtsep.Model``, ``rtsep.Separation`` and ``rtsep.load_model``, imported on first use."""
    if name in _FROM_MODEL:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'rtsep' has no attribute {name!r}")
