"""Hyper-parameters of the causal unified separation network."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network. Every size is fixed at construction and saved with the weights.

    Units: samples at ``sample_rate_hz``; sizes are feature dimensions.
    """

    sample_rate_hz: int = 16000
    window_samples: int = 256  # STFT window (16 ms): the algorithmic latency
    hop_samples: int = 128  # STFT hop (8 ms): the smallest streaming step
    feature_dim: int = 128  # width of the separator features
    separator_layers: int = 2  # shared causal LSTM layers
    extractor_layers: int = 1  # per-output causal LSTM layers after cue fusion
    embedding_dim: int = 64  # shared space of attractors and cue embeddings
    attention_heads: int = 4  # heads of the cue-fusion attention
    max_sources: int = 4  # EDA slots; the decoder emits one more to learn to stop
    attractor_interval_hops: int = 4  # attractors are re-decoded on this fixed grid of hops
    text_dim: int = 384  # size of the sentence-encoder embedding
    labels: tuple[str, ...] = field(default=("speech", "music", "env"))

    @property
    def frequency_bins(self) -> int:
        return self.window_samples // 2 + 1

    def to_dict(self) -> dict:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "labels" in known:
            known["labels"] = tuple(known["labels"])
        return cls(**known)
