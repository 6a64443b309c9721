"""The streaming engine: one code path for live devices and files.

The audio side only copies: :meth:`Engine.push_input` writes the device's input block into a
ring buffer and :meth:`Engine.pull_output` reads processed audio from another. A worker thread
does everything else, strictly in order, one model chunk at a time::

    input ring → downmix ─┬→ resample to the model rate → backend.step (chunk of hops) → gains
                          └→ device-rate frames ──────────────────────────────────────────┤
      fullband synthesis at the device rate (:mod:`rtsep.engine.fullband`) ←──────────────┘
      → routing (tracked EDA slots / cues + residual / remove: from the device-rate mixture)
      → crossfades, gains, levels → output ring (a delay line of ``latency.buffering``)

Output sample ``n`` is input sample ``n - latency.total_samples``, separated (see
:mod:`rtsep.engine.latency`). When the worker falls behind, the output callback plays silence
for what is missing and the worker later discards those stale samples, and a backlog of input
beyond ``max_backlog_seconds`` is dropped unprocessed, so latency never grows: it is back to
nominal as soon as compute keeps up again.

Control goes through :attr:`Engine.control`, a :class:`~rtsep.engine.controllable.CueState`:
the control thread (the ZeroMQ server, or the methods below) validates and encodes cues and
swaps in a new snapshot; the worker reads the snapshot at every chunk boundary and applies a
cue or mode change with a one-chunk crossfade (:mod:`rtsep.engine.crossfade`), gains with a
one-chunk ramp.
"""

from __future__ import annotations

import collections
import gc
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..bindings.protocol import ControlError
from ..model import Model
from .backends import OutputSpec, cue_outputs, eda_outputs, make_backend
from .controllable import CueSnapshot, CueState
from .crossfade import crossfade
from .fullband import Frames, FullbandSynthesis
from .latency import Latency, engine_latency
from .resampler import make_resampler
from .ringbuffer import RingBuffer
from .stats import EngineStats
from .tracker import UNASSIGNED, AttractorTracker

MODES = ("separate", "extract", "remove")

#: Longest the worker sleeps when no input block woke it, in seconds.
WORKER_POLL_S = 0.005
#: How often the worker polls a device whose callback cannot wake it (rtmixer's C callback),
#: in seconds: the wait it adds is part of what ``safety_ms`` covers.
PUMP_POLL_S = 0.001


def freeze_startup_heap() -> int:
    """Keep the garbage collector off the worker: collect once, then freeze every object
    alive now (the model, backends, text encoder, engine: millions of objects) into the
    collector's permanent generation, so that later collections only walk what was allocated
    since. Call it after start-up, before the audio starts. A full collection of the
    unfrozen heap took 262 ms during a control-message flood (15-17 deadline misses in one
    burst). Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


#: Longest a thread holds the GIL while another waits for it (seconds; CPython's default is
#: 5 ms, more than the whole safety margin): the control server's parsing, however busy,
#: then delays the worker by at most this.
GIL_SWITCH_INTERVAL_S = 0.0005


def tune_for_real_time() -> None:
    """Process settings for a live engine, after start-up and before the audio starts:
    :func:`freeze_startup_heap`, and a GIL switch interval of ``GIL_SWITCH_INTERVAL_S``."""
    freeze_startup_heap()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


@dataclass(frozen=True)
class EngineConfig:
    """How the engine runs. Sizes in device frames unless named otherwise."""

    device_rate_hz: int = 16000
    block_samples: int = 256  # host block (32..4096; any size, not tied to the hop)
    input_channels: int = 1  # downmixed to mono
    output_channels: int = 0  # 0 = what the mode needs (sources, cues [+ residual], 1)
    backend: str = "auto"
    threads: int = 1
    chunk_hops: int = 1  # model hops per chunk; cue changes land on chunk boundaries
    safety_ms: float = 3.0  # output margin for compute time and worker wake-up (see latency)
    resampler: str = "polyphase"  # device rate -> model rate: "polyphase" (1 ms) or "soxr"
    residual: bool = False  # extract mode: one more channel, the mixture minus the cues
    match_threshold: float = 0.3
    birth_decodes: int = 3
    death_decodes: int = 25
    max_backlog_seconds: float = 0.25  # unprocessed input beyond this is dropped


@dataclass
class _Plan:
    """Which backend output feeds each channel, for one mode."""

    mode: str
    cues: list[str]
    specs: list[OutputSpec]
    assignment: np.ndarray  # channel → backend output index, or UNASSIGNED


class Engine:
    """Real-time separation between an input stream and an output stream of device frames.

    Args:
        model: the separation model.
        config: :class:`EngineConfig`.
        cues: initial cues (``None``: separate everything the EDA network finds).
        mode: ``"separate"``, ``"extract"`` or ``"remove"``; default ``extract`` with cues,
            ``separate`` without.
    """

    def __init__(
        self,
        model: Model,
        config: EngineConfig,
        cues: Sequence[str] | None = None,
        mode: str | None = None,
    ) -> None:
        if not 32 <= config.block_samples <= 4096:
            raise ValueError(f"host block of {config.block_samples} frames: use 32..4096")
        self.model = model
        self.config = c = config
        cues = list(cues or [])
        mode = mode or ("extract" if cues else "separate")
        self._check_mode(mode, cues)
        self.backend = make_backend(model, c.backend, c.threads)
        self.hop = model.hop_samples
        self.chunk_samples = c.chunk_hops * self.hop
        self.max_sources = model.config.max_sources
        self.channels = c.output_channels or self._channels_for(mode, len(cues))
        rate = model.sample_rate
        self._resample_in = make_resampler(c.device_rate_hz, rate, 1, c.resampler)
        self._fullband = FullbandSynthesis(
            c.device_rate_hz,
            rate,
            model.config.window_samples,
            self.hop,
            self._resample_in.delay_samples,
        )
        self.latency: Latency = engine_latency(
            self._fullband.grid, c.block_samples, c.safety_ms, self._resample_in.input_needed
        )
        capacity = self.latency.buffering_samples + 4 * c.device_rate_hz
        self._input = RingBuffer(c.input_channels, capacity)
        self._output = RingBuffer(self.channels, capacity)
        self._output.write(np.zeros((self.channels, self.latency.buffering_samples), np.float32))
        self._scratch = np.zeros((c.input_channels, capacity), np.float32)
        self._max_backlog = int(c.max_backlog_seconds * c.device_rate_hz) + c.block_samples
        self._reader_skipped = 0  # output frames the callback played as silence (audio thread)
        self._writer_skipped = 0  # of those, frames the worker has since discarded (worker)
        self.stats = EngineStats(chunk_seconds=self.chunk_samples / rate)
        self.events: collections.deque = collections.deque(maxlen=256)
        self.levels_db = np.full(self.channels, -120.0)
        self._gain_now = np.ones(self.channels)
        self._tracker = self._new_tracker()
        self._fade_from: np.ndarray | None = None  # assignment to crossfade from, next chunk
        self._pending_model = np.zeros(0, np.float32)
        self._trim = -self._fullband.first_sample  # synthesised samples before the input's
        self.control = CueState(model.labels, self.channels, self._encode_cue)
        received = time.monotonic_ns()
        self.control.set_cues(cues, received)
        self.control.set_mode(mode, received)
        self._snapshot = self.control.snapshot()
        self._plan = self._plan_for(self._snapshot)
        self.backend.configure(self._plan.specs)
        self._carry = self._fullband.carry(len(self._plan.specs))  # per backend output
        self._announce_outputs()
        self._reported = dict.fromkeys(
            ("deadline_misses", "overruns", "dropped_chunks", "nonfinite_samples"), 0
        )
        self.control.set_engine_info(
            self.backend.name,
            self.latency.total_ms,
            sample_rate_hz=c.device_rate_hz,
            block_samples=c.block_samples,
            channels=self.channels,
        )
        self._wake = threading.Event()
        self._running = False
        self._thread: threading.Thread | None = None
        self._pump: Callable[[], float | None] | None = None
        self._pump_poll_s = PUMP_POLL_S
        self.nonfinite_samples = 0  # NaN/±Inf input samples replaced by 0 (worker)
        self.frames_received = 0  # input frames pushed so far (audio thread)
        self._stall_seconds = 0.0
        self.switch_ms: collections.deque = collections.deque(maxlen=1024)

    # ----------------------------------------------------------------- audio thread
    def push_input(self, block: np.ndarray) -> None:
        """Copy one input block ``[input_channels, frames]`` in (audio thread: copy only)."""
        self.stats.callbacks += 1
        self.frames_received += block.shape[1]
        if self._input.write(block) < block.shape[1]:
            self.stats.overruns += 1
        self._wake.set()

    def pull_output(self, out: np.ndarray) -> None:
        """Fill ``out [channels, frames]`` with processed audio, or silence where none is
        ready (a deadline miss; those samples are discarded when they arrive)."""
        frames = out.shape[1]
        got = self._output.read(frames, out=out).shape[1]
        if got < frames:
            out[:, got:] = 0.0
            self._reader_skipped += frames - got
            self.stats.deadline_misses += 1
            self.stats.underrun_samples += frames - got

    def output_available(self) -> int:
        """Processed frames waiting for the output callback."""
        return self._output.available()

    def note_output_gap(self, frames: int) -> None:
        """The device played ``frames`` of silence that ``pull_output`` never saw (an output
        ring that ran dry outside the engine, as rtmixer's): count a deadline miss and discard
        as many samples when they arrive, so latency stays nominal. Same thread as
        ``pull_output``."""
        if frames > 0:
            self._reader_skipped += frames
            self.stats.deadline_misses += 1
            self.stats.underrun_samples += frames

    # ----------------------------------------------------------------- worker
    def start(
        self, pump: Callable[[], float | None] | None = None, poll_s: float = PUMP_POLL_S
    ) -> None:
        """Start the worker thread.

        Without ``pump`` the worker waits for ``push_input`` to wake it. With one, it calls
        ``pump()`` in a loop instead, sleeping what it returns (seconds; None: ``poll_s``) in
        between: the pump moves device input in with ``push_input``, runs
        ``process_pending_input`` and moves output on with ``pull_output`` (a device whose C
        callback cannot wake Python: rtmixer, :mod:`rtsep.engine.live`).
        """
        if self._running:
            return
        self._pump = pump
        self._pump_poll_s = poll_s
        self._running = True
        self._thread = threading.Thread(target=self._run, name="rtsep-worker", daemon=True)
        self._thread.start()

    @property
    def worker_thread_id(self) -> int | None:
        """The worker's OS thread id (``threading.Thread.native_id``) while it runs."""
        return None if self._thread is None else self._thread.native_id

    def stop(self) -> None:
        self._running = False
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stall(self, seconds: float) -> None:
        """Make the worker sleep ``seconds`` before its next chunk (overload testing)."""
        self._stall_seconds = seconds

    def _run(self) -> None:
        pump = self._pump
        while self._running:
            if pump is not None:
                wait_s = pump()
                time.sleep(self._pump_poll_s if wait_s is None else wait_s)
                continue
            self._wake.wait(WORKER_POLL_S)
            self._wake.clear()
            self.process_pending_input()

    def process_pending_input(self) -> None:
        """Process every whole chunk of input received so far (the worker's loop body)."""
        backlog = self._input.available()
        self.stats.queue_depth_samples = backlog
        if backlog > self._max_backlog:
            drop = backlog - self.config.block_samples
            self._input.discard(drop)
            self.stats.dropped_samples += drop
            self.stats.dropped_chunks += 1
            self._write_output(np.zeros((self.channels, drop), np.float32))
            backlog -= drop
        if backlog == 0:
            return
        block = self._input.read(backlog, out=self._scratch[:, :backlog])
        finite = np.isfinite(block)
        if not finite.all():  # one NaN would poison the model's recurrent state for good
            self.nonfinite_samples += int(block.size - np.count_nonzero(finite))
            block[~finite] = 0.0
        mono = block.mean(axis=0, keepdims=True) if block.shape[0] > 1 else block
        self._fullband.push(mono[0])
        model_rate = self._resample_in.process(np.ascontiguousarray(mono))
        pending = np.concatenate([self._pending_model, model_rate[0]])
        whole = pending.shape[0] - pending.shape[0] % self.chunk_samples
        self._pending_model = pending[whole:]
        for start in range(0, whole, self.chunk_samples):
            self._process_chunk(pending[start : start + self.chunk_samples])

    # ----------------------------------------------------------------- one chunk
    def _process_chunk(self, chunk: np.ndarray) -> None:
        if self._stall_seconds:
            time.sleep(self._stall_seconds)
            self._stall_seconds = 0.0
        started = time.perf_counter()
        frames = self._fullband.next_frames(chunk.size // self.hop)
        mixture = frames.mixture  # device rate, aligned with the synthesised outputs
        snapshot = self.control.snapshot()
        changed = snapshot is not self._snapshot and not self._same_plan(snapshot)
        if not changed:
            frames_before = self.backend.frame_index
            raw, self._carry = self._synthesise(chunk, frames, self._carry)
            out = self._render(raw, mixture, self._plan)
            if self._fade_from is not None:  # the tracker moved sources between channels
                previous = _Plan(**{**self._plan.__dict__, "assignment": self._fade_from})
                out = crossfade(self._render(raw, mixture, previous), out)
                self._fade_from = None
            self._track(frames_before)
        else:
            out = self._switch(chunk, frames, snapshot)
        out = self._apply_gains(out, snapshot)
        self.levels_db = 10 * np.log10(np.mean(out * out, axis=1) + 1e-12)
        self.control.report_levels(tuple(self.levels_db.tolist()))
        self.stats.record_chunk(time.perf_counter() - started)
        if self._trim:
            cut = min(self._trim, out.shape[1])
            out = out[:, cut:]
            self._trim -= cut
        self._write_output(out)
        if snapshot is not self._snapshot:
            self._snapshot = snapshot
            queued_ns = int(1e9 * self._output.available() / self.config.device_rate_hz)
            heard_ns = time.monotonic_ns() + queued_ns
            self.control.mark_applied(snapshot, at_ns=heard_ns)
            if changed:
                self.switch_ms.append((heard_ns - snapshot.changed_ns) / 1e6)
                self.events.append(
                    {
                        "event": "cues_applied",
                        "mode": snapshot.mode,
                        "cues": self.cues,
                        "version": snapshot.version,
                        # The chunk whose output is the crossfade (0 = the first chunk).
                        "chunk": self.backend.frame_index // self.config.chunk_hops - 1,
                        "switch_ms": self.switch_ms[-1],
                    }
                )
                self._announce_outputs()
        self._report_counters()

    def _write_output(self, block: np.ndarray) -> None:
        debt = self._reader_skipped - self._writer_skipped
        if debt > 0:
            skip = min(debt, block.shape[1])
            self._writer_skipped += skip
            block = block[:, skip:]
        if self._output.write(block) < block.shape[1]:
            self.stats.overruns += 1

    def _synthesise(
        self, chunk: np.ndarray, frames: Frames, carry: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step the backend over ``chunk`` and synthesise its outputs at the device rate:
        ``(raw [outputs, samples], new carry)``."""
        return self._fullband.synthesise(frames, self.backend.step(chunk).gains, carry)

    def _render(self, raw: np.ndarray, mixture: np.ndarray, plan: _Plan) -> np.ndarray:
        """Channels ``[channels, samples]`` from raw device-rate outputs under one plan; the
        residual and remove mode are the device-rate ``mixture`` minus the outputs, so the
        channels add up to it to float precision."""
        out = np.zeros((self.channels, raw.shape[1]), np.float32)
        if plan.mode == "remove":
            out[0] = mixture - raw.sum(axis=0)
            return out
        for channel, index in enumerate(plan.assignment[: self.channels]):
            if index != UNASSIGNED:
                out[channel] = raw[index]
        if plan.mode == "extract" and self.config.residual and len(plan.cues) < self.channels:
            out[len(plan.cues)] = mixture - raw.sum(axis=0)
        return out

    def _track(self, frames_before: int) -> None:
        """After a chunk in separate mode: update the tracker if attractors were re-decoded;
        channels whose slot changes are crossfaded over the next chunk."""
        if self._plan.mode != "separate":
            return
        interval = self.model.config.attractor_interval_hops
        decoded = any(f % interval == 0 for f in range(frames_before, self.backend.frame_index))
        if not decoded:
            return
        result = self._tracker.update(self.backend.attractors, self.backend.existence)
        for channel, label in result.births:
            self.events.append({"event": "birth", "output": channel, "label": label})
            self.control.source_born(channel, label)
        for channel, label in result.deaths:
            self.events.append({"event": "death", "output": channel, "label": label})
            self.control.source_died(channel)
        if not np.array_equal(self._tracker.assignment, self._plan.assignment):
            self._fade_from = self._plan.assignment
            self._plan.assignment = self._tracker.assignment.copy()

    def _switch(self, chunk: np.ndarray, frames: Frames, snapshot: CueSnapshot) -> np.ndarray:
        """Run the chunk under the old outputs, rewind, run it under the new ones, and
        crossfade between the two.

        Each run sees only its own queries, so the fade starts exactly where the old outputs
        were and ends exactly where the new ones go on. A new output whose cue an old output
        already had takes over that output's per-output state (the backend's and the
        synthesis carry) instead of starting from zeros.
        """
        old = self._plan
        if snapshot.mode == "separate" and old.mode != "separate":
            self._tracker = self._new_tracker()
        new = self._plan_for(snapshot)
        start = self.backend.checkpoint()
        raw, _ = self._synthesise(chunk, frames, self._carry)
        before = self._render(raw, frames.mixture, old)
        self.backend.restore(start)
        continued = _continued(old, new)
        self.backend.configure(new.specs, carry=continued)
        carry = self._fullband.carry(len(new.specs))
        for index, source in enumerate(continued):
            if source is not None:
                carry[index] = self._carry[source]
        raw, self._carry = self._synthesise(chunk, frames, carry)
        after = self._render(raw, frames.mixture, new)
        self._plan = new
        self._fade_from = None
        return crossfade(before, after)

    def _apply_gains(self, out: np.ndarray, snapshot: CueSnapshot) -> np.ndarray:
        target = np.asarray(snapshot.output_gains, dtype=np.float64)
        ramp = np.linspace(0.0, 1.0, out.shape[1], endpoint=False)
        gains = self._gain_now[:, None] + (target - self._gain_now)[:, None] * ramp
        self._gain_now = target
        return (out * gains).astype(np.float32)

    # ----------------------------------------------------------------- control
    def set_cues(self, cues: Sequence[str]) -> int:
        """Change the cues (labels or free text; none = separate everything).

        Cues are validated and encoded here, on the caller's thread; a bad cue raises
        ``ValueError`` and changes nothing. Returns the control version to
        :meth:`wait_applied` for.
        """
        return self._control_call(self.control.set_cues, list(cues))["version"]

    def set_mode(self, mode: str) -> int:
        """``separate``, ``extract`` or ``remove``; returns the control version."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        return self._control_call(self.control.set_mode, mode)["version"]

    def set_gain(self, channel: int, db: float) -> int:
        return self._control_call(self.control.set_gain, channel, float(db))["version"]

    def set_mute(self, channel: int, muted: bool) -> int:
        return self._control_call(self.control.set_mute, channel, bool(muted))["version"]

    def set_solo(self, channel: int, soloed: bool) -> int:
        return self._control_call(self.control.set_solo, channel, bool(soloed))["version"]

    def wait_applied(self, version: int, timeout_s: float = 5.0) -> bool:
        """Wait until the worker has applied control ``version`` (needs a running stream)."""
        deadline = time.monotonic() + timeout_s
        while self._snapshot.version < version:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def _control_call(self, method, *args) -> dict:
        try:
            return method(*args, time.monotonic_ns())
        except ControlError as error:
            raise ValueError(error.message) from None

    @property
    def mode(self) -> str:
        return self._plan.mode

    @property
    def cues(self) -> list[str]:
        return list(self._plan.cues)

    def output_labels(self) -> list[str]:
        """What each output channel carries right now ('' = nothing)."""
        plan = self._plan
        if plan.mode == "separate":
            return (self._tracker.labels + [""] * self.channels)[: self.channels]
        if plan.mode == "remove":
            return ["mixture - " + " - ".join(plan.cues)] + [""] * (self.channels - 1)
        labels = list(plan.cues)
        if self.config.residual:
            labels.append("residual")
        return (labels + [""] * self.channels)[: self.channels]

    def status(self) -> dict:
        """Everything a UI shows, JSON-ready."""
        return {
            "mode": self.mode,
            "cues": self.cues,
            "outputs": [
                {
                    "index": i,
                    "label": label,
                    "level_db": round(float(self.levels_db[i]), 1),
                    "gain_db": self._snapshot.gains_db[i],
                    "muted": self._snapshot.muted[i],
                    "solo": self._snapshot.soloed[i],
                }
                for i, label in enumerate(self.output_labels())
            ],
            "sources_found": self._tracker.live_count if self.mode == "separate" else None,
            "latency": self.latency.as_dict(),
            "backend": self.backend.name,
            "device_rate_hz": self.config.device_rate_hz,
            "block_samples": self.config.block_samples,
            "stats": self.stats.snapshot() | {"nonfinite_samples": self.nonfinite_samples},
        }

    # ----------------------------------------------------------------- helpers
    def _plan_for(self, snapshot: CueSnapshot) -> _Plan:
        """Outputs and routing for a control snapshot. Without cues, ``extract`` outputs
        silence and ``remove`` the mixture; ``separate`` ignores cues."""
        cues = [cue.text for cue in snapshot.cues]
        if snapshot.mode == "separate":
            return _Plan("separate", cues, eda_outputs(self.model), self._tracker.assignment.copy())
        queries = np.stack([cue.encoded for cue in snapshot.cues]) if cues else np.zeros((0, 1))
        specs = cue_outputs(queries) if cues else []
        assignment = np.arange(len(specs)) if snapshot.mode == "extract" else np.full(0, UNASSIGNED)
        return _Plan(snapshot.mode, cues, specs, assignment)

    def _same_plan(self, snapshot: CueSnapshot) -> bool:
        return (
            snapshot.mode == self._plan.mode and [c.text for c in snapshot.cues] == self._plan.cues
        )

    def _encode_cue(self, text: str, kind: str) -> np.ndarray:
        """CueState's encoder (control thread): the query ``[E]`` of one cue."""
        self.model.validate_cue(text)
        return self.model.cue_queries([text])[0].cpu().numpy()

    def _announce_outputs(self) -> None:
        """Tell the control state what each output carries after a cue or mode change."""
        if self._plan.mode == "separate":
            return
        for channel, label in enumerate(self.output_labels()):
            if label:
                self.control.source_born(channel, label)
            else:
                self.control.source_died(channel)

    def _report_counters(self) -> None:
        """Forward new overload counts to the control state (the worker is its one writer)."""
        current = {
            "deadline_misses": self.stats.deadline_misses,
            "overruns": self.stats.overruns,
            "dropped_chunks": self.stats.dropped_chunks,
            "nonfinite_samples": self.nonfinite_samples,
        }
        for name, value in current.items():
            if value > self._reported[name]:
                self.control.count(name, value - self._reported[name])
                self._reported[name] = value
        self.control.set_gauge("queue_depth_samples", self.stats.queue_depth_samples)

    def _channels_for(self, mode: str, cue_count: int) -> int:
        if mode == "separate":
            return self.max_sources
        if mode == "remove":
            return 1
        return cue_count + (1 if self.config.residual else 0)

    def _check_mode(self, mode: str, cues: list[str]) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if mode != "separate" and not cues:
            raise ValueError(f"mode {mode!r} needs at least one cue")
        if mode == "separate" and cues:
            raise ValueError("mode 'separate' takes no cues (it outputs every source found)")
        limit = getattr(self, "channels", None)
        if limit is not None and mode == "extract" and len(cues) > limit:
            raise ValueError(f"{len(cues)} cues but only {limit} output channels")
        for cue in cues:
            self.model.validate_cue(cue)

    def _new_tracker(self) -> AttractorTracker:
        c = self.config

        directions = self.model.label_directions()

        def label_of(attractor: np.ndarray) -> str:
            return self.model.attractor_labels(attractor[None], directions)[0]

        return AttractorTracker(
            self.max_sources,
            c.match_threshold,
            c.birth_decodes,
            c.death_decodes,
            label_of,
            count_of=self.model.calibration.source_count,
        )


def _continued(old: _Plan, new: _Plan) -> list[int | None]:
    """For each output of ``new``: the output of ``old`` with the same cue, whose per-output
    state it takes over, or None (fresh state). EDA slots (``separate``) start fresh."""
    if "separate" in (old.mode, new.mode):
        return [None] * len(new.specs)
    position = {cue: index for index, cue in enumerate(old.cues)}
    return [position.get(cue) for cue in new.cues]
