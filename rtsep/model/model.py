"""The user-facing model: cue strings in, separated sources out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..cues import shared_text_encoder
from .architectures import build_network
from .calibration import Calibration
from .config import ModelConfig
from .network import StreamingNetwork

#: The checkpoint that ships inside the package.
SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "rtsep_default.pt"

#: Longest free-text cue accepted, in characters.
MAX_CUE_CHARACTERS = 200


class UnknownCueError(ValueError):
    """A cue that is neither a label nor usable free text."""


@dataclass
class Separation:
    """Sources separated from one mixture.

    ``sources`` is ``float32 [n, time]`` at the model's sample rate, sample-aligned with the
    input and of the same length. ``labels[i]`` names source ``i``: its cue, or for an EDA
    attractor the label whose embedding it matches best. ``slots[i]`` is the network output
    the source came from (for cues, the cue's position; for attractors, the EDA slot).
    ``existence`` is, per EDA slot, the existence probability of each attractor grid point
    (``[max_sources, grid]``; empty with cues).
    """

    sources: np.ndarray
    labels: list[str]
    slots: list[int]
    existence: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


class Model:
    """A trained (or, before training, randomly initialised) separation network.

    Cues are strings: a label of :attr:`labels` (case-insensitive) or free text, which the
    sentence encoder embeds and the network's text projection maps into the attractor space.
    """

    def __init__(self, network: StreamingNetwork, metadata: dict | None = None) -> None:
        self.network = network.eval()
        self.metadata = metadata or {}
        self._cue_cache: dict[str, torch.Tensor] = {}
        #: Stopping thresholds and naming offsets (uncalibrated unless the checkpoint has them).
        self.calibration = Calibration.from_metadata(
            self.metadata, self.config.max_sources, len(self.config.labels)
        )

    # ----------------------------------------------------------------- facts
    @property
    def config(self) -> ModelConfig:
        return self.network.config

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate_hz

    @property
    def hop_samples(self) -> int:
        return self.config.hop_samples

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency: the STFT window (a hop of input buffering plus the overlap)."""
        return self.config.window_samples

    @property
    def labels(self) -> list[str]:
        return list(self.config.labels)

    @property
    def trained(self) -> bool:
        return bool(self.metadata.get("training"))

    @property
    def device(self) -> torch.device:
        return self.network.device

    # ----------------------------------------------------------------- cues
    def label_index(self, cue: str) -> int | None:
        """Index of ``cue`` in :attr:`labels` (case-insensitive), or ``None`` for free text."""
        key = cue.strip().lower()
        return self.labels.index(key) if key in self.labels else None

    def validate_cue(self, cue: str) -> None:
        """Raise :class:`UnknownCueError` with a user-facing message if ``cue`` is unusable."""
        if not isinstance(cue, str) or not cue.strip():
            raise UnknownCueError("a cue must be a label or some text, not an empty string")
        if len(cue) > MAX_CUE_CHARACTERS:
            raise UnknownCueError(f"cue text longer than {MAX_CUE_CHARACTERS} characters")
        if cue.lower().startswith("label:") and self.label_index(cue[6:]) is None:
            raise UnknownCueError(
                f"unknown label {cue[6:].strip()!r}; labels are: {', '.join(self.labels)}"
            )

    def cue_queries(self, cues: Sequence[str]) -> torch.Tensor:
        """Queries ``[N, E]`` for cue strings (labels, ``label:NAME`` or free text).

        Text is encoded by the sentence encoder (loaded on first use) and cached.
        """
        rows = []
        for cue in cues:
            self.validate_cue(cue)
            if cue not in self._cue_cache:
                self._cue_cache[cue] = self._embed_cue(cue)
            rows.append(self._cue_cache[cue])
        return torch.stack(rows) if rows else torch.zeros(0, self.config.embedding_dim)

    def _embed_cue(self, cue: str) -> torch.Tensor:
        name = cue[6:] if cue.lower().startswith("label:") else cue
        index = self.label_index(name)
        with torch.no_grad():
            if index is not None:
                ids = torch.tensor([index], device=self.device)
                return self.network.cues.embed_labels(ids)[0]
            text = torch.from_numpy(shared_text_encoder().encode([cue.strip()])).to(self.device)
            return self.network.cues.embed_text(text)[0]

    def label_directions(self) -> np.ndarray:
        """The label embeddings at unit length, ``float32 [labels, E]``: what attractors are
        named by. A snapshot: take it again after the weights change."""
        table = self.network.cues.labels.weight.detach().cpu().numpy()
        return table / np.maximum(np.linalg.norm(table, axis=-1, keepdims=True), 1e-12)

    def attractor_labels(
        self, attractors: np.ndarray | torch.Tensor, directions: np.ndarray | None = None
    ) -> list[str]:
        """Best-matching label for each attractor row ``[n, E]``: the largest cosine similarity
        plus the label's calibrated offset (:attr:`calibration`).

        Numpy, with ``directions`` (:meth:`label_directions`) taken once by callers on the
        audio path: the engine names attractors at every decode, where the earlier torch
        version of this put the 4-slot per-hop p99 of ``rtsep bench latency --cues none`` at
        about 2.5 ms instead of 1.45 ms.
        """
        if isinstance(attractors, torch.Tensor):
            attractors = attractors.detach().cpu().numpy()
        if directions is None:
            directions = self.label_directions()
        similarity = np.asarray(attractors, dtype=np.float32) @ directions.T
        return [self.labels[i] for i in self.calibration.best_labels(similarity).tolist()]

    # ----------------------------------------------------------------- separation
    def separate(self, mixture: np.ndarray, cues: Sequence[str] | None = None) -> Separation:
        """Separate a whole signal with the full-sequence forward pass that training uses.

        Args:
            mixture: ``float32 [time]`` at :attr:`sample_rate`.
            cues: strings to extract (one output each), or ``None``/empty to separate every
                source the EDA network finds.
        """
        x = np.asarray(mixture, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"mixture must be mono [time], got shape {x.shape}")
        length = x.shape[0]
        hop = self.hop_samples
        padded = -(-length // hop) * hop + hop  # whole hops, plus one hop to finish the tail
        signal = torch.zeros(1, padded, device=self.device)
        signal[0, :length] = torch.from_numpy(x)
        queries = self.cue_queries(cues).unsqueeze(0).to(self.device) if cues else None
        with torch.no_grad():
            out = self.network(signal, queries)
        sources = out.sources[0, :, :length].cpu().numpy()
        if cues:
            return Separation(sources, [str(c) for c in cues], list(range(len(cues))))
        existence = torch.sigmoid(out.existence_logits[0, :, : self.config.max_sources]).T  # [S, G]
        thresholds = torch.tensor(self.calibration.existence_thresholds, device=existence.device)
        passed = (existence >= thresholds[:, None]).any(1)  # [S]
        active = [s for s in range(self.config.max_sources) if bool(passed[s])]
        mean_attractors = out.attractors[0, :, : self.config.max_sources].mean(0)
        labels = self.attractor_labels(mean_attractors)
        return Separation(
            sources[active], [labels[s] for s in active], active, existence.cpu().numpy()
        )

    # ----------------------------------------------------------------- streaming
    def init_state(self, batch: int = 1, outputs: int | None = None) -> dict[str, torch.Tensor]:
        """Zero streaming state; ``outputs`` defaults to ``max_sources`` (EDA mode)."""
        return self.network.init_state(batch, outputs or self.config.max_sources)

    def step(self, chunk: torch.Tensor, queries: torch.Tensor | None, state: dict) -> tuple:
        """One chunk of whole hops: ``(outputs, gains, state)``, see
        :meth:`StreamingNetwork.step`."""
        with torch.no_grad():
            return self.network.step(chunk, queries, state)

    # ----------------------------------------------------------------- persistence
    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        """Write the weights, the config and ``metadata`` (training run, data, scores)."""
        payload = {
            "config": self.config.to_dict(),
            "state_dict": self.network.state_dict(),
            "metadata": metadata if metadata is not None else self.metadata,
        }
        torch.save(payload, Path(path))


def load_model(path: str | Path | None = None, device: str = "cpu") -> Model:
    """Load a checkpoint; ``None`` loads the weights shipped with the package.

    Before weights ship, ``None`` gives a randomly initialised network (``model.trained`` is
    ``False`` and every report says so).
    """
    if path is None or str(path) == "":
        if not SHIPPED_WEIGHTS.exists():
            torch.manual_seed(0)
            return Model(build_network(ModelConfig()).to(device), {})
        path = SHIPPED_WEIGHTS
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model checkpoint not found: {path}")
    payload = torch.load(path, map_location=device, weights_only=False)
    network = build_network(ModelConfig.from_dict(payload["config"]))
    network.load_state_dict(payload["state_dict"])
    return Model(network.to(device), payload.get("metadata", {}))
