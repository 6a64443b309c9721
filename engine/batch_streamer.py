"""Many independent streams stepped together: one batched model call per hop for all of them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..model import STATE_NAMES, Model
from .cuda_graph import CudaGraphHop
from .streamer import HopAlignment


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
        cuda_graphs: step each hop by replaying a CUDA graph captured at the first hop
            at start-up (:mod:`rtsep.engine.cuda_graph`) instead of eagerly; needs the model
            on CUDA (``ValueError`` otherwise). Untested on a device so far.
    """

    def __init__(
        self,
        model: Model,
        cues: Sequence[Sequence[str] | None],
        threads: int | None = 1,
        cuda_graphs: bool = False,
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
        lag = model.config.window_samples - model.hop_samples
        self._alignment = HopAlignment(self._hop, lag, (self.streams,))
        self._graph: CudaGraphHop | None = None
        if cuda_graphs:
            with torch.inference_mode():
                self._graph = CudaGraphHop(model.network, self._state, self._hop_queries)

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency in samples at the model rate (the STFT window)."""
        return self.model.latency_samples

    def process(self, blocks: np.ndarray) -> np.ndarray:
        """``blocks float32 [B, samples]`` → ``float32 [B, N, ready]``."""
        blocks = np.asarray(blocks, dtype=np.float32)
        if blocks.ndim != 2 or blocks.shape[0] != self.streams:
            raise ValueError(f"blocks must be [{self.streams}, samples], got {blocks.shape}")
        return self._run(self._alignment.whole_hops(blocks))

    def flush(self) -> np.ndarray:
        """Finish every stream: zero-pad the last hop plus one, return the rest."""
        return self._alignment.trim(self._run(self._alignment.last_hops()))

    @torch.inference_mode()
    def _run(self, samples: np.ndarray) -> np.ndarray:
        if samples.shape[1] == 0:
            return np.zeros((self.streams, self.outputs, 0), np.float32)
        chunk = torch.from_numpy(samples).to(self.model.device)
        pieces = [
            self._step(chunk[:, start : start + self._hop])
            for start in range(0, chunk.shape[1], self._hop)
        ]
        return self._alignment.align(torch.cat(pieces, dim=-1).cpu().numpy())

    def _step(self, hop: torch.Tensor) -> torch.Tensor:
        """``hop [B, hop]`` → ``output [B, N, hop]``; the state moves on by one hop."""
        if self._graph is not None:  # its own state, advanced in place by every replay
            return self._graph.step(hop)[0].clone()
        values = tuple(self._state[name] for name in STATE_NAMES)
        queries = self._hop_queries(self._state)
        out, _, _, *values = self.model.network.step_hop(hop, queries, *values)
        self._state = dict(zip(STATE_NAMES, values))
        return out

    def _hop_queries(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, N, E]``: the cue queries, and for EDA streams the attractors held now."""
        if not self._any_eda:
            return self._queries
        held = self.model.network.held_attractors(state)
        return torch.where(self._eda[:, None, None], held, self._queries)
