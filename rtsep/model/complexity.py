"""Size and compute of the network, counted from its configuration."""

from __future__ import annotations

from .bands import band_edges
from .config import ModelConfig


def lstm_macs(inputs: int, hidden: int) -> int:
    """Multiply-accumulates of one LSTM time step (four gates)."""
    return 4 * hidden * (inputs + hidden)


def dual_path_block_macs(bands: int, dim: int) -> int:
    """One dual-path block, one frame: an LSTM step per band, the linear map across bands (per
    channel) and the channel MLP (``dim -> 2 dim -> dim``, per band)."""
    return bands * lstm_macs(dim, dim) + bands * bands * dim + bands * 4 * dim * dim


def macs_per_hop(config: ModelConfig, outputs: int) -> int:
    """Multiply-accumulates to process one hop with ``outputs`` queries (streaming step).

    Counts the matrix products (DFTs, linear layers, LSTMs, attention); element-wise work
    (norms, activations) is left out, as is customary.
    """
    c = config
    d, e, f, w = c.feature_dim, c.embedding_dim, c.frequency_bins, c.window_samples
    analysis = 2 * w * f
    eda = lstm_macs(d, e) + (c.max_sources + 1) * (lstm_macs(e, e) + e)
    attention = d * d + outputs * outputs * 2 * e * d + outputs * outputs * d * 2
    fusion = attention + outputs * d * 2 * d
    synthesis = outputs * 2 * f * w
    gate_width = {"dualpath": c.band_dim, "bandrnn": c.head_dim}.get(c.architecture, d)
    presence = outputs * gate_width if c.presence_gate else 0  # one logit per output
    edges = band_edges(f, c.bands, c.sample_rate_hz)
    width = max(hi - lo for lo, hi in zip(edges[:-1], edges[1:]))  # bands padded to this
    if c.architecture == "bandrnn":
        k, b, core, h = c.bands, c.band_code_dim, c.core_dim, c.head_dim
        split = k * 3 * width * b + k * b * core
        shared = c.separator_layers * lstm_macs(core, core) + core * d + core * h
        films = (c.extractor_layers + 1) * d * 2 * h
        merge = h * k * b + k * b * 2 * width
        per_output = c.extractor_layers * lstm_macs(h, h) + films + merge
        per_outputs = outputs * per_output + presence
        return analysis + split + shared + eda + fusion + per_outputs + synthesis
    if c.architecture == "dualpath":
        k, b = c.bands, c.band_dim
        split = k * 3 * width * b
        shared = c.separator_layers * dual_path_block_macs(k, b) + k * b * d
        films = (c.extractor_layers + 1) * d * 2 * b
        merge = k * b * 2 * width
        per_output = c.extractor_layers * dual_path_block_macs(k, b) + films + merge
        per_outputs = outputs * per_output + presence
        return analysis + split + shared + eda + fusion + per_outputs + synthesis
    separator = f * d + c.separator_layers * lstm_macs(d, d)
    masks = outputs * (c.extractor_layers * lstm_macs(d, d) + d * f) + presence
    return analysis + separator + eda + fusion + masks + synthesis


def macs_per_second(config: ModelConfig, outputs: int) -> float:
    """Multiply-accumulates per second of audio at the model rate."""
    return macs_per_hop(config, outputs) * config.sample_rate_hz / config.hop_samples
