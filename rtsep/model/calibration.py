"""Decision rules read off a trained model's outputs: how many sources, and which class each is.

The EDA decoder emits an existence probability per attractor and stops at the first absent one;
an attractor is named by the label embedding it is most similar to. Both rules have free
constants (the stopping threshold, a per-label offset of the similarity) that training leaves
uncalibrated. A :class:`Calibration` holds them; it travels in a checkpoint's metadata under
``"calibration"`` and is fitted after training on mixtures of training sources
(:func:`rtsep.evaluate.calibration.fit_calibration`). A checkpoint without one uses the
uncalibrated rules: threshold 0.5 on every slot, no offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: The EDA stopping threshold before calibration (USE, after EEND-EDA).
DEFAULT_EXISTENCE_THRESHOLD = 0.5


@dataclass(frozen=True)
class Calibration:
    """Per-slot existence thresholds and per-label similarity offsets.

    Args:
        existence_thresholds: ``[max_sources]``: slot ``k`` counts as a source while its
            existence probability is ≥ ``existence_thresholds[k]`` and every earlier slot
            counts too.
        label_offsets: ``[labels]``: added to the cosine similarity between an attractor and
            each label embedding before the best label is taken.
    """

    existence_thresholds: tuple[float, ...]
    label_offsets: tuple[float, ...]

    @classmethod
    def uncalibrated(cls, max_sources: int, labels: int) -> Calibration:
        return cls((DEFAULT_EXISTENCE_THRESHOLD,) * max_sources, (0.0,) * labels)

    @classmethod
    def from_metadata(cls, metadata: dict, max_sources: int, labels: int) -> Calibration:
        """The calibration stored in a checkpoint's metadata, or :meth:`uncalibrated`."""
        stored = metadata.get("calibration")
        if not stored:
            return cls.uncalibrated(max_sources, labels)
        thresholds = tuple(float(t) for t in stored["existence_thresholds"])
        offsets = tuple(float(o) for o in stored["label_offsets"])
        if len(thresholds) != max_sources or len(offsets) != labels:
            raise ValueError(
                f"calibration has {len(thresholds)} thresholds and {len(offsets)} label offsets; "
                f"the model has {max_sources} EDA slots and {labels} labels"
            )
        return cls(thresholds, offsets)

    def to_metadata(self) -> dict:
        return {
            "existence_thresholds": [round(t, 4) for t in self.existence_thresholds],
            "label_offsets": [round(o, 4) for o in self.label_offsets],
        }

    def source_count(self, existence: Sequence[float] | np.ndarray) -> int:
        """Sources found by the stopping rule from existence probabilities ``[≥ max_sources]``
        (extra trailing slots are ignored); at most ``max_sources``."""
        slots = len(self.existence_thresholds)
        active = np.asarray(existence, dtype=np.float64)[:slots] >= self.existence_thresholds
        return int(np.cumprod(active).sum())

    def best_labels(self, similarity: np.ndarray) -> np.ndarray:
        """Index of the best label per row of cosine similarities ``[n, labels]``: ``int [n]``."""
        return (np.asarray(similarity) + np.asarray(self.label_offsets, np.float32)).argmax(-1)
