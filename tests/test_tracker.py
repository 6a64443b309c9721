"""The attractor tracker keeps output channel k on the same source, and the metric that says so.

Scenes: source A plays throughout, source B enters and leaves (and, in one test, C comes
after). The EDA slot order is shuffled at every decode, as nothing in the network keeps it;
attractors are fixed directions plus noise.
"""

from __future__ import annotations

import numpy as np

from rtsep.engine.tracker import UNASSIGNED, AttractorTracker
from rtsep.evaluate.consistency import (
    channel_consistency,
    entering_scene,
    summarize_consistency,
)

EMBEDDING = 16
CHANNELS = 4
DECODES = 120
B_FROM, B_UNTIL = 40, 80  # decodes in which source B is present


def directions(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, EMBEDDING))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def scene(presence: dict[int, range], seed: int = 1):
    """Per decode: the EDA output (attractors ``[CHANNELS + 1, E]``, existence) with the
    present sources in a random slot order, and which source each slot holds."""
    rng = np.random.default_rng(seed)
    sources = directions(len(presence))
    for decode in range(DECODES):
        present = [s for s, decodes in presence.items() if decode in decodes]
        order = rng.permutation(present)
        attractors = 0.05 * rng.standard_normal((CHANNELS + 1, EMBEDDING))
        existence = np.zeros(CHANNELS + 1)
        for slot, source in enumerate(order):
            attractors[slot] += sources[source]
            existence[slot] = 0.9
        yield attractors, existence, list(order)


def track(presence: dict[int, range], **options):
    """Run a tracker over a scene: ``[DECODES, CHANNELS]`` source on each channel (-1: none),
    and every birth and death as ``(decode, channel)``."""
    tracker = AttractorTracker(CHANNELS, **options)
    carried = np.full((DECODES, CHANNELS), -1)
    births, deaths = [], []
    for decode, (attractors, existence, order) in enumerate(scene(presence)):
        events = tracker.update(attractors, existence)
        births += [(decode, channel) for channel, _ in events.births]
        deaths += [(decode, channel) for channel, _ in events.deaths]
        for channel, slot in enumerate(tracker.assignment):
            if slot != UNASSIGNED:
                carried[decode, channel] = order[slot]
    return carried, births, deaths


def channels_of(carried: np.ndarray, source: int) -> set[int]:
    return {int(c) for c in np.nonzero(carried == source)[1]}


def test_a_source_that_plays_throughout_keeps_its_channel_while_another_comes_and_goes():
    carried, births, deaths = track({0: range(DECODES), 1: range(B_FROM, B_UNTIL)})
    (a_channel,) = channels_of(carried, 0)  # one channel for A, from its birth to the end
    assert (carried[2:, a_channel] == 0).all()  # born after birth_decodes = 3 decodes
    (b_channel,) = channels_of(carried, 1)
    assert b_channel != a_channel
    assert (carried[B_FROM + 2 : B_UNTIL, b_channel] == 1).all()
    assert births == [(2, a_channel), (B_FROM + 2, b_channel)]
    assert deaths == [(B_UNTIL - 1 + 25, b_channel)]  # death_decodes = 25 after it left


def test_a_source_back_within_the_death_hysteresis_gets_its_old_channel():
    presence = {0: range(DECODES), 1: [*range(20, 50), *range(60, 100)]}  # a 10-decode gap
    carried, births, deaths = track(presence)
    assert len(channels_of(carried, 1)) == 1 and deaths == []
    assert len(births) == 2


def test_a_new_source_after_one_died_is_born_without_moving_the_others():
    presence = {0: range(DECODES), 1: range(10, 40), 2: range(80, DECODES)}
    carried, births, deaths = track(presence)
    (a_channel,) = channels_of(carried, 0)
    assert (carried[2:, a_channel] == 0).all()
    assert len(channels_of(carried, 2)) == 1 and a_channel not in channels_of(carried, 2)
    assert [channel for _, channel in deaths] == list(channels_of(carried, 1))


def test_a_blip_shorter_than_the_birth_hysteresis_is_never_born():
    carried, births, _ = track({0: range(DECODES), 1: range(50, 52)})
    assert channels_of(carried, 1) == set() and len(births) == 1


def test_the_metric_scores_the_tracker_1_and_raw_slot_order_less():
    """Audio routed by the tracker (channel k = the slot it assigns) scores 1.0 and no
    switch; routed by raw slot order (what EDA alone gives) it scores below 0.9."""
    presence = {0: range(DECODES), 1: range(B_FROM, B_UNTIL)}
    hop = 160  # samples per decode
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((2, DECODES * hop)).astype(np.float32)
    sources = entering_scene(noise[0], noise[1], rate_hz=DECODES * hop // 6)
    tracked = np.zeros((CHANNELS, DECODES * hop), np.float32)
    raw = np.zeros_like(tracked)
    carried, _, _ = track(presence)
    for decode, (_, _, order) in enumerate(scene(presence)):
        span = slice(decode * hop, (decode + 1) * hop)
        for channel, source in enumerate(carried[decode]):
            if source >= 0:
                tracked[channel, span] = sources[source, span]
        for slot, source in enumerate(order):
            raw[slot, span] = sources[source, span]
    window = 2 * hop
    good = channel_consistency(tracked, sources, window)
    assert [(s.consistency, s.switches) for s in good] == [(1.0, 0), (1.0, 0)]
    assert good[0].heard_windows < good[0].active_windows  # before A's birth: not heard
    swapped = channel_consistency(raw, sources, window)
    assert swapped[0].consistency < 0.9 and swapped[0].switches > 0
    summary = summarize_consistency([good])
    assert summary["all"]["consistency"] == 1.0 and summary["scenes"] == 1


def test_the_metric_counts_a_swap_halfway_as_half():
    rng = np.random.default_rng(0)
    sources = rng.standard_normal((2, 8000))
    outputs = sources.copy()
    outputs[:, 4000:] = sources[::-1, 4000:]  # the two channels swap halfway
    scores = channel_consistency(outputs, sources, 500)
    assert [(s.consistency, s.switches, s.heard_windows) for s in scores] == [(0.5, 1, 16)] * 2
    silent = channel_consistency(np.zeros((2, 8000)), sources, 500)
    assert silent[0].usual_output is None and silent[0].heard_windows == 0


def test_an_entering_scene_gates_the_second_source_only():
    throughout = np.ones(9000, np.float32)
    scene_sources = entering_scene(throughout, throughout, rate_hz=1000)
    assert (scene_sources[0] == 1).all()
    assert (scene_sources[1, :3000] == 0).all() and (scene_sources[1, 6000:] == 0).all()
    assert (scene_sources[1, 3050:5950] == 1).all()


def test_evaluate_consistency_streams_scenes_through_the_engine_and_renders_a_table():
    from types import SimpleNamespace

    import rtsep
    from rtsep.engine.runtime import EngineConfig
    from rtsep.evaluate.consistency import evaluate_consistency
    from rtsep.evaluate.report import _consistency_table

    model = rtsep.load_model()
    rate = model.sample_rate
    t = np.arange(3 * rate) / rate
    rng = np.random.default_rng(0)
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    scenes = [
        SimpleNamespace(sources=np.stack([tone, 0.1 * rng.standard_normal(len(t))])),
        SimpleNamespace(sources=np.stack([0.1 * rng.standard_normal(len(t)), tone])),
    ]
    done = []
    config = EngineConfig(block_samples=model.hop_samples, backend="onnxruntime")
    result = evaluate_consistency(model, scenes, 5, config, progress=lambda: done.append(1))
    assert result["scenes"] == len(done) == 2  # no more scenes than the simulator has
    for role in ("throughout", "entering", "all"):
        row = result[role]
        assert row["sources"] == (4 if role == "all" else 2)
        assert 0.0 < row["heard_fraction"] <= 1.0 and 0.0 <= row["consistency"] <= 1.0
    table = _consistency_table(result)
    assert table[0].startswith("## Channel consistency: 2 scenes") and len(table) == 2 + 2 + 3 + 1
