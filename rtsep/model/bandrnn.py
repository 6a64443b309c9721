"""Model v3 candidate: band encoding, one wide recurrent core, lean conditioned heads per output.

Shaped for a CPU that runs few large matrix products well and many small ones badly (model v2's
LSTM of 32 units per band trains at a fifth of v1's speed per sample). Signal path per frame
(16 ms window, 8 ms hop), after GTCRN, LiSenNet and DeepFilterNet's ERB encoder:

1. STFT → :class:`~rtsep.model.bands.BandSplit`: ``K`` ERB bands of ``band_code_dim``
   features each, concatenated into one frame vector and projected to ``core_dim``.
2. Shared core (query-free, run once per stream): ``separator_layers`` pre-norm residual LSTMs
   ``core_dim`` wide; a ``feature_dim`` summary of it feeds the EDA and the cue fusion.
3. Per output: the cue fusion of v1 (cross-prompt attention, TUSS) gives a conditioning vector
   that modulates (FiLM) every per-output LSTM (``extractor_layers``, ``head_dim`` wide) and the
   mask head, as Waveformer and CATSE condition every block.
4. The head's features are decoded to ``band_code_dim`` features per band, plus the band's
   encoder features (a skip, as in U-Net-style enhancers), then
   :class:`~rtsep.model.bands.BandMerge` gives a bounded complex mask per bin.

Streaming state keeps the names of :data:`~rtsep.model.network.STATE_NAMES`: the core's LSTM
state is ``[separator_layers, B, core_dim]``, the heads' ``[extractor_layers, B * N,
head_dim]``.
"""

from __future__ import annotations

import torch
from torch import nn

from .bands import BandMerge, BandSplit, band_edges
from .config import ModelConfig
from .cue_network import CueEmbedder, CueFusion
from .eda import AttractorNetwork
from .network import StreamingNetwork
from .presence import PresenceGate, gate_complex_masks
from .separator import residual_lstms


class BandRnnNetwork(StreamingNetwork):
    """The v3 candidate (``ModelConfig.architecture == "bandrnn"``); see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        c = config
        edges = band_edges(c.frequency_bins, c.bands, c.sample_rate_hz)
        k, b, h = c.bands, c.band_code_dim, c.head_dim
        self.split = BandSplit(edges, b)
        self.encode = nn.Sequential(nn.Linear(k * b, c.core_dim), nn.LayerNorm(c.core_dim))
        self.core_norms = nn.ModuleList(nn.LayerNorm(c.core_dim) for _ in range(c.separator_layers))
        self.core = nn.ModuleList(
            nn.LSTM(c.core_dim, c.core_dim, batch_first=True) for _ in range(c.separator_layers)
        )
        self.summary = nn.Sequential(
            nn.Linear(c.core_dim, c.feature_dim), nn.LayerNorm(c.feature_dim)
        )
        self.head_input = nn.Linear(c.core_dim, h)
        self.eda = AttractorNetwork(c.feature_dim, c.embedding_dim, c.max_sources)
        self.cues = CueEmbedder(len(c.labels), c.text_dim, c.embedding_dim)
        self.fusion = CueFusion(c.feature_dim, c.embedding_dim, c.attention_heads)
        self.head_norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(c.extractor_layers))
        self.heads = nn.ModuleList(
            nn.LSTM(h, h, batch_first=True) for _ in range(c.extractor_layers)
        )
        # One FiLM per per-output LSTM, and one for the mask head.
        self.films = nn.ModuleList(
            nn.Linear(c.feature_dim, 2 * h) for _ in range(c.extractor_layers + 1)
        )
        self.mask_norm = nn.LayerNorm(h)
        self.decode = nn.Linear(h, k * b)
        self.merge = BandMerge(edges, b)
        self.presence = PresenceGate(h) if c.presence_gate else None

    # ----------------------------------------------------------------- shared pieces
    def shared_frames(
        self, real: torch.Tensor, imag: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Spectra ``[B, T, bins]`` and core state ``[layers, B, core_dim]`` → ``(features
        [B, T, head_dim + K * band_code_dim], summary [B, T, feature_dim], hidden, cell)``:
        ``features`` are the heads' common input, then the band features (the decoder's skip).
        """
        bands = self.split(real, imag)  # [B, T, K, b]
        x = self.encode(bands.flatten(-2))
        x, hidden, cell = residual_lstms(self.core_norms, self.core, x, hidden, cell)
        features = torch.cat([self.head_input(x), bands.flatten(-2)], dim=-1)
        return features, self.summary(x), hidden, cell

    def output_gains(
        self,
        features: torch.Tensor,
        summary: torch.Tensor,
        queries: torch.Tensor,
        real: torch.Tensor,
        imag: torch.Tensor,
        hidden: torch.Tensor,
        cell: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """The complex mask of every output (gated by cue presence, when the network has a gate).

        ``features`` and ``summary`` from :meth:`shared_frames`, ``queries [B, Tq, N, E]`` (Tq =
        T or 1), spectra ``[B, T, bins]`` (unused: the mask is the output), head state
        ``[extractor_layers, B * N, head_dim]`` → ``(gains_real, gains_imag [B, N, T, bins],
        presence_logits [B, N, T] or None, hidden, cell)``; the gate reads the head's features.
        """
        c = self.config
        batch, outputs = queries.shape[0], queries.shape[2]
        condition = self.fusion(summary, queries).flatten(0, 1)  # [B*N, T, G]
        x, skip = features.split([c.head_dim, c.bands * c.band_code_dim], dim=-1)
        x = x.unsqueeze(1).expand(-1, outputs, -1, -1).flatten(0, 1)  # [B*N, T, h]
        films = [film(condition).chunk(2, dim=-1) for film in self.films]
        x, hidden, cell = residual_lstms(self.head_norms, self.heads, x, hidden, cell, films[:-1])
        gamma, beta = films[-1]
        decoded = self.decode(self.mask_norm(x) * (1.0 + gamma) + beta).unflatten(0, (batch, -1))
        decoded = (decoded + skip.unsqueeze(1)).flatten(0, 1)  # [B*N, T, K * b]
        mask_real, mask_imag = self.merge(decoded.unflatten(-1, (c.bands, c.band_code_dim)))
        mask_real, mask_imag, presence = gate_complex_masks(
            self.presence, x, mask_real, mask_imag, batch
        )
        return mask_real, mask_imag, presence, hidden, cell

    # ----------------------------------------------------------------- streaming
    def state_shapes(self, batch: int, outputs: int) -> dict[str, tuple[int, ...]]:
        c = self.config
        return {
            "separator_hidden": (c.separator_layers, batch, c.core_dim),
            "separator_cell": (c.separator_layers, batch, c.core_dim),
            "extractor_hidden": (c.extractor_layers, batch * outputs, c.head_dim),
            "extractor_cell": (c.extractor_layers, batch * outputs, c.head_dim),
        }
