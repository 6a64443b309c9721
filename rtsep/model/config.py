"""Hyper-parameters of the causal unified separation network."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ARCHITECTURES = ("bandrnn", "dualpath", "lstm")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network. Every size is fixed at construction and saved with the weights.

    Units: samples at ``sample_rate_hz``; sizes are feature dimensions.
    """

    # "dualpath" (model v2: band split, dual-path blocks, complex mask), "lstm" (model v1) or
    # "bandrnn" (v3 candidate: band encoding, a wide shared LSTM core, lean per-output heads).
    # Checkpoints saved before the field existed are v1.
    architecture: str = "dualpath"
    sample_rate_hz: int = 16000
    window_samples: int = 256  # STFT window (16 ms): the algorithmic latency
    hop_samples: int = 128  # STFT hop (8 ms): the smallest streaming step
    feature_dim: int = 128  # v1: separator width; v2, bandrnn: frame summary (EDA, cues)
    separator_layers: int = 2  # shared causal layers (v2: dual-path blocks)
    extractor_layers: int = 1  # per-output causal layers after cue fusion (v2: blocks)
    bands: int = 24  # v2, bandrnn: frequency bands the bins are grouped into
    band_dim: int = 32  # v2: features per band
    band_code_dim: int = 16  # bandrnn: features per band (encoder and mask decoder)
    core_dim: int = 256  # bandrnn: width of the shared LSTM core
    head_dim: int = 32  # bandrnn: width of each output's LSTM head
    embedding_dim: int = 64  # shared space of attractors and cue embeddings
    attention_heads: int = 4  # heads of the cue-fusion attention
    max_sources: int = 4  # EDA slots; the decoder emits one more to learn to stop
    attractor_interval_hops: int = 4  # attractors are re-decoded on this fixed grid of hops
    text_dim: int = 384  # size of the sentence-encoder embedding
    labels: tuple[str, ...] = field(default=("speech", "music", "env"))
    # A cue-presence gate on every output (rtsep.model.presence); off in checkpoints saved
    # before the field existed.
    presence_gate: bool = False

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {', '.join(ARCHITECTURES)}, not {self.architecture!r}"
            )

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
        known.setdefault("architecture", "lstm")
        if "labels" in known:
            known["labels"] = tuple(known["labels"])
        return cls(**known)
