"""Live audio I/O: a duplex device stream whose audio thread only copies to and from ring buffers.

The engine reads captured audio from ``stream.input_ring`` and queues audio to play in
``stream.output_ring``, both ``[channels, frames]`` float32. The audio thread copies each
device block into the input ring (frames that do not fit are dropped and counted as an input
overrun) and fills each device block from the output ring (a short ring is padded with zeros and
counted as an output underrun). Both rings start empty; frame 0 of each is the first block of the
stream, so audio written before ``start()`` plays from the first callback.

Backends:

- ``"rtmixer"`` (what ``rtsep live`` uses by default): rtmixer's C callback moves audio between
  PortAudio and rtmixer's own ring buffers, so no Python runs per audio callback and the audio
  thread never needs the GIL. Limits found here: it cannot call Python, so there is no
  ``on_block`` (poll ``input_ring.available()``); rtmixer *ends* a ring-buffer action when its
  ring runs empty (output) or full (input), so the stream re-arms it on the engine's next
  ``write``/``read`` (the gap plays silence / loses input), counts one underrun/overrun per such
  episode rather than per callback, and measures the silence played in device frames
  (``output_ring.gap_frames``), so that the engine can drop as much stale audio and keep its
  latency. rtmixer's action queues are single-producer/single-consumer: every engine-side call
  (ring reads and writes, ``poll_stats``) must come from one thread.
- ``"sounddevice"`` (the fallback): a PortAudio callback ``Stream``; the Python callback only
  copies (no array allocation, no locks, no logging) and then calls ``on_block(input)`` if given.
  With a ``process(input, output)`` hook instead, the callback bypasses the rings (they stay
  empty) and hands the device's own buffers to the hook, which must fill ``output``: the live
  engine's fallback path (``rtsep.engine.live``), adding no buffering of its own.

PortAudio's blocking ``Stream.read`` is never used: on JACK it corrupts the heap and aborts.
"""

from __future__ import annotations

import atexit
import dataclasses
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Literal, Protocol

import numpy as np
import sounddevice as sd

from .ringbuffer import RingBuffer

Kind = Literal["input", "output"]
OnBlock = Callable[[np.ndarray], None]
Process = Callable[[np.ndarray, np.ndarray], None]


class AudioDeviceError(LookupError, ValueError):
    """No device matches a request, or the device cannot open it; the message names the
    device and lists the ones that would do."""


class AudioDeviceLost(RuntimeError):
    """A running stream's device went away (unplugged, its JACK server stopped or killed)."""


#: Longest ``DuplexStream.stop``/``close`` wait for PortAudio before giving the device up
#: (seconds). With its JACK server gone, PortAudio's stop, close and terminate never return.
STOP_TIMEOUT_S = 1.0


@dataclasses.dataclass
class IOCounters:
    """Counts since the stream was opened.

    ``input_overruns``/``output_underruns`` count callbacks (sounddevice) or episodes (rtmixer)
    in which input was dropped because the input ring was full, or zeros were played because
    the output ring ran short. The ``*_flags`` fields count callbacks in which PortAudio
    reported that status flag; ``flagged_callbacks`` counts callbacks with any of them, where
    the audio path sees each callback (the sounddevice callback; ``None`` on rtmixer, whose C
    callback counts per flag only).
    """

    callbacks: int = 0
    input_overruns: int = 0
    output_underruns: int = 0
    input_underflow_flags: int = 0
    input_overflow_flags: int = 0
    output_underflow_flags: int = 0
    output_overflow_flags: int = 0
    flagged_callbacks: int | None = None

    @property
    def xruns(self) -> int:
        """Callbacks that PortAudio flagged for lost or padded audio: ``flagged_callbacks``
        where it is counted, else the largest per-flag count. Not the flags' sum: PortAudio's
        JACK host API flags every xrun of the server as an input overflow *and* an output
        underflow, so the sum counts each twice (the largest count is exact there, and a lower
        bound on host APIs that flag them separately; the four counts are in ``io``)."""
        if self.flagged_callbacks is not None:
            return self.flagged_callbacks
        return max(
            self.input_underflow_flags,
            self.input_overflow_flags,
            self.output_underflow_flags,
            self.output_overflow_flags,
        )


class InputRing(Protocol):
    """Reader side of the captured audio (see ``RingBuffer``)."""

    def available(self) -> int: ...

    def read(self, frames: int, out: np.ndarray | None = None) -> np.ndarray: ...

    def discard(self, frames: int) -> int: ...


class OutputRing(Protocol):
    """Writer side of the audio to play (see ``RingBuffer``)."""

    def space(self) -> int: ...

    def write(self, block: np.ndarray) -> int: ...


class DuplexStream(ABC):
    """An open full-duplex device stream; use as a context manager to close it."""

    input_ring: InputRing
    output_ring: OutputRing

    def __init__(self, stream: sd._StreamBase) -> None:
        self._stream = stream
        self._started = False  # start() called and stop() not yet
        self._abandoned = False
        self.input_device, self.output_device = stream.device
        self.description = (
            f"input {describe_device(self.input_device)}, "
            f"output {describe_device(self.output_device)}"
        )
        self.samplerate_hz = int(stream.samplerate)
        self.blocksize_frames: int = stream.blocksize  # 0: the host's choice, may vary
        self.input_channels, self.output_channels = stream.channels

    @property
    def latency_frames(self) -> int:
        """PortAudio's reported input + output latency in frames: the device round trip.

        On JACK this equals the measured loopback delay (2 periods with ``blocksize`` equal to
        the period, 1 period with ``blocksize=0``).
        """
        input_s, output_s = self._stream.latency
        return round((input_s + output_s) * self.samplerate_hz)

    @property
    def active(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._stream.active

    @abstractmethod
    def counters(self) -> IOCounters:
        """A snapshot of the stream's counters."""

    def start(self) -> None:
        """Start the audio callbacks."""
        self._stream.start()
        self._started = True

    def lost(self) -> bool:
        """True when the stream stopped by itself after ``start()``: PortAudio saw the device
        go away (on JACK within ~0.1 s of the server's end)."""
        return self._abandoned or (self._started and not self._stream.active)

    def abandon(self) -> None:
        """Give the device up without asking PortAudio: later ``stop``/``close`` do nothing
        and PortAudio is not terminated at exit (both would hang on a vanished JACK server).
        The process should exit soon after."""
        if not self._abandoned:
            self._abandoned = True
            atexit.unregister(sd._exit_handler)

    def stop(self) -> None:
        """Stop the audio callbacks once the device has played the blocks it holds. Raises
        :class:`AudioDeviceLost` (and abandons the device) when PortAudio does not return
        within ``STOP_TIMEOUT_S``."""
        self._started = False
        self._call_within(self._stream.stop, "stop")

    def close(self) -> None:
        """Stop and release the device (see ``stop``)."""
        self._started = False
        self._call_within(self._stream.close, "close")

    def _call_within(self, call: Callable[[], None], what: str) -> None:
        if self._abandoned:
            return
        done = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                call()
            except BaseException as error:  # handed to the caller's thread below
                errors.append(error)
            finally:
                done.set()

        threading.Thread(target=run, name=f"rtsep-audio-{what}", daemon=True).start()
        if not done.wait(STOP_TIMEOUT_S):
            self.abandon()
            raise AudioDeviceLost(
                f"the audio device did not {what} within {STOP_TIMEOUT_S:g} s "
                f"({self.description}): it went away"
            )
        if errors:
            raise errors[0]

    def __enter__(self) -> DuplexStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SounddeviceDuplex(DuplexStream):
    """Duplex stream over a ``sounddevice.Stream`` callback (see ``open_duplex``)."""

    def __init__(
        self,
        device: tuple[int, int],
        samplerate_hz: int,
        blocksize_frames: int,
        channels: tuple[int, int],
        ring_frames: int,
        on_block: OnBlock | None,
        device_latency: float | str,
        process: Process | None = None,
    ) -> None:
        self.input_ring = RingBuffer(channels[0], ring_frames)
        self.output_ring = RingBuffer(channels[1], ring_frames)
        self._on_block = on_block
        self._process = process
        self._counters = IOCounters(flagged_callbacks=0)
        stream = sd.Stream(
            device=device,
            samplerate=samplerate_hz,
            blocksize=blocksize_frames,
            channels=channels,
            dtype="float32",
            latency=device_latency,
            callback=self._callback,
        )
        super().__init__(stream)

    def counters(self) -> IOCounters:
        return dataclasses.replace(self._counters)

    def _callback(
        self, indata: np.ndarray, outdata: np.ndarray, frames: int, time: object, status: object
    ) -> None:
        counters = self._counters
        counters.callbacks += 1
        if status:
            flags = (
                status.input_underflow,
                status.input_overflow,
                status.output_underflow,
                status.output_overflow,
            )
            counters.flagged_callbacks += any(flags)
            counters.input_underflow_flags += flags[0]
            counters.input_overflow_flags += flags[1]
            counters.output_underflow_flags += flags[2]
            counters.output_overflow_flags += flags[3]
        if self._process is not None:
            self._process(indata.T, outdata.T)
            return
        captured = indata.T
        if self.input_ring.write(captured) < frames:
            counters.input_overruns += 1
        if self._on_block is not None:
            self._on_block(captured)
        played = self.output_ring.read(frames, out=outdata.T).shape[1]
        if played < frames:
            outdata[played:] = 0.0
            counters.output_underruns += 1


class RtmixerDuplex(DuplexStream):
    """Duplex stream over ``rtmixer.MixerAndRecorder`` ring-buffer actions (see module doc).

    Engine side, one thread: ``input_ring.read``, ``output_ring.write`` and ``poll_stats``.
    """

    def __init__(
        self,
        device: tuple[int, int],
        samplerate_hz: int,
        blocksize_frames: int,
        channels: tuple[int, int],
        ring_frames: int,
        device_latency: float | str,
    ) -> None:
        import rtmixer

        mixer = rtmixer.MixerAndRecorder(
            device=device,
            samplerate=samplerate_hz,
            blocksize=blocksize_frames,
            channels=channels,
            latency=device_latency,
        )
        super().__init__(mixer)
        self._mixer = mixer
        self._counters = IOCounters()
        self._stats_action = None  # a fetch_and_reset_stats action not collected yet
        frames = 1 << (ring_frames - 1).bit_length()  # pa_ringbuffer needs a power of 2
        # Queued before start(), both actions begin in the first callback, so the rings'
        # frame 0 is the stream's first block in both directions.
        self.input_ring = _RtmixerInputRing(
            self, rtmixer.RingBuffer(4 * channels[0], frames), mixer.record_ringbuffer
        )
        self.output_ring = _RtmixerOutputRing(
            self, rtmixer.RingBuffer(4 * channels[1], frames), mixer.play_ringbuffer
        )

    def poll_stats(self) -> None:
        """Engine-side thread, now and then: collect the statistics rtmixer's callback handed
        over since the last call, and ask for the next (never waits)."""
        action = self._stats_action
        if action is not None:
            if action in self._mixer.actions:
                return
            _add_stats(self._counters, action.stats)
        self._stats_action = self._mixer.fetch_and_reset_stats() if self._mixer.active else None

    def counters(self) -> IOCounters:
        """A snapshot (any thread, never waits). While the stream runs it is as recent as the
        last ``poll_stats``; once stopped it is complete."""
        snapshot = dataclasses.replace(self._counters)
        snapshot.input_overruns += self.input_ring.episodes
        snapshot.output_underruns += self.output_ring.episodes
        if not self._mixer.active:
            if self._stats_action is not None:  # handed over (or zeros) but not collected
                _add_stats(snapshot, self._stats_action.stats)
            _add_stats(snapshot, self._mixer.stats)
        return snapshot


class _RtmixerRing:
    """Adapts an interleaved rtmixer ``RingBuffer`` to ``[channels, frames]`` arrays.

    ``start_action(ring)`` enqueues the rtmixer action that serves the ring; rtmixer removes
    that action when the ring runs empty (play) or full (record), and the engine-side method
    that next touches the ring re-arms it (``episodes`` counts those).
    """

    def __init__(
        self, owner: RtmixerDuplex, ring: object, start_action: Callable[[object], object]
    ) -> None:
        self._owner = owner
        self._ring = ring
        self._start_action = start_action
        self._scratch = np.zeros((len(ring), ring.elementsize // 4), dtype=np.float32)
        self._action = start_action(ring)
        self._moved_before = 0  # frames moved by the actions that ended
        self._restarted = False  # a re-armed action whose gap is not measured yet
        self.episodes = 0

    def _rearm_if_ended(self) -> bool:
        """Re-arm if rtmixer ended the action; returns True when it had ended."""
        action = self._action
        if action in self._owner._mixer.actions:
            return False
        self._moved_before += action.done_frames
        self._action = self._start_action(self._ring)
        self._restarted = True
        self.episodes += 1
        return True


class _RtmixerInputRing(_RtmixerRing):
    frames_read = 0  # frames taken out of the ring so far (read or discarded)

    def available(self) -> int:
        return self._ring.read_available

    def frames_recorded(self) -> int:
        """Frames the callbacks have recorded since the stream began: while the record action
        never ended, the callbacks' own frame count (skipped JACK cycles do not count)."""
        return self.frames_read + self._ring.read_available

    def read(self, frames: int, out: np.ndarray | None = None) -> np.ndarray:
        limit = self._scratch.shape[0] if out is None else out.shape[1]
        frames = self._ring.readinto(self._scratch[: min(frames, limit)])
        self.frames_read += frames
        self._rearm_if_ended()
        if out is None:
            return self._scratch[:frames].T
        out[:, :frames] = self._scratch[:frames].T
        return out[:, :frames]

    def discard(self, frames: int) -> int:
        frames = max(0, min(frames, self._ring.read_available))
        self._ring.advance_read_index(frames)
        self.frames_read += frames
        return frames


class _RtmixerOutputRing(_RtmixerRing):
    """The play side. ``gap_frames``: frames, since the stream began, that the callbacks
    played as silence because no action served this ring (it had run dry). Measured without
    clocks: every callback records as many frames as it plays, so once a re-armed action has
    run, ``gap = frames recorded - frames played``, read between two callbacks (rtmixer runs
    the record action before the play action in each callback: it was queued first).
    Stream times would not do: they count the cycles a loaded JACK server skipped.
    """

    gap_frames = 0

    def space(self) -> int:
        return self._ring.write_available

    def _measure_gap(self) -> None:
        """After a re-arm, once the new action has played: ``gap_frames`` (and done)."""
        action, recorder = self._action, self._owner.input_ring
        if not self._restarted or action.done_frames == 0:
            return
        for _ in range(10):
            recorded, played = recorder.frames_recorded(), action.done_frames
            time.sleep(0.0002)  # a callback under way during the reads has finished by now
            if recorded == recorder.frames_recorded() and played == action.done_frames:
                gap = recorded - self._moved_before - played
                self.gap_frames = max(self.gap_frames, gap)
                self._restarted = False
                return

    def write(self, block: np.ndarray) -> int:
        frames = min(block.shape[1], self._ring.write_available)
        self._scratch[:frames] = block[:, :frames].T
        written = self._ring.write(self._scratch[:frames])
        if not self._rearm_if_ended():
            self._measure_gap()
        return written


def _add_stats(counters: IOCounters, stats: object) -> None:
    counters.callbacks += stats.blocks
    counters.input_underflow_flags += stats.input_underflows
    counters.input_overflow_flags += stats.input_overflows
    counters.output_underflow_flags += stats.output_underflows
    counters.output_overflow_flags += stats.output_overflows


def open_duplex(
    input_device: int | str | None = None,
    output_device: int | str | None = None,
    *,
    samplerate_hz: int | None = None,
    blocksize_frames: int = 256,
    channels: tuple[int, int] = (1, 1),
    ring_frames: int | None = None,
    on_block: OnBlock | None = None,
    backend: Literal["sounddevice", "rtmixer"] = "sounddevice",
    device_latency: float | str = "low",
    process: Process | None = None,
) -> DuplexStream:
    """Open (not start) a duplex stream.

    ``input_device``/``output_device``: index, name substring (see ``find_device``) or None for
    the default. ``samplerate_hz``: None for the input device's default rate.
    ``blocksize_frames``: frames per callback, 0 for the host's choice (lowest latency on JACK).
    ``channels``: (input, output). ``ring_frames``: capacity of each ring, default one second
    (rtmixer rounds up to a power of 2); capacity adds no latency, the fill level does.
    ``on_block(input)``: called from the audio thread with each captured ``[channels, frames]``
    block (a view valid only during the call) after it was copied to the input ring; it must
    not block or allocate. sounddevice backend only. ``device_latency``: PortAudio's suggested
    latency in seconds, or "low"/"high". ``process(input, output)``: called from the audio
    thread with the device's ``[channels, frames]`` buffers (views valid only during the call)
    in place of the rings; it must fill ``output`` without blocking or allocating.
    sounddevice backend only, not with ``on_block``.

    Raises ``AudioDeviceError`` naming the device when none matches, when it has fewer
    channels than asked for, or when PortAudio refuses the settings (e.g. the rate).
    """
    device = (find_device(input_device, "input"), find_device(output_device, "output"))
    for index, kind, wanted in zip(device, ("input", "output"), channels, strict=True):
        have = max_channels(index, kind)
        if wanted > have:
            raise AudioDeviceError(
                f"{kind} device {index} ({describe_device(index)}) has {have} {kind} "
                f"channel(s), {wanted} asked for"
            )
    if samplerate_hz is None:
        samplerate_hz = default_samplerate_hz(device[0])
    if ring_frames is None:
        ring_frames = samplerate_hz
    if backend not in ("sounddevice", "rtmixer"):
        raise ValueError(f"unknown audio backend {backend!r}: use 'sounddevice' or 'rtmixer'")
    if on_block is not None and process is not None:
        raise ValueError("give on_block or process, not both")
    try:
        if backend == "sounddevice":
            return SounddeviceDuplex(
                device,
                samplerate_hz,
                blocksize_frames,
                channels,
                ring_frames,
                on_block,
                device_latency,
                process,
            )
        if on_block is not None or process is not None:
            raise ValueError(
                "the rtmixer backend runs a C callback that cannot call on_block or process: "
                "poll stream.input_ring.available() instead, or use backend='sounddevice'"
            )
        return RtmixerDuplex(
            device, samplerate_hz, blocksize_frames, channels, ring_frames, device_latency
        )
    except sd.PortAudioError as error:
        raise AudioDeviceError(
            f"cannot open input {device[0]} ({describe_device(device[0])}) and output "
            f"{device[1]} ({describe_device(device[1])}) at {samplerate_hz} Hz, "
            f"{blocksize_frames}-frame blocks, {channels[0]} in / {channels[1]} out: {error}"
        ) from None


def default_samplerate_hz(index: int) -> int:
    """The default sample rate (Hz) of device ``index``."""
    return int(sd.query_devices(index)["default_samplerate"])


def max_channels(index: int, kind: Kind) -> int:
    """How many ``kind`` ("input"/"output") channels device ``index`` can open."""
    return int(sd.query_devices(index)[f"max_{kind}_channels"])


def describe_device(index: int) -> str:
    """Device ``index`` as "NAME, HOST API" (how ``list_devices`` shows it)."""
    return _full_name(sd.query_devices(index))


def find_device(spec: int | str | None, kind: Kind) -> int:
    """Index of the ``kind`` device given by index, name substring or None (the default).

    A substring matches case-insensitively against "NAME, HOST API" (as ``list_devices``
    shows it); an exact name match wins over partial ones. Raises ``AudioDeviceError`` naming
    the request and listing the devices with ``kind`` channels when none or several match.
    """
    devices = sd.query_devices()
    key = f"max_{kind}_channels"
    candidates = [d for d in devices if d[key] > 0]
    if spec is None or spec == "":
        default = sd.default.device[0 if kind == "input" else 1]
        if default is not None and default >= 0 and devices[default][key] > 0:
            return int(default)
        raise AudioDeviceError(_device_error(f"there is no default {kind} device", candidates))
    if isinstance(spec, int) or spec.strip().isdigit():
        index = int(spec)
        if 0 <= index < len(devices) and devices[index][key] > 0:
            return index
        raise AudioDeviceError(_device_error(f"no {kind} device has index {index}", candidates))
    wanted = spec.strip().lower()
    exact = [d for d in candidates if d["name"].lower() == wanted]
    matches = exact or [d for d in candidates if wanted in _full_name(d).lower()]
    if len(matches) == 1:
        return int(matches[0]["index"])
    if matches:
        problem = f"{len(matches)} {kind} devices match {spec!r}; give an index or a longer name"
    else:
        problem = f"no {kind} device matches {spec!r}"
    raise AudioDeviceError(_device_error(problem, matches or candidates))


def list_devices() -> str:
    """A table of every PortAudio device: index, channels, default rate, name and host API."""
    devices = sd.query_devices()
    default_in, default_out = sd.default.device
    lines = [" idx   in  out  rate_hz  device"]
    for device in devices:
        marks = "".join(
            mark
            for mark, is_default in (
                (" <default in>", device["index"] == default_in),
                (" <default out>", device["index"] == default_out),
            )
            if is_default
        )
        lines.append(
            f"{device['index']:4d} {device['max_input_channels']:4d} "
            f"{device['max_output_channels']:4d} {device['default_samplerate']:8.0f}  "
            f"{_full_name(device)}{marks}"
        )
    if not devices:
        lines.append("   (no audio devices: is a sound server such as JACK running?)")
    return "\n".join(lines)


def _full_name(device: dict) -> str:
    return f"{device['name']}, {sd.query_hostapis(device['hostapi'])['name']}"


def _device_error(problem: str, devices: list[dict]) -> str:
    listed = "\n".join(
        f"  {d['index']:3d}: {_full_name(d)} ({d['max_input_channels']} in, "
        f"{d['max_output_channels']} out)"
        for d in devices
    )
    return f"{problem}. Devices to choose from:\n{listed or '  (none)'}"
