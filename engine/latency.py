"""The engine's latency as a formula: what is reported is what the signal path does.

All figures are in device samples (frames at the device rate ``R``); ``r = R / model_rate``.

``reported = buffering + resampling``, where

* ``buffering`` — the output delay line the engine keeps in front of the output callback. It
  must cover, with zero compute time, the worst wait of a sample for its output to be final:
  one host block (input arrives a block at a time, and a block's output is due a block ahead)
  plus the model's algorithmic latency (a hop to fill, a hop of overlap-add: ``window``
  samples), less the alignment slack of host blocks against hops (``gcd(block, hop)`` when the
  rates are equal; a 2-sample rounding allowance is added instead when resampling), plus a
  safety margin of ``safety_ms`` milliseconds (rounded up to whole device samples) for the
  chunk's compute time and the worker's wake-up;
* ``resampling`` — the constant delays of the streaming resamplers in and out
  (:mod:`rtsep.engine.resampler`: 1 ms each way for the polyphase resampler, ≈ 13–15 ms for
  soxr), zero at the model rate.

The signal path adds nothing else: the model's own overlap-add lag is compensated inside the
engine, so output sample ``n`` is input sample ``n - reported``, separated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Latency:
    """Latency terms in device samples; :attr:`total_samples` is what the engine reports."""

    device_rate_hz: int
    block_samples: int
    algorithmic_samples: float  # model window at the device rate
    alignment_slack_samples: (
        float  # subtracted: block/hop alignment (negative = rounding allowance)
    )
    safety_samples: int
    resampler_in_samples: float  # input resampler delay, in device samples
    resampler_out_samples: float

    @property
    def buffering_samples(self) -> int:
        """Length of the output delay line (whole device samples)."""
        return int(
            self.block_samples
            + math.ceil(self.algorithmic_samples)
            - self.alignment_slack_samples
            + self.safety_samples
        )

    @property
    def total_samples(self) -> float:
        return self.buffering_samples + self.resampler_in_samples + self.resampler_out_samples

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
    device_rate_hz: int,
    block_samples: int,
    model_rate_hz: int,
    window_samples: int,
    hop_samples: int,
    safety_ms: float,
    resampler_in_delay: float = 0.0,
    resampler_out_delay: float = 0.0,
) -> Latency:
    """The latency terms for one configuration.

    ``safety_ms`` is in milliseconds; ``resampler_in_delay`` is in model samples (the input
    resampler's output rate), ``resampler_out_delay`` in device samples.
    """
    if safety_ms < 0:
        raise ValueError(f"safety_ms must be >= 0, got {safety_ms}")
    ratio = device_rate_hz / model_rate_hz
    if device_rate_hz == model_rate_hz:
        slack = math.gcd(block_samples, hop_samples)
    else:
        slack = -2
    return Latency(
        device_rate_hz=device_rate_hz,
        block_samples=block_samples,
        algorithmic_samples=window_samples * ratio,
        alignment_slack_samples=slack,
        safety_samples=math.ceil(safety_ms * device_rate_hz / 1000.0 - 1e-9),
        resampler_in_samples=resampler_in_delay * ratio,
        resampler_out_samples=resampler_out_delay,
    )
