"""Size and compute of the network, counted from its configuration."""

from __future__ import annotations

from .config import ModelConfig


def lstm_macs(inputs: int, hidden: int) -> int:
    """Multiply-accumulates of one LSTM time step (four gates)."""
    return 4 * hidden * (inputs + hidden)


def macs_per_hop(config: ModelConfig, outputs: int) -> int:
    """Multiply-accumulates to process one hop with ``outputs`` queries (streaming step).

    Counts the matrix products (DFTs, linear layers, LSTMs, attention); element-wise work
    (norms, activations) is left out, as is customary.
    """
    c = config
    d, e, f, w = c.feature_dim, c.embedding_dim, c.frequency_bins, c.window_samples
    analysis = 2 * w * f
    separator = f * d + c.separator_layers * lstm_macs(d, d)
    eda = lstm_macs(d, e) + (c.max_sources + 1) * (lstm_macs(e, e) + e)
    attention = d * d + outputs * outputs * 2 * e * d + outputs * outputs * d * 2
    fusion = attention + outputs * d * 2 * d
    masks = outputs * (c.extractor_layers * lstm_macs(d, d) + d * f)
    synthesis = outputs * 2 * f * w
    return analysis + separator + eda + fusion + masks + synthesis


def macs_per_second(config: ModelConfig, outputs: int) -> float:
    """Multiply-accumulates per second of audio at the model rate."""
    return macs_per_hop(config, outputs) * config.sample_rate_hz / config.hop_samples
