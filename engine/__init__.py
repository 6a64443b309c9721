"""The streaming runtime: backends, the synchronous Streamer, and the live engine."""

from .backends import (
    Backend,
    OnnxBackend,
    StatefulBackend,
    TorchBackend,
    make_backend,
    resolve_backend_name,
)
from .batch_streamer import BatchStreamer
from .streamer import Streamer

__all__ = [
    "Backend",
    "BatchStreamer",
    "OnnxBackend",
    "StatefulBackend",
    "Streamer",
    "TorchBackend",
    "make_backend",
    "resolve_backend_name",
]
