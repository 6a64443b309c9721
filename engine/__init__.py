"""The streaming runtime: backends, the synchronous Streamer, and the live engine."""

from .backends import Backend, OnnxBackend, TorchBackend, make_backend, resolve_backend_name
from .streamer import Streamer

__all__ = [
    "Backend",
    "OnnxBackend",
    "Streamer",
    "TorchBackend",
    "make_backend",
    "resolve_backend_name",
]
