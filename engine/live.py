"""Live mode: the engine between a microphone and a sound card, in real time.

:class:`LiveSession` opens a duplex device stream whose callback only copies: it hands the
captured block to :meth:`Engine.push_input` and fills the device's output buffer with
:meth:`Engine.pull_output` (no allocation, no locks, no logging), while the engine's worker
thread runs the model. The session adds no buffering of its own, so the end-to-end delay is::

    latency = engine.latency.total_samples   (output delay line + resamplers)
            + device round trip              (PortAudio's input + output latency)

both in device samples; :attr:`LiveSession.latency` reports the two terms and their sum.

Output channel ``k`` of the device carries engine output ``k`` (a tracked source, or cue
``k``). With ``monitor``, the chosen engine outputs are instead mixed to a stereo pair, so a
2-channel device can listen to any of them (see :func:`monitor_matrix`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from .audio_io import DuplexStream, IOCounters, describe_device, open_duplex
from .latency import Latency
from .runtime import Engine


@dataclasses.dataclass(frozen=True)
class LiveLatency:
    """End-to-end latency of a live session, in device samples at ``device_rate_hz``."""

    engine: Latency  # push_input → pull_output (see rtsep.engine.latency)
    device_samples: int  # the device's round trip: PortAudio's input + output latency

    @property
    def total_samples(self) -> float:
        """Input jack to output jack: the engine's figure plus the device's round trip."""
        return self.engine.total_samples + self.device_samples

    @property
    def total_ms(self) -> float:
        return 1000.0 * self.total_samples / self.engine.device_rate_hz

    @property
    def device_ms(self) -> float:
        return 1000.0 * self.device_samples / self.engine.device_rate_hz

    def as_dict(self) -> dict:
        return {
            "engine_samples": float(self.engine.total_samples),
            "engine_ms": float(self.engine.total_ms),
            "device_samples": self.device_samples,
            "device_ms": self.device_ms,
            "total_samples": float(self.total_samples),
            "total_ms": float(self.total_ms),
        }


def monitor_matrix(outputs: Sequence[int], channels: int) -> np.ndarray:
    """Gains ``[2, channels]`` that mix engine ``outputs`` to a stereo pair.

    One output plays on both sides at unit gain; several are spread evenly from hard left to
    hard right with an equal-power pan law (three outputs: left, centre at -3 dB each side,
    right). Raises ``ValueError`` naming an output that does not exist.
    """
    if not outputs:
        raise ValueError("monitor needs at least one output")
    for output in outputs:
        if not 0 <= output < channels:
            raise ValueError(f"monitor output {output} does not exist (0..{channels - 1})")
    matrix = np.zeros((2, channels), np.float32)
    if len(outputs) == 1:
        matrix[:, outputs[0]] = 1.0
        return matrix
    for rank, output in enumerate(outputs):
        angle = rank / (len(outputs) - 1) * math.pi / 2
        matrix[0, output] += math.cos(angle)
        matrix[1, output] += math.sin(angle)
    return matrix


class LiveSession:
    """Runs ``engine`` on a duplex device stream at ``engine.config.device_rate_hz``.

    Args:
        engine: a configured :class:`Engine`; its ``block_samples`` is the device's block
            size (fixed, so the reported latency holds) and ``input_channels`` the number of
            device inputs opened (the engine downmixes them).
        input_device, output_device: index, name substring or None for the default (see
            :func:`rtsep.engine.audio_io.find_device`).
        monitor: engine outputs to mix to a stereo pair (see :func:`monitor_matrix`); None
            opens one device output per engine output.
        device_latency: PortAudio's suggested latency, seconds or "low"/"high".

    Raises :class:`~rtsep.engine.audio_io.AudioDeviceError` (naming the device and listing
    the others) when a device is missing, has too few channels or refuses the settings.
    Use as a context manager: ``start()``, then ``stop()``/``close()`` on exit.
    """

    def __init__(
        self,
        engine: Engine,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        monitor: Sequence[int] | None = None,
        device_latency: float | str = "low",
    ) -> None:
        config = engine.config
        self.engine = engine
        self.monitor = tuple(monitor) if monitor else None
        self._mix = monitor_matrix(self.monitor, engine.channels) if self.monitor else None
        # The engine's outputs before the monitor mix, [channels, block] (monitor only).
        self._mixed = np.zeros(
            (engine.channels, config.block_samples) if self.monitor else (0, 0), np.float32
        )
        self.stream: DuplexStream = open_duplex(
            input_device,
            output_device,
            samplerate_hz=config.device_rate_hz,
            blocksize_frames=config.block_samples,
            channels=(config.input_channels, 2 if self.monitor else engine.channels),
            process=self._process if self._mix is None else self._process_monitor,
            device_latency=device_latency,
        )
        self.input_name = describe_device(self.stream.input_device)
        self.output_name = describe_device(self.stream.output_device)
        self.latency = LiveLatency(engine.latency, self.stream.latency_frames)

    # ----------------------------------------------------------------- audio thread
    def _process(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """Device callback: ``indata [inputs, frames]`` in, ``outdata [outputs, frames]`` out."""
        self.engine.push_input(indata)
        self.engine.pull_output(outdata)

    def _process_monitor(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """Device callback with a monitor mix: ``outdata [2, frames]``."""
        self.engine.push_input(indata)
        self.engine.pull_output(self._mixed)
        np.matmul(self._mix, self._mixed, out=outdata)

    # ----------------------------------------------------------------- control
    def start(self) -> None:
        """Start the engine's worker, then the device."""
        self.engine.start()
        self.stream.start()

    def stop(self) -> None:
        """Stop the device, then the engine's worker. Idempotent."""
        if self.stream.active:
            self.stream.stop()
        self.engine.stop()

    def close(self) -> None:
        """Stop and release the device."""
        self.stop()
        self.stream.close()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def counters(self) -> IOCounters:
        """The device stream's counters (callbacks, PortAudio xrun flags)."""
        return self.stream.counters()

    def status(self) -> dict:
        """``engine.status()`` plus a ``live`` entry: devices, monitor, end-to-end latency and
        the stream's counters (JSON-ready)."""
        counters = self.counters()
        return self.engine.status() | {
            "live": {
                "input_device": self.input_name,
                "output_device": self.output_name,
                "monitor": list(self.monitor) if self.monitor else None,
                "latency": self.latency.as_dict(),
                "xruns": counters.xruns,
                "io": dataclasses.asdict(counters),
            }
        }
