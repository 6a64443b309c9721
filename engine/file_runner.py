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
from .runtime import Engine, EngineConfig

#: An output counts as active where its 20 ms RMS exceeds this level (dBFS).
ACTIVITY_THRESHOLD_DB = -50.0


@dataclass
class FileRun:
    """Result of one file: ``outputs [channels, frames]`` at the file's rate."""

    outputs: np.ndarray
    labels: list[str]
    carried: list[bool]  # whether each channel ever carried a source
    sources_tracked: int  # distinct sources the tracker saw born (separate mode)
    engine: Engine
    seconds: float  # wall time of the run


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
    collected = np.zeros((engine.channels, blocks * block), np.float32)
    births: dict[int, str] = {}
    bar = tqdm(total=frames, unit="sample", unit_scale=True, desc="separate", disable=not progress)
    started = time.perf_counter()
    if realtime:
        _run_paced(engine, padded, collected, block, rate_hz, bar)
    else:
        for index in range(blocks):
            span = slice(index * block, (index + 1) * block)
            engine.push_input(padded[:, span])
            engine.process_pending_input()
            engine.pull_output(collected[:, span])
            bar.update(min(block, max(0, frames - index * block)))
    bar.close()
    seconds = time.perf_counter() - started
    for event in list(engine.events):
        if event.get("event") == "birth":
            births.setdefault(event["output"], event["label"])
    outputs = collected[:, delay : delay + frames]
    labels = engine.output_labels()
    if engine.mode == "separate":
        labels = [births.get(i, label) for i, label in enumerate(labels)]
        carried = [i in births for i in range(engine.channels)]
    else:
        carried = [bool(label) for label in labels]
    tracked = sum(1 for e in engine.events if e.get("event") == "birth")
    return FileRun(outputs, labels, carried, tracked, engine, seconds)


def _run_paced(engine: Engine, audio, collected, block: int, rate_hz: int, bar) -> None:
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
            bar.update(block)
    finally:
        engine.stop()


def active_seconds(signal: np.ndarray, rate_hz: int) -> float:
    """Seconds of ``signal [frames]`` whose 20 ms RMS is above :data:`ACTIVITY_THRESHOLD_DB`."""
    window = max(1, int(0.02 * rate_hz))
    usable = signal[: signal.size - signal.size % window].reshape(-1, window)
    if usable.size == 0:
        return 0.0
    level = 10 * np.log10(np.mean(usable.astype(np.float64) ** 2, axis=1) + 1e-20)
    return float(np.sum(level > ACTIVITY_THRESHOLD_DB) * window / rate_hz)


__all__ = ["FileRun", "active_seconds", "run_file"]
