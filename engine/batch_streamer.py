"""Many independent streams stepped together: one batched model call per hop for all of them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..model import STATE_NAMES, Model


class BatchStreamer:
    """``B`` streams separated in lock-step, each with its own cues or the EDA attractors.

    The contract of :class:`~rtsep.engine.Streamer`, per stream: ``process(blocks)`` takes
    ``float32 [B, samples]`` (the same number of new samples for every stream, any number) and
    returns ``float32 [B, N, ready]``; ``flush()`` returns the rest, after which every stream
    has returned exactly as many samples as it was fed. Stream ``b``'s output equals that of
    ``Streamer(model, cues[b])`` fed the same samples (``tests/test_batch_streamer.py``).

    Every stream has ``N`` outputs: ``N = len(cues[b])`` for streams with cues and
    ``model.config.max_sources`` for EDA streams (``cues[b]`` is ``None``); mixing cue counts
    is an error. The model runs in torch on the model's device (CPU or CUDA), state batched
    ``[B, ...]`` as :meth:`~rtsep.model.StreamingNetwork.init_state` lays it out.

    Args:
        model: the separation model (16 kHz mono).
        cues: one entry per stream: a list of cue strings, or ``None`` for EDA.
        threads: torch CPU threads (``None`` leaves torch's setting alone).
    """

    def __init__(
        self, model: Model, cues: Sequence[Sequence[str] | None], threads: int | None = 1
    ) -> None:
        if not cues:
            raise ValueError("BatchStreamer needs at least one stream")
        if threads:
            torch.set_num_threads(threads)
        self.model = model
        counts = {len(c) if c else model.config.max_sources for c in cues}
        if len(counts) != 1:
            raise ValueError(f"every stream needs the same number of outputs, got {sorted(counts)}")
        self.outputs = counts.pop()
        self.streams = len(cues)
        device = model.device
        embedding = model.config.embedding_dim
        self._queries = torch.zeros(self.streams, self.outputs, embedding, device=device)
        self._eda = torch.tensor([not c for c in cues], device=device)
        self._any_eda = bool(self._eda.any())
        for b, stream_cues in enumerate(cues):
            if stream_cues:
                self._queries[b] = model.cue_queries(list(stream_cues)).to(device)
        self._state = model.network.init_state(self.streams, self.outputs)
        self._hop = model.hop_samples
        self._lag = model.config.window_samples - model.hop_samples
        self._pending = np.zeros((self.streams, 0), np.float32)
        self._fed = 0
        self._raw = 0
        self._emitted = 0

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency in samples at the model rate (the STFT window)."""
        return self.model.latency_samples

    def process(self, blocks: np.ndarray) -> np.ndarray:
        """``blocks float32 [B, samples]`` → ``float32 [B, N, ready]``."""
        blocks = np.asarray(blocks, dtype=np.float32)
        if blocks.ndim != 2 or blocks.shape[0] != self.streams:
            raise ValueError(f"blocks must be [{self.streams}, samples], got {blocks.shape}")
        self._fed += blocks.shape[1]
        signal = np.concatenate([self._pending, blocks], axis=1)
        whole = signal.shape[1] - signal.shape[1] % self._hop
        self._pending = signal[:, whole:].copy()
        return self._run(signal[:, :whole])

    def flush(self) -> np.ndarray:
        """Finish every stream: zero-pad the last hop plus one, return the rest."""
        padding = np.zeros((self.streams, (-self._fed) % self._hop + self._hop), np.float32)
        tail = self._run(np.concatenate([self._pending, padding], axis=1))
        self._pending = np.zeros((self.streams, 0), np.float32)
        return tail[..., : tail.shape[-1] - (self._emitted - self._fed)]

    @torch.inference_mode()
    def _run(self, samples: np.ndarray) -> np.ndarray:
        if samples.shape[1] == 0:
            return np.zeros((self.streams, self.outputs, 0), np.float32)
        network = self.model.network
        chunk = torch.from_numpy(samples).to(self.model.device)
        pieces = []
        for start in range(0, chunk.shape[1], self._hop):
            queries = self._queries
            if self._any_eda:
                held = network.held_attractors(self._state)
                queries = torch.where(self._eda[:, None, None], held, queries)
            values = tuple(self._state[name] for name in STATE_NAMES)
            out, *values = network.step_hop(chunk[:, start : start + self._hop], queries, *values)
            self._state = dict(zip(STATE_NAMES, values))
            pieces.append(out)
        raw = torch.cat(pieces, dim=-1).cpu().numpy()
        skip = max(0, self._lag - self._raw)
        self._raw += raw.shape[-1]
        self._emitted += raw.shape[-1] - skip
        return raw[..., skip:]
