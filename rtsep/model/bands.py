"""Band split and merge: the 129 STFT bins as ~24 bands, narrow at low and wide at high frequencies.

Bands partition the bins (no overlap, no gap). Each band is embedded by its own linear layer from
compressed spectral features of its bins, and each band's output features are mapped back by its
own linear layer to a complex mask over its bins (BSRNN's band split, on this model's STFT).
Bands of different widths are handled by padding every band to the widest one: a fixed gather
index reads the bins of band ``k`` into row ``k`` (padding reads a zero bin), and a second one
reads the mask of each bin back out, so the graph has no loops and exports to ONNX as it is.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Exponent of the magnitude compression of the band features (as in DeepFilterNet, GTCRN).
COMPRESSION = 0.3
#: Squared-magnitude floor of the compression: below ``sqrt(floor)`` the features are linear in
#: the spectrum, so rounding noise in near-silent bins is not amplified (at ``1e-12`` streaming
#: and whole-signal runs of a random network differed by 5e-4 after the compression's x1e4 gain).
COMPRESSION_FLOOR = 1e-8
#: Largest magnitude of the complex mask: a little above one, as phase-aware masks need.
MAX_MASK_MAGNITUDE = 1.5


def erb(hz: float) -> float:
    """Equivalent-rectangular-bandwidth number of a frequency (Glasberg & Moore)."""
    return 21.4 * math.log10(1.0 + 0.00437 * hz)


def band_edges(bins: int, bands: int, sample_rate_hz: int, min_width: int = 2) -> list[int]:
    """First bin of each band and the end: ``bands + 1`` increasing edges from 0 to ``bins``.

    Edges are equally spaced on the ERB scale, then pushed apart so that every band holds at
    least ``min_width`` bins (the low bands, where ERB bands are narrower than one bin).
    """
    if not 1 <= bands * min_width <= bins:
        raise ValueError(f"cannot cut {bins} bins into {bands} bands of >= {min_width} bins")
    nyquist = sample_rate_hz / 2
    top = erb(nyquist)
    edges = [0]
    for k in range(1, bands):
        hz = (10 ** (top * k / bands / 21.4) - 1.0) / 0.00437
        ideal = round(hz / nyquist * (bins - 1))
        edges.append(max(ideal, edges[-1] + min_width))
    edges.append(bins)
    # Too many narrow low bands can push the last edges past the top: pull them back down.
    for k in range(bands - 1, 0, -1):
        edges[k] = min(edges[k], edges[k + 1] - min_width)
    return edges


def _gather_indices(edges: list[int]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(split [K * W], merge [bins], W)``: padded band layout and its inverse."""
    widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
    width = max(widths)
    bins = edges[-1]
    split, merge = [], []
    for k, (start, w) in enumerate(zip(edges[:-1], widths)):
        split += list(range(start, start + w)) + [bins] * (width - w)  # bins = the zero bin
        merge += [k * width + i for i in range(w)]
    return torch.tensor(split), torch.tensor(merge), width


class BandSplit(nn.Module):
    """``(real, imag) [B, T, bins]`` → band features ``[B, T, K, D]``.

    Per bin: the compressed magnitude ``(|X|^2 + floor)^0.15`` (≈ ``|X|^0.3``) and the complex
    value scaled to that magnitude (real, imaginary); per band, a linear layer over its bins'
    features, then a layer norm.
    """

    def __init__(self, edges: list[int], dim: int) -> None:
        super().__init__()
        split, _, width = _gather_indices(edges)
        self.register_buffer("split_index", split, persistent=False)
        self.bands = len(edges) - 1
        self.width = width
        scale = 1.0 / math.sqrt(3 * width)
        self.weight = nn.Parameter(torch.randn(self.bands, 3 * width, dim) * scale)
        self.bias = nn.Parameter(torch.zeros(self.bands, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        power = real * real + imag * imag + COMPRESSION_FLOOR
        compressed = power.pow(COMPRESSION / 2)
        scale = compressed / power.sqrt()
        features = torch.stack([compressed, real * scale, imag * scale], dim=-1)  # [B,T,F,3]
        features = torch.cat([features, torch.zeros_like(features[:, :, :1])], dim=2)
        banded = features.index_select(2, self.split_index)  # [B, T, K*W, 3]
        banded = banded.unflatten(2, (self.bands, self.width)).flatten(-2)  # [B, T, K, 3W]
        return self.norm(torch.einsum("btkc,kcd->btkd", banded, self.weight) + self.bias)


class BandMerge(nn.Module):
    """Band features ``[M, T, K, D]`` → a bounded complex mask ``(real, imag) [M, T, bins]``.

    Per band a linear layer gives a complex value per bin; its magnitude is squashed to at most
    :data:`MAX_MASK_MAGNITUDE` with the phase kept.
    """

    def __init__(self, edges: list[int], dim: int) -> None:
        super().__init__()
        _, merge, width = _gather_indices(edges)
        self.register_buffer("merge_index", merge, persistent=False)
        self.bands = len(edges) - 1
        self.width = width
        self.norm = nn.LayerNorm(dim)
        self.weight = nn.Parameter(torch.randn(self.bands, dim, 2 * width) / math.sqrt(dim))
        self.bias = nn.Parameter(torch.zeros(self.bands, 2 * width))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = torch.einsum("mtkd,kdc->mtkc", self.norm(features), self.weight) + self.bias
        raw = raw.unflatten(-1, (self.width, 2)).flatten(2, 3)  # [M, T, K*W, 2]
        raw = raw.index_select(2, self.merge_index)  # [M, T, bins, 2]
        real, imag = raw[..., 0], raw[..., 1]
        size = torch.sqrt(real * real + imag * imag + 1e-12)
        gain = MAX_MASK_MAGNITUDE * torch.tanh(size / MAX_MASK_MAGNITUDE) / size
        return real * gain, imag * gain
