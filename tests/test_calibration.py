"""Calibrated decision rules: per-slot EDA stopping thresholds and per-label naming offsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_corpus import RATE_HZ, SOUNDS, write_corpus

import rtsep
from rtsep.cli import main as cli
from rtsep.engine.tracker import AttractorTracker
from rtsep.evaluate.calibration import (
    DecisionData,
    balanced_naming_accuracy,
    count_accuracy,
    fit_calibration,
)
from rtsep.model.calibration import Calibration


def _count_data(seed: int = 0) -> DecisionData:
    """Existence of 4 slots for 1-4 sources where slot k+1 of a k-source mixture sits at 0.6-0.8
    (an uncalibrated 0.5 overcounts) and real slots at 0.85-1."""
    rng = np.random.default_rng(seed)
    rows, counts = [], []
    for n in range(1, 5):
        for _ in range(50):
            row = rng.uniform(0.0, 0.3, 4)
            row[:n] = rng.uniform(0.85, 1.0, n)
            if n < 4:
                row[n] = rng.uniform(0.6, 0.8)
            rows.append(row)
            counts.append(n)
    return DecisionData(np.array(rows), np.array(counts), np.zeros((0, 3)), np.zeros(0, int))


def test_uncalibrated_rule_stops_at_the_first_slot_below_one_half():
    rule = Calibration.uncalibrated(max_sources=4, labels=3)
    assert rule.source_count([0.9, 0.8, 0.2, 0.9, 0.1]) == 2
    assert rule.source_count([0.4, 0.9, 0.9, 0.9, 0.9]) == 0
    assert rule.source_count([0.9, 0.9, 0.9, 0.9, 0.9]) == 4


def test_fitted_thresholds_count_what_one_half_overcounts():
    data = _count_data()
    uncalibrated = np.full(4, 0.5)
    assert count_accuracy(uncalibrated, data.existence, data.true_counts) < 0.3
    calibration, report = fit_calibration(data, labels=3)
    assert all(0.8 <= t <= 0.85 for t in calibration.existence_thresholds[1:])
    assert report["count_accuracy"]["calibrated"] == 1.0
    held_out = _count_data(seed=1)
    thresholds = np.array(calibration.existence_thresholds)
    assert count_accuracy(thresholds, held_out.existence, held_out.true_counts) == 1.0
    assert calibration.label_offsets == (0.0, 0.0, 0.0)  # no attractors: nothing to fit


def test_fitted_offsets_undo_a_bias_against_one_label():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 100)
    similarity = rng.uniform(0.0, 0.5, (300, 3))
    similarity[np.arange(300), truth] += 0.3
    unbiased = balanced_naming_accuracy(np.zeros(3), similarity, truth)
    similarity[:, 2] -= 0.35  # label 2 is always under-rated: most of its attractors misnamed
    data = DecisionData(np.ones((1, 4)), np.array([4]), similarity, truth)
    before = balanced_naming_accuracy(np.zeros(3), similarity, truth)
    calibration, report = fit_calibration(data, labels=3)
    offsets = np.array(calibration.label_offsets)
    assert offsets[0] == 0.0 and offsets[2] - offsets[1] > 0.2
    assert before < unbiased - 0.15
    assert report["balanced_naming_accuracy"]["calibrated"] >= unbiased


def test_calibration_travels_in_the_checkpoint_and_steers_naming_and_counting(tmp_path: Path):
    model = rtsep.load_model()
    directions = model.label_directions()
    attractors = directions + 0.01  # each close to its own label
    assert model.attractor_labels(attractors) == model.labels
    offsets = (0.0, 0.0, 5.0)  # so large that every attractor is named by the last label
    rule = Calibration((0.5, 0.9, 0.5, 0.5), offsets)
    path = tmp_path / "calibrated.pt"
    model.save(path, dict(model.metadata) | {"calibration": rule.to_metadata()})
    calibrated = rtsep.load_model(path)
    assert calibrated.calibration == rule
    assert calibrated.attractor_labels(attractors) == [model.labels[2]] * 3
    tracker = AttractorTracker(4, count_of=calibrated.calibration.source_count)
    vectors = np.eye(4, calibrated.config.embedding_dim, dtype=np.float32)
    tracker.update(vectors, np.array([0.95, 0.8, 0.9, 0.1, 0.0]))
    assert tracker.channels[0].reference is not None and tracker.channels[1].reference is None


def test_a_calibration_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="4 EDA slots and 3 labels"):
        Calibration.from_metadata(
            {"calibration": {"existence_thresholds": [0.5], "label_offsets": [0, 0, 0]}}, 4, 3
        )


def test_cli_writes_a_calibrated_copy_with_the_same_weights(tmp_path: Path, capsys):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, SOUNDS, RATE_HZ)
    out = tmp_path / "calibrated.pt"
    argv = ["calibrate", "--corpus", str(corpus), "--out", str(out), "--mixtures", "3"]
    assert cli.main([*argv, "--seconds", "1", "--no-progress"]) == 0
    assert str(out) in capsys.readouterr().out
    calibrated = rtsep.load_model(out)
    fit = calibrated.metadata["calibration"]["fit"]
    assert fit["split"] == "train" and fit["mixtures"] == 3 * calibrated.config.max_sources
    shipped = rtsep.load_model()
    for name, tensor in shipped.network.state_dict().items():
        torch.testing.assert_close(calibrated.network.state_dict()[name], tensor)
    assert calibrated.metadata.get("training") == shipped.metadata.get("training")
