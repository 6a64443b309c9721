"""Separation metrics: SI-SNR and SDR (from fast_bss_eval), improvements, matching, counts.

Signals are ``[..., time]`` arrays at one sample rate; every value is in dB.

* **SI-SNR** is the zero-mean scale-invariant SNR of Le Roux et al., "SDR – half-baked or
  well done?" (ICASSP 2019): fast_bss_eval's SI-SDR with ``zero_mean=True``.
* **SDR** is BSS Eval's, with a 512-tap distortion filter: fast_bss_eval's SDR.

Both are computed in float64 and clamped to ``±CLAMP_DB``, so a silent estimate scores
``-CLAMP_DB`` instead of ``-inf`` and a perfect one ``+CLAMP_DB`` instead of ``+inf``.
An *improvement* (SI-SNRi, SDRi) is the metric of the estimate minus that of the mixture
itself used as the estimate, against the same reference.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import fast_bss_eval
import numpy as np
from scipy.optimize import linear_sum_assignment

#: Metrics are clamped to [-CLAMP_DB, +CLAMP_DB] dB.
CLAMP_DB = 60.0
#: Length of BSS Eval's distortion filter for SDR, in samples.
SDR_FILTER_TAPS = 512


def si_snr(estimates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Zero-mean SI-SNR (dB) of each estimate against the reference at the same position.

    ``estimates`` and ``references`` are ``[..., time]`` and broadcast against each other;
    the result has their broadcast shape without the time axis.
    """
    est, ref, shape = _flat_pairs(estimates, references)
    loss = fast_bss_eval.si_sdr_loss(est, ref, zero_mean=True, clamp_db=CLAMP_DB, pairwise=True)
    return -loss.reshape(shape)


def sdr(estimates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """BSS Eval SDR (dB, 512-tap distortion filter) of each estimate against its reference.

    Shapes as for :func:`si_snr`. Costs about 50 ms per 3-s pair on one CPU core.
    """
    est, ref, shape = _flat_pairs(estimates, references)
    loss = fast_bss_eval.sdr_loss(
        est, ref, filter_length=SDR_FILTER_TAPS, clamp_db=CLAMP_DB, pairwise=True
    )
    return -loss.reshape(shape)


def pairwise_si_snr(estimates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """SI-SNR (dB) of every estimate ``[K, time]`` against every reference ``[N, time]``.

    Returns ``[K, N]``.
    """
    est = np.asarray(estimates, np.float64)
    ref = np.asarray(references, np.float64)
    if est.shape[0] == 0 or ref.shape[0] == 0:
        return np.zeros((est.shape[0], ref.shape[0]))
    loss = fast_bss_eval.si_sdr_loss(est, ref, zero_mean=True, clamp_db=CLAMP_DB, pairwise=True)
    return -loss.T  # fast_bss_eval gives [N, K]


def improvements(
    estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray
) -> dict[str, np.ndarray]:
    """SI-SNRi and SDRi (dB) of ``estimates`` over the ``mixture [time]`` as the estimate.

    ``estimates`` and ``references`` are ``[..., time]`` and broadcast; returns
    ``{"si_snri_db": [...], "sdri_db": [...]}`` with the broadcast shape without time. An
    estimate equal to the mixture scores 0 (to rounding, ~1e-13 dB).
    """
    baseline = np.broadcast_to(mixture, np.shape(references))
    return {
        "si_snri_db": si_snr(estimates, references) - si_snr(baseline, references),
        "sdri_db": sdr(estimates, references) - sdr(baseline, references),
    }


def match_estimates(estimates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """One-to-one assignment of estimates ``[K, time]`` to references ``[N, time]``.

    The assignment maximises the total SI-SNR over matched pairs (the best permutation, by
    the Hungarian algorithm); with ``K != N`` only ``min(K, N)`` pairs are made. Returns
    ``int [N]``: the estimate matched to each reference, or ``-1`` where none is (a missed
    source).
    """
    scores = pairwise_si_snr(estimates, references)
    matched = np.full(np.shape(references)[0], -1, dtype=np.int64)
    rows, columns = linear_sum_assignment(scores, maximize=True)
    matched[columns] = rows
    return matched


def matched_or_mixture(
    estimates: np.ndarray, matched: np.ndarray, mixture: np.ndarray
) -> np.ndarray:
    """``[N, time]``: per reference its matched estimate, or the mixture where ``matched`` is
    ``-1`` (so a missed source scores 0 dB improvement)."""
    rows = [estimates[k] if k >= 0 else mixture for k in matched]
    return np.stack(rows) if rows else np.zeros((0, np.shape(mixture)[-1]), np.float32)


def confusion_matrix(
    truth: Sequence[Hashable],
    predicted: Sequence[Hashable],
    rows: Sequence[Hashable],
    columns: Sequence[Hashable],
) -> np.ndarray:
    """Counts ``int [len(rows), len(columns)]``: entry ``[i, j]`` is how many items are
    ``rows[i]`` in ``truth`` and ``columns[j]`` in ``predicted``.

    Raises ``ValueError`` for a value outside ``rows``/``columns`` or unequal lengths.
    """
    matrix = np.zeros((len(rows), len(columns)), dtype=np.int64)
    row_of = {value: i for i, value in enumerate(rows)}
    column_of = {value: j for j, value in enumerate(columns)}
    for true, guess in zip(truth, predicted, strict=True):
        if true not in row_of or guess not in column_of:
            raise ValueError(f"value outside the matrix: true {true!r}, predicted {guess!r}")
        matrix[row_of[true], column_of[guess]] += 1
    return matrix


def summarize(values: Sequence[float] | np.ndarray) -> dict[str, float | int | None]:
    """``{"n", "mean", "median"}`` of dB values (``None`` statistics when empty)."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        return {"n": 0, "mean": None, "median": None}
    return {
        "n": int(array.size),
        "mean": round(float(array.mean()), 3),
        "median": round(float(np.median(array)), 3),
    }


def _flat_pairs(
    estimates: np.ndarray, references: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Broadcast to a common shape and flatten to ``[pairs, 1, time]`` float64 each."""
    est, ref = np.broadcast_arrays(
        np.asarray(estimates, np.float64), np.asarray(references, np.float64)
    )
    shape = est.shape[:-1]
    time = est.shape[-1]
    return est.reshape(-1, 1, time), ref.reshape(-1, 1, time), shape
