"""The fullband synthesis' per-hop arithmetic as numba kernels (:mod:`rtsep.engine.fullband`).

Two loops that numpy would run as a few dozen small array operations per hop (≈ 2 µs each on
the 2-core VM, more than the arithmetic): the device bins' gains times the mixture's spectrum,
and the windowed overlap-add. Compiled with ``cache=True`` when a synthesis is built, before
any audio runs (:func:`compile_kernels`).
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def masked_spectra(
    gains, spectra, low, fraction, same_bins, reference, weight_floor, out
):  # pragma: no cover (jitted)
    """``out[n, f] = device gains × spectra[f]`` for every output ``n`` and frame ``f``.

    ``gains complex64 [N, k, model bins]``; ``spectra complex64 [k, bins]``; device bin ``j``
    below ``D = low.size`` takes ``gains[low[j]] · (1 − fraction[j]) + gains[low[j] + 1] ·
    fraction[j]`` (``gains[j]`` with ``same_bins``); bins from ``D`` up take the RMS of those
    gains' magnitudes over the ``reference`` bins, weighted by the spectrum's power there
    plus ``weight_floor`` × its mean; ``out complex64 [N, k, bins]``.
    """
    outputs, frames = gains.shape[0], gains.shape[1]
    bins = spectra.shape[1]
    direct = low.size
    for f in range(frames):
        mean = 0.0
        for r in reference:
            mean += spectra[f, r].real ** 2 + spectra[f, r].imag ** 2
        floor = weight_floor * mean / max(1, reference.size) + 1e-30
        for n in range(outputs):
            for j in range(direct):
                if same_bins:
                    gain = gains[n, f, j]
                else:
                    gain = gains[n, f, low[j]] * (1 - fraction[j])
                    gain += gains[n, f, low[j] + 1] * fraction[j]
                out[n, f, j] = gain * spectra[f, j]
            if direct == bins:
                continue
            kept = 0.0
            total = 0.0
            for r in reference:
                if same_bins:
                    gain = gains[n, f, r]
                else:
                    gain = gains[n, f, low[r]] * (1 - fraction[r])
                    gain += gains[n, f, low[r] + 1] * fraction[r]
                weight = spectra[f, r].real ** 2 + spectra[f, r].imag ** 2 + floor
                kept += (gain.real**2 + gain.imag**2) * weight
                total += weight
            extended = math.sqrt(kept / total)
            for j in range(direct, bins):
                out[n, f, j] = extended * spectra[f, j]


@numba.njit(cache=True, nogil=True)
def overlap_add(pieces, windows, phases, hops, carry, out, new_carry):  # pragma: no cover
    """Window frames and overlap-add them onto ``carry``.

    ``pieces float32 [N, k, fft]`` (frame ``f`` windowed by ``windows[phases[f]]``), ``carry
    float32 [N, fft]`` (the unfinished samples from the frame's start on; not modified);
    frame ``f`` finalises ``hops[f]`` samples, written to ``out [N, sum(hops)]``;
    ``new_carry [N, fft]`` receives what is left unfinished.
    """
    outputs, frames, size = pieces.shape
    new_carry[:] = carry
    position = 0
    for f in range(frames):
        window = windows[phases[f]]
        hop = hops[f]
        for n in range(outputs):
            for i in range(size):
                new_carry[n, i] += pieces[n, f, i] * window[i]
            for i in range(hop):
                out[n, position + i] = new_carry[n, i]
            for i in range(size - hop):
                new_carry[n, i] = new_carry[n, i + hop]
            for i in range(size - hop, size):
                new_carry[n, i] = 0.0
        position += hop


def compile_kernels() -> None:
    """Compile (or load from numba's cache) both kernels now, before any audio runs, for the
    argument types the synthesis passes."""
    gains = np.zeros((1, 1, 3), np.complex64)
    spectra = np.zeros((1, 4), np.complex64)
    index = np.zeros(2, np.int64)
    fraction = np.zeros(2, np.float32)
    for same in (True, False):
        out = np.zeros((1, 1, 4), np.complex64)
        masked_spectra(gains, spectra, index, fraction, same, index, 1e-3, out)
    pieces = np.zeros((1, 1, 4), np.float32)
    windows = np.ones((1, 4), np.float32)
    carry = np.zeros((1, 4), np.float32)
    hops = np.ones(1, np.int64)
    overlap_add(pieces, windows, index[:1].copy(), hops, carry, carry.copy(), carry.copy())
