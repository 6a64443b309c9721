"""Model v2: a band-split dual-path network with query conditioning in every output block.

Signal path per frame (16 ms window, 8 ms hop):

1. STFT → :class:`~rtsep.model.bands.BandSplit`: ``K`` bands of ``D`` features.
2. Shared dual-path blocks (query-free, run once per stream): an LSTM over time in each band
   (weights shared across bands, causal, carried state), then mixing across the bands of the
   frame. Their output feeds the EDA network (source counting and attractors) and every output.
3. Per output: the cue fusion of v1 (cross-prompt attention of the frame summary over all
   queries, TUSS) gives a conditioning vector; every per-output dual-path block and the mask
   head are modulated by it (FiLM), as Waveformer and CATSE condition every block.
4. :class:`~rtsep.model.bands.BandMerge`: a bounded complex mask per output, applied to the
   mixture spectrum, then overlap-add synthesis.

Streaming state keeps the names of :data:`~rtsep.model.network.STATE_NAMES`; the LSTM states of
the blocks are stored as ``[blocks, M, K * D]`` (``M`` = streams for shared blocks, streams ×
outputs for per-output ones), so axis 1 is still the output axis the engine re-orders.
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


class DualPathBlock(nn.Module):
    """One block over band features ``[M, T, K, D]``: time path, then band path.

    The time path is an LSTM over frames for each band (``M * K`` sequences, one set of weights);
    its input may be modulated by FiLM ``(gamma, beta)``, each broadcastable to ``[M, T, K, D]``.
    The band path mixes the ``K`` bands of each frame (a linear map over the band axis) and then
    the channels (an MLP); both are frame-local, so the block stays causal.
    """

    def __init__(self, bands: int, dim: int) -> None:
        super().__init__()
        self.bands = bands
        self.dim = dim
        self.time_norm = nn.LayerNorm(dim)
        self.lstm = nn.LSTM(dim, dim, batch_first=True)
        self.band_norm = nn.LayerNorm(dim)
        self.band_mix = nn.Linear(bands, bands)
        self.channel_norm = nn.LayerNorm(dim)
        self.channel_mix = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)
        )

    def forward(
        self,
        x: torch.Tensor,
        hidden: torch.Tensor,
        cell: torch.Tensor,
        film: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x [M, T, K, D]``; ``hidden``/``cell [M, K * D]`` → ``(x, hidden, cell)``."""
        y = self.time_norm(x)
        if film is not None:
            gamma, beta = film
            y = y * (1.0 + gamma) + beta
        sequences = y.transpose(1, 2).flatten(0, 1)  # [M*K, T, D]
        state = (
            hidden.reshape(1, -1, self.dim).contiguous(),
            cell.reshape(1, -1, self.dim).contiguous(),
        )
        y, (h, c) = self.lstm(sequences, state)
        x = x + y.unflatten(0, (-1, self.bands)).transpose(1, 2)
        x = x + self.band_mix(self.band_norm(x).transpose(-1, -2)).transpose(-1, -2)
        x = x + self.channel_mix(self.channel_norm(x))
        width = self.bands * self.dim
        return x, h.reshape(-1, width), c.reshape(-1, width)


class DualPathNetwork(StreamingNetwork):
    """The v2 network (``ModelConfig.architecture == "dualpath"``); see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        c = config
        edges = band_edges(c.frequency_bins, c.bands, c.sample_rate_hz)
        k, d = c.bands, c.band_dim
        self.split = BandSplit(edges, d)
        self.shared = nn.ModuleList(DualPathBlock(k, d) for _ in range(c.separator_layers))
        self.summary = nn.Sequential(nn.Linear(k * d, c.feature_dim), nn.LayerNorm(c.feature_dim))
        self.eda = AttractorNetwork(c.feature_dim, c.embedding_dim, c.max_sources)
        self.cues = CueEmbedder(len(c.labels), c.text_dim, c.embedding_dim)
        self.fusion = CueFusion(c.feature_dim, c.embedding_dim, c.attention_heads)
        self.extract = nn.ModuleList(DualPathBlock(k, d) for _ in range(c.extractor_layers))
        # One FiLM per per-output block, and one for the mask head.
        self.films = nn.ModuleList(
            nn.Linear(c.feature_dim, 2 * d) for _ in range(c.extractor_layers + 1)
        )
        self.head_norm = nn.LayerNorm(d)
        self.merge = BandMerge(edges, d)
        self.presence = PresenceGate(d) if c.presence_gate else None

    # ----------------------------------------------------------------- shared pieces
    def shared_frames(
        self, real: torch.Tensor, imag: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Spectra ``[B, T, bins]`` → ``(bands [B, T, K, D], summary [B, T, G], hidden, cell)``."""
        x = self.split(real, imag)
        new_hidden, new_cell = [], []
        for index, block in enumerate(self.shared):
            x, h, c = block(x, hidden[index], cell[index])
            new_hidden.append(h)
            new_cell.append(c)
        summary = self.summary(x.flatten(-2))
        return x, summary, torch.stack(new_hidden), torch.stack(new_cell)

    def output_gains(
        self,
        bands: torch.Tensor,
        summary: torch.Tensor,
        queries: torch.Tensor,
        real: torch.Tensor,
        imag: torch.Tensor,
        hidden: torch.Tensor,
        cell: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """The complex mask of every output (gated by cue presence, when the network has a gate).

        ``bands [B, T, K, D]``, ``summary [B, T, G]``, ``queries [B, Tq, N, E]`` (Tq = T or 1),
        spectra ``[B, T, bins]`` (unused: the mask is the output), state
        ``[blocks, B * N, K * D]`` → ``(gains_real, gains_imag [B, N, T, bins], presence_logits
        [B, N, T] or None, hidden, cell)``; the gate reads the band features averaged over the
        bands.
        """
        batch, outputs = queries.shape[0], queries.shape[2]
        condition = self.fusion(summary, queries).flatten(0, 1).unsqueeze(2)  # [B*N, T, 1, G]
        x = bands.unsqueeze(1).expand(-1, outputs, -1, -1, -1).flatten(0, 1)  # [B*N, T, K, D]
        new_hidden, new_cell = [], []
        for index, (block, film) in enumerate(zip(self.extract, self.films)):
            x, h, c = block(x, hidden[index], cell[index], film(condition).chunk(2, dim=-1))
            new_hidden.append(h)
            new_cell.append(c)
        gamma, beta = self.films[-1](condition).chunk(2, dim=-1)
        mask_real, mask_imag = self.merge(self.head_norm(x) * (1.0 + gamma) + beta)
        mask_real, mask_imag, presence = gate_complex_masks(
            self.presence, x.mean(dim=2), mask_real, mask_imag, batch
        )
        return mask_real, mask_imag, presence, torch.stack(new_hidden), torch.stack(new_cell)

    # ----------------------------------------------------------------- streaming
    def state_shapes(self, batch: int, outputs: int) -> dict[str, tuple[int, ...]]:
        c = self.config
        width = c.bands * c.band_dim
        return {
            "separator_hidden": (c.separator_layers, batch, width),
            "separator_cell": (c.separator_layers, batch, width),
            "extractor_hidden": (c.extractor_layers, batch * outputs, width),
            "extractor_cell": (c.extractor_layers, batch * outputs, width),
        }
