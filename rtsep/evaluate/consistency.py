"""Channel consistency: does output k keep carrying the same source?

In separate mode the engine's attractor tracker (``engine/tracker.py``) keeps each source on
one output channel while the EDA network re-decodes its attractors. This measures it from the
audio alone:

* cut the outputs ``[K, time]`` and the reference sources ``[S, time]`` into windows;
* in each window where a source is **active** (its energy within ``active_floor_db`` of its
  loudest window) and **heard** (some output correlates with it by at least
  ``min_correlation``), its **best output** is the one that correlates best with it;
* a source's **usual output** is its most frequent best output; its **consistency** is the
  fraction of its heard windows whose best output is the usual one, and its **switches** the
  number of times the best output changes from one heard window to the next.

A tracker that keeps every source on its channel scores 1.0 with 0 switches whatever the
separation quality (which SI-SNRi measures), as long as each source is heard on some output.

:func:`entering_scene` makes the scenes the benchmark uses: one source plays throughout and a
second one enters after a third of the scene and leaves after two thirds, so that a birth and
a death happen while the first source plays on. :func:`evaluate_consistency` streams them
through the engine (the same path as ``rtsep separate``, tracker included) and sums up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Scoring window (seconds): longer than the crossfade of a slot change, short enough to see
#: a swap within a scene.
WINDOW_S = 0.25
ACTIVE_FLOOR_DB = -30.0
MIN_CORRELATION = 0.1
#: The entering source plays from this fraction of the scene to the next.
ENTER_AT, LEAVE_AT = 1 / 3, 2 / 3
#: Its entry and exit are faded over this long (seconds), as sounds start and stop.
EDGE_FADE_S = 0.05
DEFAULT_SCENE_SECONDS = 6.0

RULE = (
    "scenes of 2 validation sources: source 0 plays throughout, source 1 only from 1/3 to 2/3"
    " of the scene (50 ms fades); streamed through the engine in separate mode (tracker on)."
    " In 0.25 s windows where a source is active (energy within 30 dB of its loudest window)"
    " and heard (some output correlates with it by >= 0.1), its best output is the one that"
    " correlates best; consistency = fraction of those windows whose best output is the"
    " source's most frequent one; switches = changes of best output between heard windows"
)


@dataclass(frozen=True)
class SourceConsistency:
    """One source's score: ``usual_output`` (None if never heard), ``consistency`` (0..1, or
    None), ``switches``, ``active_windows`` and ``heard_windows`` (counts)."""

    usual_output: int | None
    consistency: float | None
    switches: int
    active_windows: int
    heard_windows: int


def channel_consistency(
    outputs: np.ndarray,
    sources: np.ndarray,
    window_samples: int,
    *,
    active_floor_db: float = ACTIVE_FLOOR_DB,
    min_correlation: float = MIN_CORRELATION,
) -> list[SourceConsistency]:
    """Score ``outputs [K, time]`` against ``sources [S, time]`` (same rate, sample-aligned)
    in windows of ``window_samples``; one :class:`SourceConsistency` per source."""
    outputs = np.asarray(outputs, np.float64)
    sources = np.asarray(sources, np.float64)
    if outputs.shape[-1] != sources.shape[-1]:
        raise ValueError(f"outputs and sources differ in length: {outputs.shape}, {sources.shape}")
    windows = outputs.shape[-1] // window_samples
    span = windows * window_samples
    out = outputs[:, :span].reshape(len(outputs), windows, window_samples)
    ref = sources[:, :span].reshape(len(sources), windows, window_samples)
    out = out - out.mean(-1, keepdims=True)
    ref = ref - ref.mean(-1, keepdims=True)
    energy = (ref**2).sum(-1)  # [S, W]
    out_norm = np.sqrt((out**2).sum(-1))  # [K, W]
    correlation = np.einsum("kwt,swt->swk", out, ref) / np.maximum(
        np.sqrt(energy)[:, :, None] * out_norm.T[None], 1e-12
    )  # [S, W, K], zero for a silent output
    results = []
    for s in range(len(sources)):
        loudest = energy[s].max(initial=0.0)
        active = energy[s] > max(loudest * 10 ** (active_floor_db / 10), 1e-12)
        best = np.abs(correlation[s]).argmax(-1) if len(outputs) else np.zeros(windows, int)
        heard = active & (np.abs(correlation[s]).max(-1, initial=0.0) >= min_correlation)
        picks = best[heard]
        if len(picks) == 0:
            results.append(SourceConsistency(None, None, 0, int(active.sum()), 0))
            continue
        usual = int(np.bincount(picks).argmax())
        results.append(
            SourceConsistency(
                usual_output=usual,
                consistency=round(float((picks == usual).mean()), 4),
                switches=int((np.diff(picks) != 0).sum()),
                active_windows=int(active.sum()),
                heard_windows=int(len(picks)),
            )
        )
    return results


def entering_scene(throughout: np.ndarray, entering: np.ndarray, rate_hz: int) -> np.ndarray:
    """Sources ``[2, time]``: ``throughout`` as it is, ``entering`` silenced outside
    [``ENTER_AT``, ``LEAVE_AT``] of the scene with ``EDGE_FADE_S`` fades. Their sum is the
    mixture."""
    length = throughout.shape[-1]
    gate = np.zeros(length, np.float32)
    start, stop = int(ENTER_AT * length), int(LEAVE_AT * length)
    gate[start:stop] = 1.0
    fade = min(int(EDGE_FADE_S * rate_hz), (stop - start) // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        gate[start : start + fade] = ramp
        gate[stop - fade : stop] = ramp[::-1]
    return np.stack([throughout, entering * gate]).astype(np.float32)


def summarize_consistency(scores: Sequence[Sequence[SourceConsistency]]) -> dict:
    """Per role (``throughout``, ``entering``) over all scenes: heard-window-weighted mean
    consistency, scenes with no switch, switches per scene, and the fraction of active
    windows heard; ``all`` pools both roles."""

    def pooled(items: list[SourceConsistency]) -> dict:
        heard = [s for s in items if s.heard_windows]
        hits = sum(s.consistency * s.heard_windows for s in heard)
        windows = sum(s.heard_windows for s in heard)
        active = sum(s.active_windows for s in items)
        return {
            "sources": len(items),
            "consistency": round(hits / windows, 4) if windows else None,
            "without_switch": round(sum(s.switches == 0 for s in heard) / len(heard), 4)
            if heard
            else None,
            "switches_per_source": round(sum(s.switches for s in items) / len(items), 3)
            if items
            else None,
            "heard_fraction": round(windows / active, 4) if active else None,
        }

    roles = {
        "throughout": [scene[0] for scene in scores],
        "entering": [scene[1] for scene in scores],
    }
    summary = {role: pooled(items) for role, items in roles.items()}
    summary["all"] = pooled(roles["throughout"] + roles["entering"])
    summary["scenes"] = len(scores)
    return summary


def evaluate_consistency(
    model,
    simulator,
    scenes: int,
    engine_config,
    *,
    progress=None,
) -> dict:
    """Channel consistency of ``model`` on ``scenes`` entering-source scenes built from the
    2-source mixtures of ``simulator`` (a :class:`rtsep.data.MixtureSimulator`), each
    streamed through the engine with ``engine_config`` (an ``EngineConfig``). ``progress``:
    called once per scene. Returns :func:`summarize_consistency` plus ``rule`` and
    ``window_s``."""
    from ..engine.file_runner import run_file

    rate = model.sample_rate
    window = int(round(WINDOW_S * rate))
    scores = []
    for index in range(min(scenes, len(simulator))):
        item = simulator[index]
        sources = entering_scene(item.sources[0], item.sources[1], rate)
        run = run_file(model, sources.sum(0)[None], rate, engine_config, None, "separate")
        scores.append(channel_consistency(run.outputs, sources, window))
        if progress is not None:
            progress()
    return {"rule": RULE, "window_s": WINDOW_S, **summarize_consistency(scores)}
