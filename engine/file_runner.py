"""File mode: the live engine with a file in place of the audio device.

The file is cut into host blocks and pushed through :class:`~rtsep.engine.runtime.Engine`
exactly as an audio callback would do it. Unpaced (the default), each block is processed as
soon as it is pushed; with ``realtime=True`` a pacing thread plays the audio callback at the
file's sample rate while the engine's worker thread runs, so control messages and overload
behave as they do live. Outputs are delay-compensated: same rate and length as the input,
sample-aligned with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..model import Model
from .file_io import replace_nonfinite
from .runtime import Engine, EngineConfig

#: Activity: an output is active in a 20 ms window where its RMS is at least this level
#: (dBFS) *and* no more than :data:`ACTIVITY_BELOW_MIX_DB` below the mixture's RMS there.
ACTIVITY_THRESHOLD_DB = -50.0
#: How far below the mixture (dB, same window) an output may be and still count as active:
#: a cue for a sound that is absent leaks a little of everything, well below the mixture.
ACTIVITY_BELOW_MIX_DB = 10.0
ACTIVITY_WINDOW_S = 0.02


@dataclass
class FileRun:
    """Result of one file: ``outputs [channels, frames]`` at the file's rate."""

    outputs: np.ndarray
    labels: list[str]
    carried: list[bool]  # whether each channel ever carried a source
    sources_tracked: (
        int  # births the tracker announced (separate mode; a source reborn counts again)
    )
    engine: Engine
    seconds: float  # wall time of the run
    events: list[dict]  # every engine event of the run, in order (births, deaths, cues_applied)
    nonfinite_samples: int  # NaN/Inf input samples replaced by 0 before the engine saw them


def run_file(
    model: Model,
    audio: np.ndarray,
    rate_hz: int,
    config: EngineConfig,
    cues: Sequence[str] | None = None,
    mode: str | None = None,
    realtime: bool = False,
    progress: bool = False,
    on_start: Callable[[Engine], None] | None = None,
) -> FileRun:
    """Separate ``audio [channels, frames]`` (any rate, any channel count: downmixed).

    ``on_start(engine)`` runs once the engine exists (e.g. to start a control server).
    Non-finite input samples (NaN, ±Inf) are replaced by 0 before the engine sees them (one
    NaN would poison the model's recurrent state for the rest of the file) and counted in
    ``FileRun.nonfinite_samples``; ``audio`` itself is not changed.
    """
    config = EngineConfig(
        **{**config.__dict__, "device_rate_hz": rate_hz, "input_channels": audio.shape[0]}
    )
    engine = Engine(model, config, cues, mode)
    if on_start is not None:
        on_start(engine)
    frames = audio.shape[1]
    delay = int(round(engine.latency.total_samples))
    total = frames + delay
    block = config.block_samples
    blocks = -(-total // block)
    padded = np.zeros((audio.shape[0], blocks * block), np.float32)
    padded[:, :frames] = audio
    nonfinite = replace_nonfinite(padded)
    collected = np.zeros((engine.channels, blocks * block), np.float32)
    log = _EventLog(engine)
    bar = tqdm(total=frames, unit="sample", unit_scale=True, desc="separate", disable=not progress)
    started = time.perf_counter()
    if realtime:
        _run_paced(engine, padded, collected, block, rate_hz, bar, log)
    else:
        for index in range(blocks):
            span = slice(index * block, (index + 1) * block)
            engine.push_input(padded[:, span])
            engine.process_pending_input()
            engine.pull_output(collected[:, span])
            log.collect()
            bar.update(min(block, max(0, frames - index * block)))
    bar.close()
    seconds = time.perf_counter() - started
    events = log.collect()
    births: dict[int, str] = {}
    for event in events:
        if event.get("event") == "birth":
            births.setdefault(event["output"], event["label"])
    outputs = collected[:, delay : delay + frames]
    labels = engine.output_labels()
    if engine.mode == "separate":
        labels = [births.get(i, label) for i, label in enumerate(labels)]
        carried = [i in births for i in range(engine.channels)]
    else:
        carried = [bool(label) for label in labels]
    tracked = sum(1 for e in events if e.get("event") == "birth")
    return FileRun(outputs, labels, carried, tracked, engine, seconds, events, nonfinite)


class _EventLog:
    """Every event of ``engine.events`` (a bounded deque) in order, read as the run goes so
    that a long file loses none. Reads only: other readers of the deque see it unchanged."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._seen: set[int] = set()
        self.events: list[dict] = []

    def collect(self) -> list[dict]:
        queue = self._engine.events
        if not queue or (self.events and queue[-1] is self.events[-1]):
            return self.events  # nothing new (the deque is only appended to)
        for event in list(queue):
            if id(event) not in self._seen:  # held in self.events: ids are not reused
                self._seen.add(id(event))
                self.events.append(event)
        return self.events


def _run_paced(
    engine: Engine, audio, collected, block: int, rate_hz: int, bar, log: _EventLog
) -> None:
    """Play the audio callback in real time on this thread while the worker runs."""
    period = block / rate_hz
    engine.start()
    try:
        start = time.perf_counter()
        for index in range(audio.shape[1] // block):
            target = start + index * period
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            span = slice(index * block, (index + 1) * block)
            engine.push_input(audio[:, span])
            engine.pull_output(collected[:, span])
            log.collect()
            bar.update(block)
    finally:
        engine.stop()


def active_seconds(signal: np.ndarray, rate_hz: int, mixture: np.ndarray | None = None) -> float:
    """Seconds of ``signal [frames]`` that are active: 20 ms windows whose RMS is at least
    :data:`ACTIVITY_THRESHOLD_DB` dBFS and, given the ``mixture [frames]`` it came from, at
    most :data:`ACTIVITY_BELOW_MIX_DB` below the mixture's RMS in the same window."""
    level = _window_levels_db(signal, rate_hz)
    active = level >= ACTIVITY_THRESHOLD_DB
    if mixture is not None:
        active &= level >= _window_levels_db(mixture, rate_hz) - ACTIVITY_BELOW_MIX_DB
    window = max(1, int(ACTIVITY_WINDOW_S * rate_hz))
    return float(np.sum(active) * window / rate_hz)


def activity_rule() -> str:
    """The activity threshold in words, for reports."""
    return (
        f"{1000 * ACTIVITY_WINDOW_S:g} ms windows whose RMS is >= {ACTIVITY_THRESHOLD_DB:g} "
        f"dBFS and >= the mixture's RMS - {ACTIVITY_BELOW_MIX_DB:g} dB"
    )


def _window_levels_db(signal: np.ndarray, rate_hz: int) -> np.ndarray:
    window = max(1, int(ACTIVITY_WINDOW_S * rate_hz))
    usable = signal[: signal.size - signal.size % window].reshape(-1, window)
    return 10 * np.log10(np.mean(usable.astype(np.float64) ** 2, axis=1) + 1e-20)


__all__ = ["FileRun", "active_seconds", "activity_rule", "run_file"]
