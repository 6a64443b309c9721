"""The engine's latency as a formula: what is reported is what the signal path does.

All figures are in device samples (frames at the device rate ``R``); ``r = R / model_rate``.
Outputs are synthesised at the device rate from the device-rate mixture
(:mod:`rtsep.engine.fullband`), so output sample ``n`` is input sample ``n - reported``,
separated, and ``reported`` is a whole number of samples::

    reported = buffering = block + window · r + resampler_in − slack + safety

* ``block`` — input reaches the engine one host block at a time, and each block's output is
  due one block later;
* ``window · r`` — the model's algorithmic latency: a device frame spans the model's 16 ms
  window, and its first sample is final only once the frame's gains are known;
* ``resampler_in`` — the input resampler's delay: the model hears the frame that much later,
  and the frame's gains wait for the model;
* ``slack`` — what the alignment of host blocks against frames saves (``gcd(block, hop)`` at
  the model rate; with resampling a few samples either way, the rounding of frame starts and
  of the resampler's taps included). It is not estimated: :func:`engine_latency` walks every
  block of one period of the block and frame pattern with a worker of zero compute time and
  takes the largest wait, so the rest of ``buffering`` is exactly what such a worker needs;
* ``safety`` — ``safety_ms`` milliseconds (rounded up to whole device samples) for one chunk's
  compute time and the worker's wake-up.

Nothing is resampled on the way out, so no output resampler adds its delay (it did before the
fullband synthesis: 1 ms more at 44.1 and 48 kHz).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .fullband import FrameGrid


@dataclass(frozen=True)
class Latency:
    """Latency terms in device samples; :attr:`total_samples` is what the engine reports."""

    device_rate_hz: int
    block_samples: int
    algorithmic_samples: float  # model window at the device rate
    resampler_in_samples: float  # input resampler delay, in device samples
    alignment_slack_samples: float  # subtracted: block/frame alignment (negative: rounding)
    safety_samples: int

    @property
    def buffering_samples(self) -> int:
        """Length of the output delay line (whole device samples)."""
        return round(
            self.block_samples
            + self.algorithmic_samples
            + self.resampler_in_samples
            - self.alignment_slack_samples
            + self.safety_samples
        )

    @property
    def total_samples(self) -> int:
        """The engine's latency: the delay line, as nothing else delays the outputs."""
        return self.buffering_samples

    @property
    def total_ms(self) -> float:
        return 1000.0 * self.total_samples / self.device_rate_hz

    def as_dict(self) -> dict:
        return asdict(self) | {
            "buffering_samples": self.buffering_samples,
            "total_samples": self.total_samples,
            "total_ms": self.total_ms,
        }


def engine_latency(
    grid: FrameGrid,
    block_samples: int,
    safety_ms: float,
    input_needed: Callable[[int], int],
) -> Latency:
    """The latency terms for one configuration.

    ``grid`` places the device frames; ``input_needed(m)`` is how many device input frames the
    input resampler needs before the first ``m`` model samples have come out; ``safety_ms`` is
    in milliseconds.
    """
    if safety_ms < 0:
        raise ValueError(f"safety_ms must be >= 0, got {safety_ms}")
    rate = grid.device_rate_hz
    ratio = float(grid.ratio)
    algorithmic = grid.window_samples * ratio
    resampler_in = float(grid.analysis_delay) * ratio
    wait = frame_wait_samples(grid, block_samples, input_needed)
    return Latency(
        device_rate_hz=rate,
        block_samples=block_samples,
        algorithmic_samples=algorithmic,
        resampler_in_samples=resampler_in,
        alignment_slack_samples=algorithmic + resampler_in - wait,
        safety_samples=math.ceil(safety_ms * rate / 1000.0 - 1e-9),
    )


def frame_wait_samples(
    grid: FrameGrid, block_samples: int, input_needed: Callable[[int], int]
) -> int:
    """The delay line a worker of zero compute time needs beyond one block.

    Block ``k``'s output (device samples ``[k·B − L + B, …)`` of the synthesis, read while
    block ``k`` comes in) may only hold samples final once blocks ``0 … k−1`` have arrived.
    After frame ``t`` every sample before the start of frame ``t + 1`` is final; frame ``t``
    needs its own samples and the model's hop ``t`` (``input_needed((t + 1)·hop)`` input
    frames). Walks two periods of the block and frame pattern from the start of the stream and
    returns the largest ``L − B`` any block needs.
    """
    hop = grid.hop_samples
    frame = grid.frame_samples

    def needed(t: int) -> int:  # input frames frame t waits for
        return max(grid.start(t) + frame, input_needed((t + 1) * hop))

    period = math.lcm(block_samples, grid.period_samples)
    blocks = (2 * period + 4 * frame) // block_samples + 2
    done = -1  # last frame whose input has all arrived
    wait = 0
    for k in range(blocks):
        arrived = k * block_samples
        while needed(done + 1) <= arrived:
            done += 1
        final = max(0, grid.start(done + 1))  # samples before this are final
        wait = max(wait, (k + 1) * block_samples - final - block_samples)
    return wait
