"""Fullband synthesis: the model's per-hop gains applied to the mixture at the device rate.

The model analyses the mixture at its own rate (16 kHz, after the input resampler) and hands
out, per hop, complex gains on its spectrum (``StepOutput.gains``). What the user hears is
synthesised here, at the device rate ``R``, from the device-rate mixture, so nothing is
resampled on the way out and the band above the model's Nyquist frequency is kept:

* **Frames** (:class:`FrameGrid`). Device frame ``t`` spans the same stretch of time as the
  model's STFT frame ``t``, which the input resampler has delayed by ``d`` model samples: it
  starts at ``s_t = round((t·hop − (window − hop) − d) · R / model_rate)`` and is
  ``ceil(window · R / model_rate)`` device samples long (768 at 48 kHz, 706 at 44.1 kHz, 256
  at 16 kHz). At 48 kHz the hop is a whole 384 samples. At 44.1 kHz 8 ms is 352.8 samples: the
  starts are rounded to the nearest sample, so hops run 353, 353, 352, 353, 353 and repeat
  every 5 frames (1764 samples, 40 ms); no frame is more than half a sample off the model's.
* **Spectrum.** Each frame is windowed (square-root Hann) and transformed with an FFT of the
  smallest size ``≥`` the frame whose factors are 2, 3 and 5 (768 at 48 kHz; 720 at 44.1 kHz,
  where 706 = 2·353 would take a slow prime-size transform), zero-padded.
* **Gains** (:func:`device_gains`). A device bin below :data:`EXTENSION_FROM_HZ` takes the
  model's complex gain at its frequency (linear interpolation between the model's bins, 62.5 Hz
  apart; at 48 and 16 kHz the bins coincide). From :data:`EXTENSION_FROM_HZ` up, where the input
  resampler attenuates what the model hears (−0.17 dB at 6 kHz, −6 dB at 6.8 kHz, nothing from
  8 kHz), every bin takes one real gain per output and frame: the RMS of the output's gain
  magnitudes over :data:`REFERENCE_BAND_HZ`, weighted by the mixture's power in those bins — the
  share of the top of the heard band that the output keeps. At the model rate (no resampler)
  every bin is direct and the synthesis is the model's own.
* **Overlap-add** with a synthesis window normalised by the frames' summed squared analysis
  windows (one table row per frame of the hop pattern), so that unit gains give back the input
  exactly whatever the pattern.

Output sample ``n`` is device input sample ``n`` synthesised: the synthesis adds no delay of
its own. Sample ``n`` is final once the frame that starts after it is the next to come, i.e.
after frame ``t`` every sample before ``s_{t+1}`` is (:meth:`FrameGrid.start`); what frame
``t`` waits for is the last model sample of its hop (:mod:`rtsep.engine.latency`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import numpy as np

from .fullband_kernels import compile_kernels, masked_spectra, overlap_add

#: From this frequency up (Hz), device bins take the extended gain instead of the model's own:
#: the 1 ms input resampler is flat within 0.17 dB below it and -6 dB at 6.8 kHz.
EXTENSION_FROM_HZ = 6000.0
#: The band (Hz) whose gains, weighted by the mixture's power, give the extended gain.
REFERENCE_BAND_HZ = (4000.0, 6000.0)
#: Floor of the reference weights, relative to the band's mean power in the frame: in a
#: silent band the extended gain is the plain RMS of the band's gains.
WEIGHT_FLOOR = 1e-3


def fft_size(samples: int) -> int:
    """The smallest size ``≥ samples`` whose only prime factors are 2, 3 and 5."""
    size = samples
    while True:
        rest = size
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return size
        size += 1


@dataclass(frozen=True)
class FrameGrid:
    """Where the device frames lie: aligned with the model's STFT frames.

    Args:
        device_rate_hz: ``R``.
        model_rate_hz: the model's rate.
        window_samples, hop_samples: the model's STFT window and hop (model samples).
        analysis_delay: the input resampler's delay in model samples (0 at the model rate).
    """

    device_rate_hz: int
    model_rate_hz: int
    window_samples: int
    hop_samples: int
    analysis_delay: Fraction

    @cached_property
    def ratio(self) -> Fraction:
        """Device samples per model sample."""
        return Fraction(self.device_rate_hz, self.model_rate_hz)

    @cached_property
    def frame_samples(self) -> int:
        """Device frame length: the model's window at the device rate, rounded up."""
        return math.ceil(self.window_samples * self.ratio)

    @cached_property
    def period_frames(self) -> int:
        """Frames after which the hop pattern repeats (1 at 48 kHz, 5 at 44.1 kHz)."""
        return (self.hop_samples * self.ratio).denominator

    @cached_property
    def period_samples(self) -> int:
        """Device samples those frames span."""
        return (self.hop_samples * self.ratio).numerator

    def start(self, frame: int) -> int:
        """First device sample of frame ``frame`` (negative before the stream starts)."""
        cycle, phase = divmod(frame, self.period_frames)
        return self._pattern[phase] + cycle * self.period_samples

    @cached_property
    def _pattern(self) -> tuple[int, ...]:
        """The starts of frames ``0 … period_frames - 1``, computed exactly once."""
        first = -(self.window_samples - self.hop_samples) - self.analysis_delay
        return tuple(
            math.floor((first + t * self.hop_samples) * self.ratio + Fraction(1, 2))
            for t in range(self.period_frames)
        )


@dataclass(frozen=True)
class Frames:
    """Consecutive device frames of the mixture, ready for :meth:`FullbandSynthesis.synthesise`.

    ``spectra complex64 [k, bins]``; ``phases int [k]`` (frame index mod the hop pattern's
    period); ``hops [k]`` (device samples each frame finalises); ``mixture float32 [n]`` (the
    device samples those frames finalise, ``n = sum(hops)``).
    """

    spectra: np.ndarray
    phases: np.ndarray
    hops: np.ndarray
    mixture: np.ndarray


class FullbandSynthesis:
    """Outputs at the device rate from the model's gains (see the module docstring).

    Feed the device-rate mono mixture with :meth:`push`; per model chunk of ``k`` hops take
    :meth:`next_frames` ``(k)`` once, then :meth:`synthesise` the outputs from the chunk's gains
    and their overlap-add carry (one per output, ``[N, frame]``, owned by the caller so that
    outputs can change, be rewound or crossfaded as the backend's per-output state is).

    Args:
        device_rate_hz: ``R``.
        model_rate_hz, window_samples, hop_samples: the model's rate and STFT.
        analysis_delay: the input resampler's delay in model samples.
    """

    def __init__(
        self,
        device_rate_hz: int,
        model_rate_hz: int,
        window_samples: int,
        hop_samples: int,
        analysis_delay: float,
    ) -> None:
        delay = Fraction(analysis_delay).limit_denominator(1000)
        self.grid = g = FrameGrid(device_rate_hz, model_rate_hz, window_samples, hop_samples, delay)
        self.frame_samples = g.frame_samples
        self.fft_samples = fft_size(g.frame_samples)
        self.model_bins = window_samples // 2 + 1
        self._window = np.sin(np.pi * np.arange(g.frame_samples) / g.frame_samples)
        self._window32 = self._window.astype(np.float32)
        self._synthesis = self._synthesis_windows()
        self._gain_map = GainMap(
            self.model_bins,
            model_rate_hz / window_samples,
            self.fft_samples,
            device_rate_hz,
            extend=device_rate_hz != model_rate_hz,
        )
        compile_kernels()
        self.first_sample = g.start(0)  # output samples before 0 are not the input's
        # The pushed mixture not yet consumed is _buffer[_offset:_filled], starting at device
        # sample _history_start; the buffer is reused (compacted, grown when a push needs it)
        # so that a push allocates nothing in the steady state.
        lead = max(0, -self.first_sample)
        self._buffer = np.zeros(lead + 8 * g.frame_samples, np.float32)
        self._offset, self._filled = 0, lead
        self._history_start = self.first_sample  # device index of _buffer[_offset]
        self._next_frame = 0

    @property
    def _history(self) -> np.ndarray:
        """The pushed, not yet consumed mixture (a view)."""
        return self._buffer[self._offset : self._filled]

    def push(self, mono: np.ndarray) -> None:
        """Append device samples ``float32 [frames]`` of the mono mixture."""
        mono = np.asarray(mono, np.float32)
        if self._filled + mono.size > self._buffer.size:
            live = self._filled - self._offset
            if live + mono.size > self._buffer.size:
                self._buffer = np.resize(self._buffer, 2 * (live + mono.size))
            self._buffer[:live] = self._buffer[self._offset : self._filled]
            self._offset, self._filled = 0, live
        self._buffer[self._filled : self._filled + mono.size] = mono
        self._filled += mono.size

    def carry(self, outputs: int) -> np.ndarray:
        """A fresh overlap-add carry for ``outputs`` outputs: ``float32 [outputs, frame]``."""
        return np.zeros((outputs, self.fft_samples), np.float32)

    def next_frames(self, count: int) -> Frames:
        """The next ``count`` frames of the pushed mixture (``count`` model hops have run)."""
        g, size, base = self.grid, self.frame_samples, self._history_start
        first = self._next_frame
        starts = [g.start(t) - base for t in range(first, first + count + 1)]
        if starts[-2] + size > self._history.size:
            raise RuntimeError("fullband synthesis ran ahead of the device input")
        frames = np.empty((count, size), np.float32)
        for index, start in enumerate(starts[:-1]):
            np.multiply(self._history[start : start + size], self._window32, out=frames[index])
        spectra = np.fft.rfft(frames, n=self.fft_samples, axis=-1)
        mixture = self._history[starts[0] : starts[-1]].copy()
        self._offset += starts[-1]
        self._history_start = base + starts[-1]
        self._next_frame += count
        phases = np.array([t % g.period_frames for t in range(first, first + count)], np.int64)
        hops = np.array([b - a for a, b in zip(starts[:-1], starts[1:])], np.int64)
        return Frames(spectra, phases, hops, mixture)

    def synthesise(
        self, frames: Frames, gains: np.ndarray, carry: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Outputs of ``frames`` under the model's ``gains complex64 [N, k, model bins]``.

        Returns ``(outputs float32 [N, n], new carry)``: ``outputs`` span the same device
        samples as ``frames.mixture``. ``carry`` is not modified.
        """
        gains = np.ascontiguousarray(gains, np.complex64)
        spectra = self._gain_map(gains, frames.spectra)
        pieces = np.fft.irfft(spectra, n=self.fft_samples, axis=-1)
        out = np.empty((gains.shape[0], int(frames.hops.sum())), np.float32)
        new_carry = np.empty_like(carry)
        overlap_add(pieces, self._synthesis, frames.phases, frames.hops, carry, out, new_carry)
        return out, new_carry

    def _synthesis_windows(self) -> np.ndarray:
        """``float32 [period, fft]``: per frame phase, the analysis window divided by the summed
        squared analysis windows of every frame over its samples (zero past the frame)."""
        g, size = self.grid, self.frame_samples
        reach = -(-size // (g.period_samples // g.period_frames)) + 1  # frames one overlaps
        table = np.zeros((g.period_frames, self.fft_samples), np.float32)
        for phase in range(g.period_frames):
            frame = phase + g.period_frames * (reach + 1)  # far from the stream's start
            origin = g.start(frame)
            total = np.zeros(size)
            for other in range(frame - reach, frame + reach + 1):
                offset = g.start(other) - origin
                lo, hi = max(0, offset), min(size, offset + size)
                if lo < hi:
                    total[lo:hi] += self._window[lo - offset : hi - offset] ** 2
            table[phase, :size] = self._window / total
        return table


class GainMap:
    """The model's gains per hop, on the device bins, times the mixture's spectrum (see the
    module docstring; the arithmetic is :func:`~rtsep.engine.fullband_kernels.masked_spectra`).

    Args:
        model_bins: bins of the model's STFT; ``model_bin_hz`` their spacing.
        fft_samples, device_rate_hz: the device FFT (``fft_samples // 2 + 1`` bins).
        extend: whether bins from :data:`EXTENSION_FROM_HZ` up take the extended gain (else
            every bin takes the model's, interpolated).
    """

    def __init__(
        self,
        model_bins: int,
        model_bin_hz: float,
        fft_samples: int,
        device_rate_hz: int,
        extend: bool,
    ) -> None:
        hz = np.arange(fft_samples // 2 + 1) * device_rate_hz / fft_samples
        self.bins = hz.size
        self.direct = int(np.searchsorted(hz, EXTENSION_FROM_HZ)) if extend else hz.size
        position = np.minimum(hz[: self.direct] / model_bin_hz, model_bins - 1)
        self._low = np.minimum(np.floor(position).astype(np.int64), model_bins - 2)
        self._fraction = (position - self._low).astype(np.float32)
        # Device bins on the model's own bins (48 kHz, 16 kHz): a slice, no interpolation.
        self._same_bins = bool(np.all(position == np.arange(self.direct)))
        low, high = REFERENCE_BAND_HZ
        self._reference = np.flatnonzero((hz >= low) & (hz < high))

    def __call__(self, gains: np.ndarray, spectra: np.ndarray) -> np.ndarray:
        """``gains complex64 [N, k, model bins]`` (C-contiguous), mixture ``spectra [k, bins]``
        → the outputs' spectra ``complex64 [N, k, bins]``: device gains times ``spectra``."""
        out = np.empty((*gains.shape[:2], self.bins), np.complex64)
        masked_spectra(
            gains,
            spectra,
            self._low,
            self._fraction,
            self._same_bins,
            self._reference,
            WEIGHT_FLOOR,
            out,
        )
        return out
