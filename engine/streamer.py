"""Synchronous streaming separation: feed any amount of audio, get back what is ready."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..model import Model
from .backends import Backend, make_backend


class HopAlignment:
    """The delay bookkeeping of a stream stepped in whole hops, time on the last axis.

    :meth:`whole_hops` keeps what is not yet a whole hop and returns the rest; :meth:`align`
    drops the raw output that precedes the input (the first ``lag`` samples, ``window - hop``);
    :meth:`last_hops` is the kept input zero-padded to a whole hop plus one, and :meth:`trim`
    cuts what that padding produced, so that every sample fed comes out exactly once.

    Args:
        hop: samples per hop.
        lag: raw output samples before the first input sample.
        leading: shape of the axes before time (``()`` one stream, ``(B,)`` B streams).
    """

    def __init__(self, hop: int, lag: int, leading: tuple[int, ...] = ()) -> None:
        self.hop = hop
        self._lag = lag
        self._pending = np.zeros((*leading, 0), np.float32)  # input not yet a whole hop
        self._fed = 0  # input samples received
        self._raw = 0  # raw output samples produced
        self._emitted = 0  # aligned output samples produced

    def whole_hops(self, block: np.ndarray) -> np.ndarray:
        """``block [..., samples]`` (any length) → the whole hops ready now ``[..., k * hop]``."""
        self._fed += block.shape[-1]
        signal = np.concatenate([self._pending, block], -1) if self._pending.size else block
        whole = signal.shape[-1] - signal.shape[-1] % self.hop
        self._pending = signal[..., whole:].copy()
        return signal[..., :whole]

    def last_hops(self) -> np.ndarray:
        """The kept input zero-padded to complete the last hop plus one (to flush)."""
        size = (-self._fed) % self.hop + self.hop
        padding = np.zeros((*self._pending.shape[:-1], size), np.float32)
        tail = np.concatenate([self._pending, padding], -1)
        self._pending = self._pending[..., :0]
        return tail

    def align(self, raw: np.ndarray) -> np.ndarray:
        """Raw output ``[..., k * hop]`` → the part aligned with the input."""
        skip = max(0, self._lag - self._raw)  # the first raw samples precede the input
        self._raw += raw.shape[-1]
        self._emitted += raw.shape[-1] - skip
        return raw[..., skip:]

    def trim(self, tail: np.ndarray) -> np.ndarray:
        """The aligned output of :meth:`last_hops` without what the padding produced."""
        return tail[..., : tail.shape[-1] - (self._emitted - self._fed)]


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
        lag = model.config.window_samples - model.hop_samples  # raw stream lag
        self._alignment = HopAlignment(model.hop_samples, lag)

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
        return self._run(self._alignment.whole_hops(block))

    def flush(self) -> np.ndarray:
        """Finish the stream: zero-pad to complete the last hop plus one, return the rest.

        After ``flush`` the streamer has returned exactly as many samples as it was fed.
        """
        return self._alignment.trim(self._run(self._alignment.last_hops()))

    def _run(self, samples: np.ndarray) -> np.ndarray:
        if samples.shape[0] == 0:
            return np.zeros((self.outputs, 0), np.float32)
        return self._alignment.align(self.backend.step(samples).audio)
