"""What the control server needs from an engine, and ``CueState``: the shared state itself.

Two sides touch a ``CueState`` (in one process, or one ``CueState`` on each side of the
control process, ``engine.control_process``, that keeps them in step with ``take_report`` /
``absorb`` and ``adopt``):

* the **control thread** (``engine.control.ControlServer``) calls the ``Controllable`` methods:
  it validates and encodes cues, then publishes a new immutable ``CueSnapshot``;
* the **engine** (its inference worker) reads ``snapshot()`` at every chunk boundary — one
  attribute read, no lock, no allocation — and reports back what happened: ``mark_applied``,
  ``report_levels``, ``source_born``/``source_died``, ``count``, ``set_gauge``. Those calls are
  O(1) and never block (a bounded deque append or a reference store).

Engine loop, at each chunk boundary::

    snap = state.snapshot()
    if snap.version != current.version:   # a control change arrived
        start_crossfade(current, snap)      # snap.cues[i].encoded, snap.output_gains, snap.mode
        current = snap
    ... run the chunk; when the first output that reflects `current` is written:
    state.mark_applied(current)             # once per version: gives the switch latency
    state.report_levels(levels_db)          # a fresh tuple per call, one dBFS value per output
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from rtsep.bindings.protocol import (
    BAD_ARGS,
    INVALID_CUE,
    LEVEL_FLOOR_DB,
    OVERLOAD_COUNTERS,
    PROTOCOL_VERSION,
    TOPIC_APPLIED,
    TOPIC_OVERLOAD,
    TOPIC_SOURCES,
    ControlError,
)

# encode_cue(text, kind) -> engine representation of the cue (a label index, an embedding);
# kind is "label" or "text". Raise ValueError("unknown cue ...") to reject it.
CueEncoder = Callable[[str, str], object]


class Controllable(Protocol):
    """The engine as the control server sees it. Every method runs on the control thread.

    Setters take ``received_ns`` (``time.monotonic_ns()`` when the command arrived, for the
    switch-latency measurement), raise ``ControlError`` for a request they refuse (and then
    change nothing) and return the JSON-able result of the reply.
    """

    def status(self) -> dict[str, Any]:
        """Everything a UI shows: mode, cues, outputs with labels, latency, backend, counters."""

    def list_labels(self) -> dict[str, Any]:
        """``{"labels": [...], "free_text": bool}``: the cues understood without a text model."""

    def stats(self) -> dict[str, Any]:
        """Counters since the last ``reset_stats`` and current gauges."""

    def reset_stats(self) -> None:
        """Restart the counters reported by ``stats`` and ``status`` from zero."""

    def set_cues(self, cues: Sequence[str], received_ns: int) -> dict[str, Any]:
        """Replace the cue set (0..n_outputs, each a label or free text); () = separate all."""

    def set_mode(self, mode: str, received_ns: int) -> dict[str, Any]:
        """``"separate"``, ``"extract"`` or ``"remove"``."""

    def set_gain(self, output: int, db: float, received_ns: int) -> dict[str, Any]:
        """Gain of output ``output`` in dB."""

    def set_mute(self, output: int, on: bool, received_ns: int) -> dict[str, Any]:
        """Mute (``on=True``) or unmute one output."""

    def set_solo(self, output: int, on: bool, received_ns: int) -> dict[str, Any]:
        """Solo or unsolo one output; while any output is soloed only soloed ones sound."""

    def levels_db(self) -> list[float] | None:
        """The per-output levels (dBFS, floored at LEVEL_FLOOR_DB) reported since the previous
        call, or None when the engine reported none."""

    def drain_events(self) -> list[tuple[str, dict[str, Any]]]:
        """Engine events since the previous call, oldest first, as ``(topic, event)``."""


@dataclass(frozen=True)
class Cue:
    """One cue: its text (canonical label spelling for labels), its kind and its encoding."""

    text: str
    kind: str  # "label" or "text"
    encoded: object = field(compare=False, repr=False)  # what the engine's encoder returned


@dataclass(frozen=True)
class CueSnapshot:
    """One immutable version of the control state. The engine swaps whole snapshots.

    ``output_gains`` is what to multiply each output by (linear), gains, mute and solo applied.
    ``changed_ns`` is ``time.monotonic_ns()`` at receipt of the command that made this version.
    """

    version: int
    mode: str
    cues: tuple[Cue, ...]
    gains_db: tuple[float, ...]
    muted: tuple[bool, ...]
    soloed: tuple[bool, ...]
    output_gains: tuple[float, ...]
    changed_ns: int

    def same_settings(self, other: CueSnapshot) -> bool:
        """True when both snapshots ask the engine for the same thing (versions aside)."""
        return (self.mode, self.cues, self.gains_db, self.muted, self.soloed) == (
            other.mode,
            other.cues,
            other.gains_db,
            other.muted,
            other.soloed,
        )


@dataclass(frozen=True)
class EngineReport:
    """What an engine reported over one interval (``CueState.take_report``), as it crosses to
    a control process: raw events (``applied`` ones carry their snapshot without encodings),
    the engine-side count of dropped events, the latest levels (dBFS per output, None: none
    new), and the engine's counters, gauges and info, whole."""

    events: list[tuple]
    events_dropped: int
    levels: tuple[float, ...] | None
    counters: dict[str, int]
    gauges: dict[str, float]
    info: dict[str, Any]


def _bare(cue: Cue) -> Cue:
    """``cue`` without its encoding (what crosses back to a control process)."""
    return Cue(cue.text, cue.kind, None)


def _output_gains(
    gains_db: tuple[float, ...], muted: tuple[bool, ...], soloed: tuple[bool, ...]
) -> tuple[float, ...]:
    """Linear gain per output: 0 when muted, or when another output is soloed."""
    any_solo = any(soloed)
    return tuple(
        0.0 if mute or (any_solo and not solo) else 10.0 ** (db / 20.0)
        for db, mute, solo in zip(gains_db, muted, soloed, strict=True)
    )


class CueState:
    """The control state an engine owns, shared lock-free between control and engine threads.

    ``labels`` are the label cues the model knows; ``n_outputs`` the number of output channels
    (also the most cues at once). ``encode_cue`` runs on the control thread for every new cue;
    without one, labels encode to their index and free text is refused. ``max_events`` bounds
    the engine → control event queue (the oldest events are dropped, and counted, beyond it).
    ``initial``: the snapshot to start from (another ``CueState``'s, for a control process);
    default: version 0, separate mode, no cues, 0 dB.
    """

    def __init__(
        self,
        labels: Sequence[str],
        n_outputs: int,
        encode_cue: CueEncoder | None = None,
        *,
        max_events: int = 4096,
        initial: CueSnapshot | None = None,
    ) -> None:
        if n_outputs < 1:
            raise ValueError(f"n_outputs must be at least 1, got {n_outputs}")
        self.labels = tuple(labels)
        self.n_outputs = n_outputs
        self._label_by_folded = {label.casefold(): label for label in self.labels}
        self._encode = encode_cue
        self._write_lock = threading.Lock()  # serialises writers; readers never take it
        zeros, flags = (0.0,) * n_outputs, (False,) * n_outputs
        self._snapshot = initial or CueSnapshot(
            0, "separate", (), zeros, flags, flags, (1.0,) * n_outputs, time.monotonic_ns()
        )
        self._events: deque[tuple] = deque(maxlen=max_events)
        self._events_dropped = 0
        self._engine_events_dropped = 0  # dropped on the engine's side of a control process
        self._levels: Sequence[float] = (LEVEL_FLOOR_DB,) * n_outputs
        self._levels_seq = 0
        self._levels_seen = 0
        self._counters: dict[str, int] = {}
        self._gauges: dict[str, float] = {}
        self._info: dict[str, Any] = {"backend": None, "latency_ms": None}
        # Control-thread view, updated from drained events.
        self._baseline: dict[str, int] = {}
        self._overload_seen: dict[str, int] = {}
        self._reset_at = time.monotonic()
        self._applied_version = 0
        self._last_switch_latency_ms: float | None = None
        self._output_labels: list[str | None] = [None] * n_outputs
        self._output_active = [False] * n_outputs

    # ---- engine side: cheap, non-blocking, safe from the engine's threads -------------------

    def snapshot(self) -> CueSnapshot:
        """The current control state (one reference read; never blocks, never allocates)."""
        return self._snapshot

    def mark_applied(self, snapshot: CueSnapshot, at_ns: int | None = None) -> None:
        """Report that the first output reflecting ``snapshot`` was written at ``at_ns``
        (``time.monotonic_ns()``, default now). Call once per version."""
        self._push(("applied", snapshot, time.monotonic_ns() if at_ns is None else at_ns))

    def report_levels(self, levels_db: Sequence[float]) -> None:
        """Store the latest output levels (dBFS, one per output). Kept by reference: pass a
        fresh tuple or list each time and do not modify it afterwards."""
        self._levels = levels_db
        self._levels_seq += 1

    def source_born(self, output: int, label: str | None) -> None:
        """Output ``output`` started carrying a source, named ``label`` when known."""
        self._push(("born", output, label, time.time()))

    def source_died(self, output: int) -> None:
        """Output ``output`` no longer carries a source."""
        self._push(("died", output, None, time.time()))

    def count(self, counter: str, n: int = 1) -> None:
        """Add ``n`` to an engine counter (e.g. "deadline_misses", "dropped_chunks",
        "underruns", "overruns", "chunks"). Each counter must be written by one thread only."""
        self._counters[counter] = self._counters.get(counter, 0) + n

    def set_gauge(self, name: str, value: float) -> None:
        """Set an instantaneous engine value (e.g. "queue_depth", "compute_ms_p99")."""
        self._gauges[name] = value

    def set_engine_info(
        self, backend: str, latency_ms: float, **extra: str | int | float | bool | None
    ) -> None:
        """Describe the running engine for ``status``: backend name, reported latency (ms),
        and any JSON-able extras (e.g. ``sample_rate_hz=48000``, ``running=True``)."""
        self._info = {"backend": backend, "latency_ms": float(latency_ms), **extra}

    # ---- the two ends of a control process (engine.control_process) -------------------------

    def adopt(self, snapshot: CueSnapshot) -> None:
        """Engine side: make ``snapshot`` (published by the control process's ``CueState``)
        the current one, as one reference store: the worker picks it up at its next chunk."""
        self._snapshot = snapshot

    def take_report(self) -> EngineReport:
        """Engine side: everything the engine reported since the previous call (events are
        taken out; counters, gauges and info are copied whole), for ``absorb`` on the control
        process's ``CueState``. O(events + counters); never blocks the engine's threads."""
        events = []
        while self._events:
            event = self._events.popleft()
            if event[0] == "applied":  # the encodings stay here: the control side has them
                bare = tuple(_bare(cue) for cue in event[1].cues)
                event = ("applied", replace(event[1], cues=bare), event[2])
            events.append(event)
        seq = self._levels_seq
        levels = None if seq == self._levels_seen else tuple(self._levels)
        self._levels_seen = seq
        return EngineReport(
            events=events,
            events_dropped=self._events_dropped,
            levels=levels,
            counters=dict(self._counters),
            gauges=dict(self._gauges),
            info=dict(self._info),
        )

    def absorb(self, report: EngineReport) -> None:
        """Control side: take in an engine's ``take_report`` (its events queue up for
        ``drain_events``; its counters, gauges and info replace these)."""
        for event in report.events:
            self._push(event)
        self._engine_events_dropped = report.events_dropped
        if report.levels is not None:
            self.report_levels(report.levels)
        self._counters = report.counters
        self._gauges = report.gauges
        self._info = report.info

    def _push(self, event: tuple) -> None:
        if len(self._events) == self._events.maxlen:
            self._events_dropped += 1
        self._events.append(event)

    # ---- control side (the Controllable protocol) -------------------------------------------

    def status(self) -> dict[str, Any]:
        """See ``Controllable.status``; the keys are listed in docs/protocol.md."""
        snap = self._snapshot
        levels = self._floored(self._levels)
        info = dict(self._info)
        outputs = [
            {
                "index": k,
                "label": self._output_labels[k],
                "active": self._output_active[k],
                "gain_db": snap.gains_db[k],
                "mute": snap.muted[k],
                "solo": snap.soloed[k],
                "level_db": levels[k] if k < len(levels) else LEVEL_FLOOR_DB,
            }
            for k in range(self.n_outputs)
        ]
        return {
            "protocol": PROTOCOL_VERSION,
            "mode": snap.mode,
            "cues": [{"text": cue.text, "kind": cue.kind} for cue in snap.cues],
            "version": snap.version,
            "applied_version": self._applied_version,
            "last_switch_latency_ms": self._last_switch_latency_ms,
            "outputs": outputs,
            "backend": info.pop("backend"),
            "latency_ms": info.pop("latency_ms"),
            "engine": info,
            "counters": self._counters_since_reset(),
        }

    def list_labels(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "free_text": self._encode is not None}

    def stats(self) -> dict[str, Any]:
        return {
            "counters": self._counters_since_reset(),
            "gauges": dict(self._gauges),
            "since_s": round(time.monotonic() - self._reset_at, 3),
            "events_dropped": self._events_dropped + self._engine_events_dropped,
        }

    def reset_stats(self) -> None:
        self._baseline = dict(self._counters)
        self._reset_at = time.monotonic()

    def set_cues(self, cues: Sequence[str], received_ns: int) -> dict[str, Any]:
        """Non-empty cues in "separate" mode switch to "extract"; no cues = "separate"."""
        if len(cues) > self.n_outputs:
            raise ControlError(BAD_ARGS, f"at most {self.n_outputs} cues (one per output)")
        folded = [text.casefold() for text in cues]
        if len(set(folded)) != len(folded):
            raise ControlError(BAD_ARGS, "the same cue is given twice")
        encoded = tuple(self._make_cue(text) for text in cues)
        with self._write_lock:
            mode = self._snapshot.mode
            if not encoded:
                mode = "separate"
            elif mode == "separate":
                mode = "extract"
            snap = self._publish(received_ns, cues=encoded, mode=mode)
        return {
            "version": snap.version,
            "mode": snap.mode,
            "cues": [{"text": cue.text, "kind": cue.kind} for cue in snap.cues],
        }

    def set_mode(self, mode: str, received_ns: int) -> dict[str, Any]:
        with self._write_lock:
            snap = self._publish(received_ns, mode=mode)
        return {"version": snap.version, "mode": snap.mode}

    def set_gain(self, output: int, db: float, received_ns: int) -> dict[str, Any]:
        self._check_output(output)
        with self._write_lock:
            gains = list(self._snapshot.gains_db)
            gains[output] = float(db)
            snap = self._publish(received_ns, gains_db=tuple(gains))
        return {"version": snap.version, "output": output, "gain_db": snap.gains_db[output]}

    def set_mute(self, output: int, on: bool, received_ns: int) -> dict[str, Any]:
        self._check_output(output)
        with self._write_lock:
            muted = list(self._snapshot.muted)
            muted[output] = bool(on)
            snap = self._publish(received_ns, muted=tuple(muted))
        return {"version": snap.version, "output": output, "mute": snap.muted[output]}

    def set_solo(self, output: int, on: bool, received_ns: int) -> dict[str, Any]:
        self._check_output(output)
        with self._write_lock:
            soloed = list(self._snapshot.soloed)
            soloed[output] = bool(on)
            snap = self._publish(received_ns, soloed=tuple(soloed))
        return {"version": snap.version, "output": output, "solo": snap.soloed[output]}

    def levels_db(self) -> list[float] | None:
        seq = self._levels_seq
        if seq == self._levels_seen:
            return None
        self._levels_seen = seq
        return self._floored(self._levels)

    def drain_events(self) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        while self._events:
            kind, *rest = self._events.popleft()
            if kind == "applied":
                out.append((TOPIC_APPLIED, self._applied_event(*rest)))
            else:
                output, label, time_s = rest
                if 0 <= output < self.n_outputs:
                    self._output_active[output] = kind == "born"
                    self._output_labels[output] = label
                event = {"event": kind, "output": output, "label": label, "time_s": time_s}
                out.append((TOPIC_SOURCES, event))
        for counter in OVERLOAD_COUNTERS:
            total = self._counters.get(counter, 0)
            seen = self._overload_seen.get(counter, 0)
            if total > seen:
                self._overload_seen[counter] = total
                since_reset = total - self._baseline.get(counter, 0)
                event = {"counter": counter, "delta": total - seen, "total": since_reset}
                out.append((TOPIC_OVERLOAD, event))
        return out

    # ---- helpers -----------------------------------------------------------------------------

    def _applied_event(self, snap: CueSnapshot, at_ns: int) -> dict[str, Any]:
        latency_ms = round((at_ns - snap.changed_ns) / 1e6, 3)
        if snap.version > self._applied_version:
            self._applied_version = snap.version
            self._last_switch_latency_ms = latency_ms
        return {
            "version": snap.version,
            "mode": snap.mode,
            "cues": [cue.text for cue in snap.cues],
            "switch_latency_ms": latency_ms,
        }

    def _make_cue(self, text: str) -> Cue:
        label = self._label_by_folded.get(text.casefold())
        kind = "text" if label is None else "label"
        canonical = text if label is None else label
        if self._encode is not None:
            try:
                return Cue(canonical, kind, self._encode(canonical, kind))
            except ValueError as exc:
                raise ControlError(INVALID_CUE, str(exc) or f"unknown cue {text!r}") from exc
        if label is None:
            raise ControlError(
                INVALID_CUE,
                f"unknown cue {text[:60]!r}: no text encoder is loaded; "
                f"use a label ({', '.join(self.labels)})",
            )
        return Cue(label, kind, self.labels.index(label))

    def _check_output(self, output: int) -> None:
        if not 0 <= output < self.n_outputs:
            raise ControlError(BAD_ARGS, f"output must be 0..{self.n_outputs - 1}, got {output}")

    def _publish(self, received_ns: int, **changes: Any) -> CueSnapshot:
        """Swap in a new snapshot with ``changes`` (caller holds the write lock). A change that
        asks for nothing new keeps the current snapshot and version."""
        old = self._snapshot
        new = replace(old, **changes)
        if new.same_settings(old):
            return old
        new = replace(
            new,
            version=old.version + 1,
            output_gains=_output_gains(new.gains_db, new.muted, new.soloed),
            changed_ns=received_ns,
        )
        self._snapshot = new  # the swap: one reference store, seen whole by the engine
        return new

    def _counters_since_reset(self) -> dict[str, int]:
        counters = dict(self._counters)
        return {name: value - self._baseline.get(name, 0) for name, value in counters.items()}

    @staticmethod
    def _floored(levels: Sequence[float]) -> list[float]:
        return [
            round(x, 2) if math.isfinite(x) and x > LEVEL_FLOOR_DB else LEVEL_FLOOR_DB
            for x in map(float, levels)
        ]
