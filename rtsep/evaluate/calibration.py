"""Fitting a model's decision rules (:class:`rtsep.model.calibration.Calibration`).

The rules are fitted on mixtures of **training** sources, streamed through the engine as the
evaluation streams them, so that the validation split (``rtsep evaluate``) stays unseen by the
fit. Every source count the model can output (1 … ``max_sources``) gets the same number of
mixtures: the fit favours no count the evaluation happens to test.

* Existence thresholds: coordinate ascent over slots on a grid, maximising the share of
  mixtures whose count is right.
* Label offsets: coordinate ascent on a grid (the first label's offset stays 0: only
  differences matter), maximising the class-balanced naming accuracy of the attractors
  matched to a source (balanced, so the class mix of the fitting mixtures does not set it).

Ties keep the value nearest the uncalibrated rule (threshold 0.5, offset 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..model import Model
from ..model.calibration import DEFAULT_EXISTENCE_THRESHOLD, Calibration
from .metrics import match_estimates
from .quality import COUNT_SEED_STRIDE, DEFAULT_SEGMENT_SECONDS, split_simulator
from .stream import StreamRunner

#: Seed of the fitting mixtures (the evaluation's default is 7: different mixtures anyway,
#: since these come from the training split).
DEFAULT_CALIBRATION_SEED = 11
DEFAULT_CALIBRATION_MIXTURES = 100  # per source count
THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)
OFFSET_GRID = np.round(np.arange(-0.5, 0.501, 0.01), 2)
ROUNDS = 3  # passes of coordinate ascent


@dataclass
class DecisionData:
    """What the rules decide from, collected from streamed mixtures.

    ``existence float [M, max_sources]`` (last grid point inside each mixture) with
    ``true_counts int [M]``; ``similarity float [A, labels]``: cosine similarity of every
    attractor matched to a source, with ``true_labels int [A]`` (that source's class).
    """

    existence: np.ndarray
    true_counts: np.ndarray
    similarity: np.ndarray
    true_labels: np.ndarray


def collect_decisions(
    model: Model,
    corpus_root: str | Path,
    mixtures: int = DEFAULT_CALIBRATION_MIXTURES,
    seed: int = DEFAULT_CALIBRATION_SEED,
    backend: str = "onnxruntime",
    threads: int = 1,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    progress: bool = True,
) -> DecisionData:
    """Stream ``mixtures`` training-split mixtures per source count 1 … ``max_sources``."""
    if mixtures < 1:
        raise ValueError(f"mixtures must be at least 1, got {mixtures}")
    simulator = split_simulator(corpus_root, "train", model.sample_rate, segment_seconds)
    runner = StreamRunner(model, backend, threads)
    slots = model.config.max_sources
    directions = model.label_directions()
    existence, counts, similarity, labels = [], [], [], []
    bar = tqdm(total=mixtures * slots, unit="mixture", disable=not progress, desc="calibrate")
    with bar:
        for n in range(1, slots + 1):
            mixes = simulator(
                min_sources=n, max_sources=n, seed=seed + COUNT_SEED_STRIDE * n, length=mixtures
            )
            for index in range(len(mixes)):
                item = mixes[index]
                streamed = runner.run(item.mixture)
                existence.append(streamed.existence[:slots])
                counts.append(n)
                matched = match_estimates(streamed.outputs[:slots], item.sources)
                for source, slot in enumerate(matched):
                    attractor = streamed.attractors[slot]
                    unit = attractor / max(float(np.linalg.norm(attractor)), 1e-12)
                    similarity.append(unit @ directions.T)
                    labels.append(model.labels.index(item.labels[source]))
                bar.update()
    return DecisionData(
        np.array(existence, np.float64),
        np.array(counts, np.int64),
        np.array(similarity, np.float64).reshape(-1, len(model.labels)),
        np.array(labels, np.int64),
    )


def count_accuracy(thresholds: np.ndarray, existence: np.ndarray, counts: np.ndarray) -> float:
    """Share of mixtures whose count by the stopping rule with ``thresholds`` is right."""
    found = np.cumprod(existence >= thresholds, axis=1).sum(1)
    return float((found == counts).mean())


def balanced_naming_accuracy(
    offsets: np.ndarray, similarity: np.ndarray, true_labels: np.ndarray
) -> float:
    """Mean over the classes present of the share of their attractors named right."""
    named = (similarity + offsets).argmax(1)
    classes = np.unique(true_labels)
    if not len(classes):
        return 0.0
    return float(np.mean([(named[true_labels == c] == c).mean() for c in classes]))


def _ascend(score, start: np.ndarray, grid: np.ndarray, free: range, neutral: float) -> np.ndarray:
    """Coordinate ascent of ``score(values)`` over the coordinates ``free`` on ``grid``."""
    values = start.copy()
    for _ in range(ROUNDS):
        for k in free:
            trials = []
            for candidate in grid:
                values[k] = candidate
                trials.append((score(values), -abs(candidate - neutral), candidate))
            values[k] = max(trials)[2]
    return values


def fit_calibration(data: DecisionData, labels: int) -> tuple[Calibration, dict]:
    """The fitted rules, and a report of the fit (accuracies before and after, data sizes)."""
    slots = data.existence.shape[1]
    before = Calibration.uncalibrated(slots, labels)
    thresholds = _ascend(
        lambda t: count_accuracy(t, data.existence, data.true_counts),
        np.full(slots, DEFAULT_EXISTENCE_THRESHOLD),
        THRESHOLD_GRID,
        range(slots),
        DEFAULT_EXISTENCE_THRESHOLD,
    )
    offsets = np.zeros(labels)
    if len(data.true_labels):
        offsets = _ascend(
            lambda o: balanced_naming_accuracy(o, data.similarity, data.true_labels),
            offsets,
            OFFSET_GRID,
            range(1, labels),
            0.0,
        )
    after = Calibration(tuple(float(t) for t in thresholds), tuple(float(o) for o in offsets))
    counted = partial(count_accuracy, existence=data.existence, counts=data.true_counts)
    named = partial(
        balanced_naming_accuracy, similarity=data.similarity, true_labels=data.true_labels
    )
    report = {
        "split": "train",
        "mixtures": int(len(data.true_counts)),
        "matched_attractors": int(len(data.true_labels)),
        "count_accuracy": {
            "uncalibrated": round(counted(np.array(before.existence_thresholds)), 4),
            "calibrated": round(counted(thresholds), 4),
        },
        "balanced_naming_accuracy": {
            "uncalibrated": round(named(np.array(before.label_offsets)), 4),
            "calibrated": round(named(offsets), 4),
        },
    }
    return after, report


def calibrate_checkpoint(
    model: Model, out: str | Path, calibration: Calibration, report: dict
) -> Path:
    """Write ``model`` to ``out`` with ``calibration`` (and its fit ``report``) in its
    metadata; every other field, the weights included, is unchanged."""
    metadata = dict(model.metadata)
    metadata["calibration"] = calibration.to_metadata() | {"fit": report}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out, metadata)
    return out
