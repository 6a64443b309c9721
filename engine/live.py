"""Live mode: the engine between a microphone and a sound card, in real time.

:class:`LiveSession` opens a duplex device stream whose audio thread only copies, while the
engine's worker thread runs the model. Two audio backends:

* ``"rtmixer"`` (default): rtmixer's C callback copies between the device and two lock-free
  ring buffers; no Python runs per callback, so the GIL (the model, the control server, the
  garbage collector) cannot make the audio thread late. The worker polls every
  ``PUMP_POLL_S`` (1 ms): device input ring → :meth:`Engine.push_input`, model, then
  :meth:`Engine.pull_output` → device output ring, which holds the engine's output delay line.
  If that ring runs dry (a deadline miss), rtmixer plays silence and the engine drops as much
  stale audio later (:meth:`Engine.note_output_gap`), so latency stays nominal.
* ``"sounddevice"`` (fallback): a Python callback hands the captured block to
  :meth:`Engine.push_input` and fills the device's output buffer with
  :meth:`Engine.pull_output` (no allocation, no locks, no logging).

Either way the session adds no buffering of its own, so the end-to-end delay is::

    latency = engine.latency.total_samples   (output delay line + resamplers)
            + device round trip              (PortAudio's input + output latency)

both in device samples; :attr:`LiveSession.latency` reports the two terms and their sum.

Output channel ``k`` of the device carries engine output ``k`` (a tracked source, or cue
``k``). With ``monitor``, the chosen engine outputs are instead mixed to a stereo pair, so a
2-channel device can listen to any of them (see :func:`monitor_matrix`).

The engine's worker runs under ``SCHED_FIFO`` at ``worker_priority`` (by default
``WORKER_PRIORITY``, below every audio thread) where the OS allows it (see
:mod:`rtsep.engine.realtime`); where it does not, the worker runs with normal scheduling and
:attr:`LiveSession.realtime_note` says why and how to allow it, in one line.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import numpy as np

from .audio_io import (
    AudioDeviceLost,
    DuplexStream,
    IOCounters,
    RtmixerDuplex,
    describe_device,
    open_duplex,
)
from .latency import Latency
from .realtime import HOW_TO_ALLOW, WORKER_PRIORITY, set_fifo
from .runtime import PUMP_POLL_S, Engine

#: Live audio backends, the default first.
AUDIO_BACKENDS = ("rtmixer", "sounddevice")
#: How often the rtmixer pump collects the stream's PortAudio statistics (seconds).
STATS_PERIOD_S = 0.25
#: How often the rtmixer pump polls while a block is due (seconds).
FINE_POLL_S = 0.0002
#: A running device that delivers no input for this long is taken as gone (seconds).
SILENT_DEVICE_S = 1.0


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
        audio_backend: ``"rtmixer"`` (default: C callback, no Python per callback) or
            ``"sounddevice"`` (a Python callback; the fallback).
        worker_priority: ``SCHED_FIFO`` priority (1..99) of the engine's worker, below the
            audio threads' (JACK's clients: 5 below ``jackd -P``); default
            ``WORKER_PRIORITY`` (1); 0: normal scheduling.

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
        audio_backend: str = "rtmixer",
        worker_priority: int = WORKER_PRIORITY,
    ) -> None:
        if audio_backend not in AUDIO_BACKENDS:
            raise ValueError(
                f"unknown audio backend {audio_backend!r}: use {' or '.join(AUDIO_BACKENDS)}"
            )
        config = engine.config
        self.engine = engine
        self.audio_backend = audio_backend
        self.worker_priority = worker_priority
        #: How the worker is scheduled: "normal" or "SCHED_FIFO N" (set by start()).
        self.worker_scheduling = "normal"
        #: One line when the OS refused ``worker_priority``: why, and how to allow it.
        self.realtime_note: str | None = None
        self.monitor = tuple(monitor) if monitor else None
        self._mix = monitor_matrix(self.monitor, engine.channels) if self.monitor else None
        # The engine's outputs before the monitor mix, [channels, block] (monitor only).
        self._mixed = np.zeros(
            (engine.channels, config.block_samples) if self.monitor else (0, 0), np.float32
        )
        channels = (config.input_channels, 2 if self.monitor else engine.channels)
        if audio_backend == "rtmixer":
            self.stream: DuplexStream = open_duplex(
                input_device,
                output_device,
                samplerate_hz=config.device_rate_hz,
                blocksize_frames=config.block_samples,
                channels=channels,
                # Room for any stall the engine's backlog handling lets through.
                ring_frames=4 * config.device_rate_hz,
                backend="rtmixer",
                device_latency=device_latency,
            )
            self._pump = _RtmixerPump(engine, self.stream, self._mix)
        else:
            self.stream = open_duplex(
                input_device,
                output_device,
                samplerate_hz=config.device_rate_hz,
                blocksize_frames=config.block_samples,
                channels=channels,
                process=self._process if self._mix is None else self._process_monitor,
                device_latency=device_latency,
            )
            self._pump = None
        self.input_name = describe_device(self.stream.input_device)
        self.output_name = describe_device(self.stream.output_device)
        self.latency = LiveLatency(engine.latency, self.stream.latency_frames)
        self._received, self._received_at = 0, time.monotonic()  # for check_device

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
        """Start the engine's worker, then the device (rtmixer: the engine's output delay
        line is queued in the device's ring first, so it plays from the first callback).
        With ``worker_priority``, the worker goes under ``SCHED_FIFO`` in between."""
        self._received, self._received_at = self.engine.frames_received, time.monotonic()
        if self._pump is not None:
            self._pump()
            self.engine.start(pump=self._pump, poll_s=PUMP_POLL_S)
        else:
            self.engine.start()
        if self.worker_priority and self.engine.worker_thread_id is not None:
            refused = set_fifo(self.engine.worker_thread_id, self.worker_priority)
            if refused:
                self.realtime_note = (
                    f"the model's worker runs with normal scheduling ({refused}): {HOW_TO_ALLOW}"
                )
            else:
                self.worker_scheduling = f"SCHED_FIFO {self.worker_priority}"
        self.stream.start()

    def check_device(self) -> None:
        """Raise :class:`~rtsep.engine.audio_io.AudioDeviceLost` (one line naming the
        devices) if the device went away: PortAudio stopped the stream by itself, or no input
        arrived for ``SILENT_DEVICE_S``. The device is then abandoned (see
        ``DuplexStream.abandon``): closing the session returns at once. Call it now and then
        from the thread that runs the session (``rtsep live`` does, 4 times a second)."""
        now = time.monotonic()
        received = self.engine.frames_received
        if received != self._received:
            self._received, self._received_at = received, now
        if self.stream.lost():
            why = "the audio stream stopped by itself"
        elif now - self._received_at > SILENT_DEVICE_S:
            why = f"no audio arrived for {now - self._received_at:.1f} s"
        else:
            return
        self.abandon()
        raise AudioDeviceLost(
            f"the audio device went away ({why}; {self.stream.description}); "
            "is the sound card plugged in, or the JACK server still running?"
        )

    def abandon(self) -> None:
        """Stop the engine and give the device up without waiting for PortAudio."""
        self.stream.abandon()
        self.engine.stop()

    def stop(self) -> None:
        """Stop the device, then the engine's worker. Idempotent. If the device went away
        meanwhile, raises :class:`~rtsep.engine.audio_io.AudioDeviceLost` within about a
        second, with the engine stopped."""
        try:
            if self.stream.active:
                self.stream.stop()
        finally:
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
                "worker_scheduling": self.worker_scheduling,
                "xruns": counters.xruns,
                "io": dataclasses.asdict(counters),
            }
        }


class _RtmixerPump:
    """The worker's side of an rtmixer stream, run on the worker thread (the one engine-side
    thread rtmixer's queues allow): device input in, the model, output out, and rtmixer's
    statistics collected now and then.

    Each call returns how long to sleep before the next: blocks arrive once per block period,
    so after one arrives the pump sleeps until just before the next is due, then polls every
    ``FINE_POLL_S`` until it is there. That keeps the wait between a block's arrival and the
    worker seeing it near ``FINE_POLL_S`` (a flat 1 ms poll averaged 0.5 ms and ate 1.3 ms of
    the 2 ms margin at its p99) for about one wake-up per block; without a known block size
    it polls every ``PUMP_POLL_S``.
    """

    def __init__(self, engine: Engine, stream: RtmixerDuplex, mix: np.ndarray | None) -> None:
        capacity = engine.latency.buffering_samples + 4 * engine.config.device_rate_hz
        self.engine = engine
        self.stream = stream
        self._mix = mix
        self._input = np.zeros((engine.config.input_channels, capacity), np.float32)
        self._output = np.zeros((engine.channels, capacity), np.float32)
        self._mixed = np.zeros((2, capacity), np.float32) if mix is not None else None
        self._gap_seen = 0
        self._stats_due = 0.0
        block = stream.blocksize_frames
        self._period_s = block / stream.samplerate_hz if block else None
        self._next_due = 0.0  # when the next block should arrive (monotonic seconds)

    def __call__(self) -> float:
        engine, stream = self.engine, self.stream
        frames = min(stream.input_ring.available(), self._input.shape[1])
        arrived = time.monotonic()
        if frames:
            engine.push_input(stream.input_ring.read(frames, out=self._input[:, :frames]))
        engine.process_pending_input()
        gap = stream.output_ring.gap_frames - self._gap_seen
        if gap > 0:
            engine.note_output_gap(gap)
            self._gap_seen += gap
        frames = min(engine.output_available(), stream.output_ring.space())
        if frames:
            out = self._output[:, :frames]
            engine.pull_output(out)
            if self._mix is not None:
                out = np.matmul(self._mix, out, out=self._mixed[:, :frames])
            stream.output_ring.write(out)
        now = time.monotonic()
        if now >= self._stats_due:
            stream.poll_stats()
            self._stats_due = now + STATS_PERIOD_S
        return self._next_sleep(arrived, frames, now)

    def _next_sleep(self, arrived: float, frames: int, now: float) -> float:
        if self._period_s is None:
            return PUMP_POLL_S
        if frames:  # a block (or more) came in since the last look, at about `arrived`
            self._next_due = arrived + self._period_s
        wait = self._next_due - FINE_POLL_S - now
        if wait > 0:
            return min(wait, PUMP_POLL_S)
        if now - self._next_due > self._period_s:  # late or stalled device: coarse polling
            return PUMP_POLL_S
        return FINE_POLL_S
