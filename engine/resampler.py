"""Streaming sample-rate conversion between the device rate and the model rate.

Two implementations of one interface (``process(block)``, ``flush()``, ``delay_samples``):

* :class:`PolyphaseResampler` (``"polyphase"``, the default, for live audio): a linear-phase
  polyphase FIR whose kernel is compiled by numba (``cache=True``) when the resampler is built,
  before any audio runs. Its delay is exactly 1 ms each way, constant at every frequency and
  for any block size; the stop band (from the lower rate's Nyquist frequency up) is rejected
  by ≥ 70 dB (designed 75, measured ≥ 73.7); the pass band is flat within ±0.001 dB to 5 kHz
  and −6 dB at 6.8 kHz (16 kHz model rate). :mod:`rtsep.engine.polyphase` has the design.
* :class:`SoxrResampler` (``"soxr"``, for offline quality): soxr's variable-rate mode, flat to
  0.45 × the lower rate with a stop band below −110 dB, but ≈ 13–15 ms of delay each way.

``make_resampler(in, out, channels, kind)`` builds either.

The rest of this docstring is about soxr.

Why soxr's variable-rate mode (``vr=True``): in its fixed-rate modes (QQ…VHQ) soxr emits output
in bursts of its internal DFT blocks, so the output lags the input by an amount that swings with
every call (HQ, 256-frame blocks: 106…641 samples at 44.1→16 kHz, 308…2501 at 16→44.1 kHz).
A real-time engine must budget for the worst case of that swing. The variable-rate mode lags by a
constant amount instead (measured, in output samples, for any block size from 1 to 4096 frames):

=================  ==================  =========================  ===========================
rate (Hz)          constant lead       ``delay_samples``           fixed-rate HQ lag, 256 blk
=================  ==================  =========================  ===========================
44100 → 16000      219 (13.7 ms)       221.0 (13.8 ms)            106…641
48000 → 16000      201 (12.6 ms)       203.0 (12.7 ms)            97…585
16000 → 44100      662 (15.0 ms)       661.5 (15.0 ms)            308…2501
16000 → 48000      720 (15.0 ms)       719.5 (15.0 ms)            308…1756
=================  ==================  =========================  ===========================

Its pass band is flat (±0.05 dB) to 0.45 × the lower rate and its stop band is below −110 dB; the
quality argument of soxr is ignored in this mode. The down-sampling filter is not linear-phase:
its group delay rises from 1.6 output samples at low frequencies to 5.3 at 6 kHz (16 kHz out).

soxr trims its filter delay from the start of the stream, so a fresh ``ResampleStream`` returns
*fewer* samples than ``frames × ratio`` (the "lead" above) rather than delayed ones. This class
turns that count lag into a plain delay: it emits the lead as zeros on the first call, so every
call returns about ``frames × out_rate / in_rate`` samples and an input event appears
``delay_samples`` output samples later than its ideal position.
"""

from __future__ import annotations

import math
from typing import Literal, Protocol

import numpy as np
import soxr

from .polyphase import compile_kernel, design, polyphase_kernel

Kind = Literal["polyphase", "soxr"]
KINDS: tuple[str, ...] = ("polyphase", "soxr")

# soxr ignores the quality setting in variable-rate mode; "HQ" names what is asked for.
_QUALITY = "HQ"
# Input fed through the probe instance: long enough for soxr's start-up (≤ 1320 input samples
# at 96 kHz) plus two whole periods of the rate ratio, where the count lag repeats.
_PROBE_S = 0.05


class Resampler(Protocol):
    """What the engine needs of a streaming resampler (both classes here)."""

    in_rate_hz: int
    out_rate_hz: int
    channels: int
    delay_samples: float  # output samples, constant

    def process(self, block: np.ndarray) -> np.ndarray: ...

    def flush(self) -> np.ndarray: ...

    def input_needed(self, outputs: int) -> int: ...


def make_resampler(
    in_rate_hz: int, out_rate_hz: int, channels: int, kind: str = "polyphase"
) -> Resampler:
    """A streaming resampler of ``kind`` (``"polyphase"``: 1 ms, for live audio; ``"soxr"``:
    ≈ 14 ms, for offline quality). Raises ``ValueError`` naming the kinds for another."""
    if kind == "polyphase":
        return PolyphaseResampler(in_rate_hz, out_rate_hz, channels)
    if kind == "soxr":
        return SoxrResampler(in_rate_hz, out_rate_hz, channels)
    raise ValueError(f"unknown resampler {kind!r}: use one of {', '.join(KINDS)}")


class _Streaming:
    """What both resamplers share: arguments checked, ``delay_s``, ``process`` guarded."""

    delay_samples: float

    def __init__(self, in_rate_hz: int, out_rate_hz: int, channels: int) -> None:
        if in_rate_hz <= 0 or out_rate_hz <= 0 or channels < 1:
            raise ValueError(
                f"{type(self).__name__} needs positive rates and channels >= 1, got "
                f"{in_rate_hz} Hz -> {out_rate_hz} Hz, {channels} channels"
            )
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        self.channels = channels
        self._finished = False

    @property
    def delay_s(self) -> float:
        """``delay_samples`` in seconds."""
        return self.delay_samples / self.out_rate_hz

    def _check(self, block: np.ndarray) -> None:
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(
                f"expected a [channels={self.channels}, frames] block, got shape {block.shape}"
            )
        if self._finished:
            raise RuntimeError(f"{type(self).__name__}.process() after flush(): create a new one")


class PolyphaseResampler(_Streaming):
    """Resample ``[channels, frames]`` float32 blocks with a linear-phase polyphase FIR.

    Supports being fed any number of frames at a time; each call returns every output sample
    whose inputs have all arrived, so the stream's output is the same, bit for bit, however it
    is cut into blocks. After ``n`` input frames ``ceil(n × out_rate_hz / in_rate_hz)`` samples
    have come out in total; ``flush()`` returns the tail, so the whole stream is
    ``round(n × ratio + delay_samples)`` samples long. Equal rates are an identity: the block
    itself is returned (no copy) and ``delay_samples`` is 0.

    ``delay_samples`` (output samples, exact; ``delay_s`` = ``delay_ms`` / 1000) is the filter's
    group delay: input at time ``t`` seconds comes out at output index
    ``t × out_rate_hz + delay_samples``, at every frequency. ``delay_ms`` trades delay for
    the width of the transition band (see :func:`rtsep.engine.polyphase.design`).

    Building one designs the filter (≤ 1 ms) and compiles the numba kernel (≈ 1.5 s the first
    time in a fresh environment, then loaded from numba's cache), so no compilation happens
    while audio runs. ``process`` allocates its result; it runs on the engine's worker, not on
    the audio thread.
    """

    def __init__(
        self, in_rate_hz: int, out_rate_hz: int, channels: int, delay_ms: float = 1.0
    ) -> None:
        super().__init__(in_rate_hz, out_rate_hz, channels)
        self._given = 0  # input frames so far
        self._taken = 0  # output samples so far
        if in_rate_hz == out_rate_hz:
            self.filter = None
            self.delay_samples = 0.0
            return
        self.filter = design(in_rate_hz, out_rate_hz, delay_ms / 1000.0)
        self.delay_samples = self.filter.delay_samples
        width = self.filter.table.shape[1]
        self._history = np.zeros((channels, width - 1), np.float32)
        self._newest = width - 1  # the first output's newest input: the first new frame
        self._phase = 0
        compile_kernel()

    def input_needed(self, outputs: int) -> int:
        """Input frames after which the first ``outputs`` output samples have come out
        (output ``m`` needs input ``floor(m × down / up)``, its newest tap)."""
        if self.filter is None or outputs <= 0:
            return max(0, outputs)
        return (outputs - 1) * self.filter.down // self.filter.up + 1

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample ``block`` (``[channels, frames]``, float32) and return ``[channels, m]``
        (a new C-contiguous array; the input block itself for equal rates)."""
        if self.filter is None:
            return block
        self._check(block)
        self._given += block.shape[1]
        return self._run(block)

    def flush(self) -> np.ndarray:
        """End the stream: feed silence through the filter and return the remaining
        ``[channels, m]`` samples (``delay_samples`` of them, rounded)."""
        if self.filter is None:
            return np.zeros((self.channels, 0), dtype=np.float32)
        self._finished = True
        total = round(self._given * self.out_rate_hz / self.in_rate_hz + self.delay_samples)
        wanted = max(0, total - self._taken)
        silence = math.ceil(wanted * self.in_rate_hz / self.out_rate_hz) + 1
        out = self._run(np.zeros((self.channels, silence), np.float32))
        return np.ascontiguousarray(out[:, :wanted])

    def _run(self, block: np.ndarray) -> np.ndarray:
        f = self.filter
        buffer = np.concatenate([self._history, np.asarray(block, np.float32)], axis=1)
        most = -(-block.shape[1] * f.up // f.down) + 1
        out = np.empty((self.channels, most), np.float32)
        count, newest, self._phase = polyphase_kernel(
            buffer, f.table, f.up, f.down, self._newest, self._phase, out
        )
        keep = self._history.shape[1]
        self._history = np.ascontiguousarray(buffer[:, buffer.shape[1] - keep :])
        self._newest = newest - (buffer.shape[1] - keep)
        self._taken += count
        return out[:, :count]


class SoxrResampler(_Streaming):
    """Resample ``[channels, frames]`` float32 blocks from ``in_rate_hz`` to ``out_rate_hz``.

    Supports being fed any number of frames at a time; each call returns every output sample
    that can be computed so far. After ``n`` input frames, the total returned is at least
    ``n × out_rate_hz / in_rate_hz`` (rounded down), and ``flush()`` returns the tail, so the whole
    stream is ``lead + round(n × ratio)`` samples long. Equal rates are an identity: the block
    itself is returned (no copy) and ``delay_samples`` is 0.

    ``delay_samples`` (float, output samples; fractional where the filter is symmetric about a
    half sample) is measured at construction: input at time ``t`` seconds comes out at output
    index ``t × out_rate_hz + delay_samples`` (the peak of the impulse response).
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int, channels: int) -> None:
        """Build the stream and measure its delay on a fresh probe instance (a few ms)."""
        super().__init__(in_rate_hz, out_rate_hz, channels)
        if in_rate_hz == out_rate_hz:
            self._stream = None
            self._lead_frames = 0
            self.delay_samples = 0.0
            return
        self._stream = _new_stream(in_rate_hz, out_rate_hz, channels)
        self._lead_frames, offset_samples = _measure(in_rate_hz, out_rate_hz)
        self.delay_samples = self._lead_frames + offset_samples

    def input_needed(self, outputs: int) -> int:
        """Input frames after which the first ``outputs`` output samples have come out (the
        lead makes at least ``floor(n × out_rate / in_rate)`` come out of ``n`` frames)."""
        return max(0, math.ceil(outputs * self.in_rate_hz / self.out_rate_hz - 1e-9))

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample ``block`` (``[channels, frames]``, float32) and return ``[channels, m]``.

        The result is a new C-contiguous array (the input block itself for equal rates).
        """
        if self._stream is None:
            return block
        self._check(block)
        out = self._stream.resample_chunk(np.asarray(block, dtype=np.float32).T)
        return self._with_lead(np.ascontiguousarray(out.T))

    def flush(self) -> np.ndarray:
        """End the stream and return its remaining ``[channels, m]`` samples."""
        if self._stream is None:
            return np.zeros((self.channels, 0), dtype=np.float32)
        self._finished = True
        empty = np.zeros((0, self.channels), dtype=np.float32)
        out = self._stream.resample_chunk(empty, last=True)
        return self._with_lead(np.ascontiguousarray(out.T))

    def _with_lead(self, out: np.ndarray) -> np.ndarray:
        if not self._lead_frames:
            return out
        lead = np.zeros((self.channels, self._lead_frames), dtype=np.float32)
        self._lead_frames = 0
        return np.concatenate([lead, out], axis=1)


def _new_stream(in_rate_hz: int, out_rate_hz: int, channels: int) -> soxr.ResampleStream:
    return soxr.ResampleStream(
        in_rate_hz, out_rate_hz, channels, dtype="float32", quality=_QUALITY, vr=True
    )


def _measure(in_rate_hz: int, out_rate_hz: int) -> tuple[int, float]:
    """Push an impulse one frame at a time through a fresh mono stream.

    Returns ``(lead_frames, offset_samples)``: the largest count lag seen after any number of
    input frames, rounded up (the zeros to emit first so output never falls behind), and where
    the impulse response peaks relative to the impulse's ideal output position (sub-sample, by
    parabolic interpolation).
    """
    period_frames = in_rate_hz // math.gcd(in_rate_hz, out_rate_hz)
    impulse_at = period_frames * math.ceil(0.5 * _PROBE_S * in_rate_hz / period_frames)
    probe_frames = impulse_at + round(0.5 * _PROBE_S * in_rate_hz) + 2 * period_frames
    signal = np.zeros(probe_frames, dtype=np.float32)
    signal[impulse_at] = 1.0
    stream = _new_stream(in_rate_hz, out_rate_hz, 1)
    pieces = []
    emitted = 0
    max_lag = 0.0
    for n in range(probe_frames):
        piece = stream.resample_chunk(signal[n : n + 1])
        pieces.append(piece)
        emitted += len(piece)
        max_lag = max(max_lag, (n + 1) * out_rate_hz / in_rate_hz - emitted)
    pieces.append(stream.resample_chunk(signal[:0], last=True))
    response = np.abs(np.concatenate(pieces).astype(np.float64))
    peak = int(np.argmax(response))
    left, centre, right = response[peak - 1 : peak + 2]
    fraction = 0.5 * (left - right) / (left - 2 * centre + right)
    ideal = impulse_at * out_rate_hz / in_rate_hz
    return math.ceil(max_lag - 1e-9), peak + fraction - ideal
