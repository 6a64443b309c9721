"""Synchronous streaming separation: feed any amount of audio, get back what is ready."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..model import Model
from .backends import Backend, make_backend


class Streamer:
    """Separates a stream fed in blocks of any size, with the model's state carried across.

    ``process(block)`` accepts any number of samples and returns as many separated samples
    as are final at that point; ``flush()`` returns the rest. The returned audio is
    delay-compensated: concatenating every return value gives exactly the output of
    ``model.separate`` over the whole signal (same length, sample-aligned), whatever the
    block sizes. A sample is returned once the hop after the one holding it has arrived, so
    output lags input by at most ``latency_samples - 1`` samples.

    Args:
        model: the separation model (16 kHz mono).
        cues: cue strings (one output each), or ``None`` to output every EDA slot
            (``model.config.max_sources`` outputs; slots without a source stay near silent).
        backend: ``"torch"``, ``"onnxruntime"`` or ``"auto"``.
        threads: CPU threads the backend may use per chunk.
    """

    def __init__(
        self,
        model: Model,
        cues: Sequence[str] | None = None,
        backend: str | Backend = "torch",
        threads: int = 1,
    ) -> None:
        self.model = model
        self.backend = (
            make_backend(model, backend, threads) if isinstance(backend, str) else backend
        )
        self.cues = list(cues) if cues else None
        queries = model.cue_queries(self.cues).cpu().numpy() if self.cues else None
        self.backend.reset(queries)
        self._hop = model.hop_samples
        self._lag = model.config.window_samples - model.hop_samples  # raw stream lag
        self._pending = np.zeros(0, np.float32)  # input not yet a whole hop
        self._fed = 0  # input samples received
        self._raw = 0  # raw output samples produced
        self._emitted = 0  # aligned output samples produced

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency in samples at the model rate (the STFT window)."""
        return self.model.latency_samples

    @property
    def outputs(self) -> int:
        return self.backend.outputs

    def process(self, block: np.ndarray) -> np.ndarray:
        """``block float32 [samples]`` (any length, even 0) → ``float32 [outputs, ready]``."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self._fed += block.shape[0]
        signal = np.concatenate([self._pending, block]) if self._pending.size else block
        whole = signal.shape[0] - signal.shape[0] % self._hop
        self._pending = signal[whole:].copy()
        return self._run(signal[:whole])

    def flush(self) -> np.ndarray:
        """Finish the stream: zero-pad to complete the last hop plus one, return the rest.

        After ``flush`` the streamer has returned exactly as many samples as it was fed.
        """
        padding = np.zeros((-self._fed) % self._hop + self._hop, np.float32)
        tail = self._run(np.concatenate([self._pending, padding]))
        self._pending = np.zeros(0, np.float32)
        return tail[:, : tail.shape[1] - (self._emitted - self._fed)]

    def _run(self, samples: np.ndarray) -> np.ndarray:
        if samples.shape[0] == 0:
            return np.zeros((self.outputs, 0), np.float32)
        raw = self.backend.step(samples)
        skip = max(0, self._lag - self._raw)  # the first raw samples precede the input
        self._raw += raw.shape[1]
        self._emitted += raw.shape[1] - skip
        return raw[:, skip:]
