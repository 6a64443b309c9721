"""One pass of a mixture through the streaming engine path, as a user hears it.

Every model output the evaluation scores comes from :class:`rtsep.engine.Streamer` on a
configurable backend (onnxruntime by default), not from the whole-signal forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..engine import Backend, Streamer, make_backend
from ..model import Model


@dataclass
class StreamPass:
    """What one streamed mixture produced.

    ``outputs float32 [n, time]`` are sample-aligned with the mixture (``n`` = number of cues,
    or ``max_sources`` EDA slots). ``existence [max_sources + 1]`` and ``attractors
    [max_sources + 1, E]`` are the EDA decoder's state at the last attractor grid point inside
    the mixture (read after the whole mixture was fed, before the zero padding of ``flush``).
    """

    outputs: np.ndarray
    existence: np.ndarray
    attractors: np.ndarray


class StreamRunner:
    """Streams mixtures through one reusable backend (``torch`` or ``onnxruntime``).

    Args:
        model: the separation model (16 kHz mono).
        backend: backend name (``torch``, ``onnxruntime`` or ``auto``).
        threads: CPU threads the backend may use per chunk.
    """

    def __init__(self, model: Model, backend: str = "onnxruntime", threads: int = 1) -> None:
        self.model = model
        self.backend: Backend = make_backend(model, backend, threads)

    def run(self, mixture: np.ndarray, cues: Sequence[str] | None = None) -> StreamPass:
        """Stream ``mixture float32 [time]`` with ``cues`` (``None``: separate by EDA)."""
        streamer = Streamer(self.model, cues, backend=self.backend)
        head = streamer.process(mixture)
        existence = np.array(streamer.backend.existence, dtype=np.float32)
        attractors = np.array(streamer.backend.attractors, dtype=np.float32)
        tail = streamer.flush()
        return StreamPass(np.concatenate([head, tail], axis=1), existence, attractors)
