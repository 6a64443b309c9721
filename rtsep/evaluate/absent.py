"""Cues for a class that is not in the mixture: how loud is what the user hears?

For each label, the first ``mixtures`` validation mixtures (1-3 sources) that hold no source
of that class are streamed with that label's cue; the score is the output's level in dB re
the mixture's (``10 log10`` of the power ratio over the whole mixture). Issue 10 asks ≤ -20 dB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..data import MixtureSimulator
from ..data.corpus import power_db
from .metrics import summarize
from .stream import StreamRunner

ABSENT_TARGET_DB = -20.0
LEVEL_FLOOR_DB = -120.0  # what a digitally silent output scores
RULE = (
    "for each label, validation mixtures of 1-3 sources holding no source of that class,"
    " streamed with the label's cue; level = 10 log10(output power / mixture power) over the"
    " mixture, in dB; share_at_or_below_target: fraction of mixtures at or below -20 dB"
)


def output_level_db(output: np.ndarray, mixture: np.ndarray) -> float:
    """Power of ``output [time]`` re that of ``mixture [time]``, in dB (floored at
    :data:`LEVEL_FLOOR_DB`)."""
    power = float(np.mean(np.square(output, dtype=np.float64)))
    reference = float(np.mean(np.square(mixture, dtype=np.float64)))
    return max(power_db(power) - power_db(max(reference, 1e-20)), LEVEL_FLOOR_DB)


def evaluate_absent_cues(
    runner: StreamRunner,
    pool: MixtureSimulator,
    labels: Sequence[str],
    per_label: int,
    progress: Callable[[], object] = lambda: None,
) -> dict:
    """Per label: the level summary (``n``, ``mean``, ``median`` dB) of ``per_label`` absent-cue
    outputs and the share at or below :data:`ABSENT_TARGET_DB`; ``all`` pools the labels."""
    levels: dict[str, list[float]] = {label: [] for label in labels}
    for index in range(len(pool)):
        if all(len(values) >= per_label for values in levels.values()):
            break
        item = pool[index]
        for label in labels:
            if len(levels[label]) < per_label and label not in item.labels:
                output = runner.run(item.mixture, [label]).outputs[0]
                levels[label].append(output_level_db(output, item.mixture))
                progress()
    pooled = [value for values in levels.values() for value in values]
    return {name: _summary(values) for name, values in {**levels, "all": pooled}.items()}


def _summary(values: list[float]) -> dict:
    share = float(np.mean(np.asarray(values) <= ABSENT_TARGET_DB)) if values else None
    return {
        "level_db": summarize(values),
        "share_at_or_below_target": None if share is None else round(share, 4),
    }
