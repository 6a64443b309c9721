"""A network whose gains the test sets: ideal ratio masks read from a table, frame by frame.

It keeps the streaming contract of every architecture (state in :data:`STATE_NAMES`, gains on
the mixture's spectrum at the end, EDA schedule), so the engine, its backends and the fullband
synthesis run it as they run a trained model; only its gains come from the sources instead of
from listening. Label cues are one-hot queries: output ``n`` takes the table rows of its cue.
"""

from __future__ import annotations

import numpy as np
import torch

import rtsep
from rtsep.engine.resampler import PolyphaseResampler
from rtsep.model import ModelConfig, StreamingNetwork
from rtsep.model.cue_network import CueEmbedder
from rtsep.model.eda import AttractorNetwork
from rtsep.model.stft import CausalStft

__all__ = ["OracleNetwork", "oracle_model"]


class OracleNetwork(StreamingNetwork):
    """Gains ``table [labels, frames, bins]``: frame ``t`` of label ``l`` (past the table's end,
    its last frame). The separator state counts frames; nothing else is learned or used."""

    def __init__(self, config: ModelConfig, table: torch.Tensor) -> None:
        super().__init__(config)
        labels = len(config.labels)
        self.eda = AttractorNetwork(config.feature_dim, config.embedding_dim, config.max_sources)
        self.cues = CueEmbedder(labels, config.text_dim, config.embedding_dim)
        with torch.no_grad():
            self.cues.labels.weight.copy_(torch.eye(labels, config.embedding_dim))
        self.register_buffer("table", table.float())

    def state_shapes(self, batch: int, outputs: int) -> dict[str, tuple[int, ...]]:
        return {
            "separator_hidden": (1, batch, 1),
            "separator_cell": (1, batch, 1),
            "extractor_hidden": (1, batch * outputs, 1),
            "extractor_cell": (1, batch * outputs, 1),
        }

    def shared_frames(self, real, imag, hidden, cell):
        frames = real.shape[1]
        count = hidden[0] + torch.arange(frames, device=real.device)  # [B, T]
        summary = real.new_zeros(real.shape[0], frames, self.config.feature_dim)
        return count, summary, hidden + frames, cell

    def output_gains(self, features, summary, queries, real, imag, hidden, cell):
        index = features.long().clamp(max=self.table.shape[1] - 1)  # [B, T]
        rows = self.table[:, index]  # [L, B, T, bins]
        weights = queries[..., : self.table.shape[0]]  # [B, Tq, N, L]
        gains = torch.einsum("bqnl,lbtf->bntf", weights, rows)
        return gains, gains * 0.0, None, hidden, cell


def oracle_model(sources: dict[str, np.ndarray], rate_hz: int) -> rtsep.Model:
    """A model whose cue ``label`` outputs the ideal ratio mask of ``sources[label]``
    (``float32 [frames]`` at ``rate_hz``; labels without a source get zeros), computed on what
    the engine's model hears: each source through the engine's input resampler, then the
    model's STFT."""
    config = ModelConfig()
    stft = CausalStft(config.window_samples, config.hop_samples)
    magnitudes = []
    for label in config.labels:
        signal = sources.get(label)
        if signal is None:
            signal = np.zeros_like(next(iter(sources.values())))
        heard = PolyphaseResampler(rate_hz, config.sample_rate_hz, 1).process(signal[None])[0]
        whole = heard[: heard.size - heard.size % config.hop_samples]
        history = np.zeros(stft.history_samples, np.float32)
        real, imag = stft.analyse(torch.from_numpy(np.concatenate([history, whole]))[None])
        magnitudes.append(torch.sqrt(real[0] ** 2 + imag[0] ** 2))
    magnitude = torch.stack(magnitudes)  # [L, T, bins]
    table = magnitude / (magnitude.sum(0, keepdim=True) + 1e-9)
    return rtsep.Model(OracleNetwork(config, table))
