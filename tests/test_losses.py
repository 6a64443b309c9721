"""Training losses: SI-SNR (capped and not), onset-ordered PIT, existence targets."""

from __future__ import annotations

import math

import pytest
import torch

from rtsep.train.losses import (
    existence_loss,
    onset_ordered_pit,
    pairwise_level_error_db,
    pairwise_neg_compressed_snr,
    pairwise_neg_si_snr,
    pairwise_neg_snr,
)


def _signals(sources: int, samples: int = 4000, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, sources, samples, generator=generator, dtype=torch.float64)


def test_si_snr_matches_its_definition() -> None:
    target = _signals(1)
    noise = _signals(1, seed=1)
    estimate = 0.5 * target + 0.1 * noise
    t = target - target.mean()
    e = estimate - estimate.mean()
    projection = (e * t).sum() / (t * t).sum() * t
    expected = 10 * math.log10(float((projection**2).sum() / ((e - projection) ** 2).sum()))
    assert float(-pairwise_neg_si_snr(estimate, target)) == pytest.approx(expected, abs=1e-6)


def test_si_snr_ignores_scale_and_offset() -> None:
    target = _signals(1)
    estimate = target + 0.3 * _signals(1, seed=2)
    moved = 7.0 * estimate + 0.25
    assert torch.allclose(
        pairwise_neg_si_snr(moved, target), pairwise_neg_si_snr(estimate, target), atol=1e-9
    )


def test_cap_bounds_the_reward_of_a_perfect_estimate() -> None:
    """The identity on a one-source mixture must not outweigh real separations (see losses)."""
    target = _signals(1).float()
    uncapped = -float(pairwise_neg_si_snr(0.98 * target, target))
    capped = -float(pairwise_neg_si_snr(0.98 * target, target, max_db=30.0))
    assert uncapped > 60.0
    assert abs(capped - 30.0) < 0.01


def test_cap_barely_changes_an_imperfect_estimate() -> None:
    target = _signals(1)
    estimate = target + 0.5 * _signals(1, seed=3)  # about 6 dB
    plain = -float(pairwise_neg_si_snr(estimate, target))
    capped = -float(pairwise_neg_si_snr(estimate, target, max_db=30.0))
    assert 5.0 < plain < 7.0
    assert 0.0 < plain - capped < 0.05  # 10*log10(1 + 10**-3 * 10**0.6) = 0.017 dB


def test_pit_follows_onset_order_and_ignores_padding() -> None:
    # Output k against source j: output 0 fits source 1 best, output 1 fits source 0 best.
    pairwise = torch.tensor([[[-5.0, -20.0, 0.0], [-20.0, -5.0, 0.0], [0.0, 0.0, 0.0]]])
    count = torch.tensor([2])
    # Sources begin together: any order is allowed, so the best (diagonal swap) wins.
    tied = torch.tensor([[0, 0, 10**6]])
    loss, permutation = onset_ordered_pit(pairwise, count, tied)
    assert permutation[0, :2].tolist() == [1, 0]
    assert float(loss[0]) == -20.0
    # Source 0 begins first: output 0 must take it, whatever it fits better.
    ordered = torch.tensor([[0, 800, 10**6]])
    loss, permutation = onset_ordered_pit(pairwise, count, ordered)
    assert permutation[0, :2].tolist() == [0, 1]
    assert float(loss[0]) == -5.0
    # Within the tolerance the same onsets count as a tie again; beyond it they do not.
    loss, permutation = onset_ordered_pit(pairwise, count, ordered, tolerance_samples=800)
    assert permutation[0, :2].tolist() == [1, 0]
    assert float(loss[0]) == -20.0
    loss, permutation = onset_ordered_pit(pairwise, count, ordered, tolerance_samples=799)
    assert permutation[0, :2].tolist() == [0, 1]


def test_existence_targets_are_heard_ones_then_zeros() -> None:
    heard = torch.tensor([[2]])
    right = torch.tensor([[[20.0, 20.0, -20.0, -20.0]]])
    wrong = torch.tensor([[[20.0, -20.0, 20.0, -20.0]]])
    assert float(existence_loss(right, heard)) < 1e-6
    assert float(existence_loss(wrong, heard)) > 5.0


def test_snr_scores_the_level_that_si_snr_ignores() -> None:
    target = _signals(1)
    quiet = 1e-3 * target  # the right shape, 60 dB too quiet
    assert float(-pairwise_neg_si_snr(quiet, target)) > 50.0  # perfect up to EPS
    assert abs(float(-pairwise_neg_snr(quiet, target))) < 0.01  # no better than silence
    assert float(-pairwise_neg_snr(target, target, max_db=30.0)) == pytest.approx(30.0, abs=0.01)


def test_pairwise_snr_pairs_every_estimate_with_every_target() -> None:
    targets = _signals(2)
    estimates = targets.flip(1) + 0.1 * _signals(2, seed=4)
    pairwise = -pairwise_neg_snr(estimates, targets)
    assert pairwise.shape == (1, 2, 2)
    assert pairwise[0, 0, 1] > 15.0 and pairwise[0, 1, 0] > 15.0  # crossed pairs match
    assert pairwise[0, 0, 0] < 1.0 and pairwise[0, 1, 1] < 1.0


def test_level_error_is_the_energy_ratio_in_db_either_way() -> None:
    targets = _signals(2)
    estimates = torch.stack([1e-3 * targets[:, 0], 2.0 * targets[:, 1]], dim=1)
    error = pairwise_level_error_db(estimates, targets)
    assert error.shape == (1, 2, 2)
    assert float(error[0, 0, 0]) == pytest.approx(60.0, abs=1e-3)  # 60 dB too quiet
    assert float(error[0, 1, 1]) == pytest.approx(20 * math.log10(2.0), abs=1e-6)  # too loud
    silent = pairwise_level_error_db(torch.zeros_like(targets), torch.zeros_like(targets))
    assert torch.equal(silent, torch.zeros_like(silent))  # no NaN where both are silent


def test_si_snr_level_loss_is_si_snr_plus_the_weighted_level_error() -> None:
    from rtsep.train.trainer import SIGNAL_LOSSES

    target = _signals(1)
    quiet = 1e-3 * target  # perfect shape, 60 dB too quiet
    loss = SIGNAL_LOSSES["si_snr_level"](quiet, target, 30.0, 0.5)
    shape = pairwise_neg_si_snr(quiet, target, 30.0)
    assert float(loss - shape) == pytest.approx(0.5 * 60.0, abs=1e-3)
    assert float(SIGNAL_LOSSES["si_snr_level"](target, target, 30.0, 0.5)) == pytest.approx(
        -30.0, abs=0.01
    )  # at the right level only the capped SI-SNR remains


def test_compressed_spectral_snr_pairs_every_estimate_with_every_target_and_is_capped() -> None:
    targets = _signals(3, samples=8000)
    perfect = pairwise_neg_compressed_snr(targets, targets, 30.0)
    assert perfect.shape == (1, 3, 3)
    assert torch.diagonal(perfect, dim1=1, dim2=2) == pytest.approx(-30.0, abs=0.01)
    off_diagonal = perfect[0][~torch.eye(3, dtype=torch.bool)]
    assert bool((off_diagonal > -5.0).all())  # other sources score as poor estimates
    # Half the amplitude: compressed magnitudes at 0.5^0.3 of the target's, so with the phase
    # right the error is (1 - 0.5^0.3)^2 of the target's compressed energy.
    half = pairwise_neg_compressed_snr(0.5 * targets, targets)
    expected = 10 * math.log10((1 - 0.5**0.3) ** 2)
    assert torch.diagonal(half, dim1=1, dim2=2) == pytest.approx(expected, abs=0.05)


def test_the_spectral_term_adds_its_weighted_score_to_the_waveform_loss(tmp_path) -> None:
    from synthetic_corpus import HELD_OUT, SOUNDS, write_corpus

    from rtsep.train import Trainer, TrainSettings

    write_corpus(tmp_path / "corpus", SOUNDS, 16000)
    common = dict(
        corpus=str(tmp_path / "corpus"),
        validation_sources=sorted(HELD_OUT),
        signal_loss="si_snr",
        validation_mixtures=1,
    )
    plain = Trainer(TrainSettings(run_dir=str(tmp_path / "a"), **common)).signal_loss
    spectral = Trainer(
        TrainSettings(run_dir=str(tmp_path / "b"), spectral_weight=0.5, **common)
    ).signal_loss
    estimates, targets = _signals(2, seed=1).float(), _signals(2, seed=2).float()
    added = spectral(estimates, targets) - plain(estimates, targets)
    expected = 0.5 * pairwise_neg_compressed_snr(estimates, targets, 30.0)
    assert torch.allclose(added, expected, atol=1e-5)
