"""Corpus reader, source-wise split and mixture simulator, on a tiny synthetic corpus."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_corpus import HELD_OUT, RATE_HZ, SOUNDS, UNUSABLE, write_corpus
from torch.utils.data import DataLoader

from rtsep.data import (
    Corpus,
    Entry,
    MixtureSimulator,
    collate,
    split_entries,
    user_scenes,
    validation_sources,
)
from rtsep.data.corpus import FRAME_SAMPLES, active_frames, frame_power
from rtsep.data.scenes import SCENE_SECONDS

SEGMENT_S = 1.0
SEGMENT_SAMPLES = round(SEGMENT_S * RATE_HZ)


def _path(name: str) -> str:
    source, label, _ = SOUNDS[name]
    return f"audio/{source}/{label}/{name}.flac"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root, SOUNDS, RATE_HZ)
    return Corpus(root)


def _simulator(corpus: Corpus, **options) -> MixtureSimulator:
    options = {"segment_seconds": SEGMENT_S, "max_sources": 3, "length": 50, **options}
    return MixtureSimulator(corpus.usable(), corpus=corpus, **options)


def test_manifest_rows_become_entries(corpus: Corpus) -> None:
    assert len(corpus) == len(SOUNDS)
    assert corpus.labels == ["env", "music", "speech"]
    chord = next(entry for entry in corpus if entry.subclass == "chord")
    assert chord == Entry(_path("chord"), "tunes_a", "music", "chord", 4.0, "CC0-1.0", "synthetic")


def test_audio_loads_as_float32_mono_matching_the_file(corpus: Corpus) -> None:
    audio = corpus.load(_path("chirp"))
    assert audio.dtype == np.float32 and audio.shape == (RATE_HZ,)
    np.testing.assert_allclose(audio, SOUNDS["chirp"][2], atol=1.0 / 32768)
    np.testing.assert_array_equal(corpus.read(_path("chirp"), 100, 200), audio[100:200])


def test_wrong_sample_rate_is_an_error_naming_the_file(tmp_path: Path) -> None:
    write_corpus(tmp_path, {"chord": SOUNDS["chord"]}, rate_hz=8000)
    with pytest.raises(ValueError, match=r"chord\.flac.*8000 Hz"):
        Corpus(tmp_path).load(_path("chord"))


def test_unreadable_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    write_corpus(tmp_path, {"chord": SOUNDS["chord"]}, RATE_HZ)
    (tmp_path / _path("chord")).write_bytes(b"not audio")
    with pytest.raises(ValueError, match=r"cannot read audio file .*chord\.flac"):
        Corpus(tmp_path).load(_path("chord"))


def test_silent_clipped_and_short_files_are_not_usable(corpus: Corpus) -> None:
    usable = {entry.subclass for entry in corpus.usable()}
    assert usable == set(SOUNDS) - UNUSABLE


def test_split_holds_out_whole_sources(corpus: Corpus) -> None:
    train = split_entries(corpus, "train", held_out=HELD_OUT)
    validation = split_entries(corpus, "validation", held_out=HELD_OUT)
    assert {e.source for e in validation} == HELD_OUT
    assert not {e.source for e in train} & {e.source for e in validation}
    assert len(train) + len(validation) == len(corpus)


def test_recorded_split_holds_out_a_source_of_every_class() -> None:
    assert {"hedgewars_voices", "colobot_music", "ufoai_sfx"} <= validation_sources()


def test_same_seed_and_index_give_identical_mixtures(corpus: Corpus) -> None:
    first, second = _simulator(corpus, seed=7), _simulator(corpus, seed=7)
    for index in (0, 3, 11):
        a, b = first[index], second[index]
        np.testing.assert_array_equal(a.mixture, b.mixture)
        np.testing.assert_array_equal(a.sources, b.sources)
        np.testing.assert_array_equal(a.onsets, b.onsets)
        assert (a.labels, a.files) == (b.labels, b.files)
    np.testing.assert_array_equal(first[5].mixture, first[5].mixture)


def test_different_index_or_seed_gives_a_different_mixture(corpus: Corpus) -> None:
    simulator = _simulator(corpus, seed=7)
    assert not np.array_equal(simulator[0].mixture, simulator[1].mixture)
    assert not np.array_equal(simulator[0].mixture, _simulator(corpus, seed=8)[0].mixture)


@pytest.mark.parametrize(
    "options",
    [{}, {"reverb_probability": 1.0, "lowpass_probability": 1.0}, {"partial_probability": 1.0}],
    ids=["default", "reverb_and_lowpass", "all_partial"],
)
def test_mixture_is_the_sum_of_its_sources_and_peaks_below_0_9(corpus: Corpus, options) -> None:
    simulator = _simulator(corpus, min_sources=1, max_sources=3, **options)
    counts = set()
    for index in range(12):
        item = simulator[index]
        n = len(item.sources)
        counts.add(n)
        assert item.mixture.dtype == item.sources.dtype == np.float32
        assert item.mixture.shape == (SEGMENT_SAMPLES,)
        assert item.sources.shape == (n, SEGMENT_SAMPLES)
        assert item.onsets.dtype == np.int64 and item.onsets.shape == (n,)
        assert len(item.labels) == len(item.files) == len(set(item.files)) == n
        np.testing.assert_allclose(item.sources.sum(axis=0), item.mixture, atol=1e-6)
        assert np.abs(item.mixture).max() <= 0.9
        assert np.all(np.diff(item.onsets) >= 0), "sources are ordered by onset"
    assert counts <= {1, 2, 3} and len(counts) > 1


def test_mixture_level_is_near_minus_25_dbfs(corpus: Corpus) -> None:
    simulator = _simulator(corpus)
    for index in range(10):
        mixture = simulator[index].mixture
        rms_dbfs = 10 * np.log10(np.mean(mixture.astype(np.float64) ** 2))
        peak_limited = np.abs(mixture).max() > 0.899
        assert rms_dbfs <= -20.0 + 1e-3 and (peak_limited or rms_dbfs >= -30.0 - 1e-3)


def test_onset_is_where_a_partial_source_starts(corpus: Corpus) -> None:
    long_tones = [entry for entry in corpus.usable() if entry.subclass in ("chord", "fifth")]
    simulator = MixtureSimulator(
        long_tones,
        corpus=corpus,
        segment_seconds=SEGMENT_S,
        max_sources=2,
        partial_probability=1.0,
        lowpass_probability=0.0,
        length=30,
    )
    starts_inside = stops_inside = 0
    for index in range(len(simulator)):
        item = simulator[index]
        for source, onset in zip(item.sources, item.onsets, strict=True):
            nonzero = np.flatnonzero(source)
            start, stop = nonzero[0], nonzero[-1] + 1
            starts_inside += start > 0
            stops_inside += stop < SEGMENT_SAMPLES
            assert 0 <= onset - start < 2 * FRAME_SAMPLES  # within the 10 ms fade-in
            assert not active_frames(frame_power(source))[: onset // FRAME_SAMPLES].any()
    assert starts_inside > 0 and stops_inside > 0


def test_whole_segment_sources_start_at_sample_zero(corpus: Corpus) -> None:
    long_tones = [entry for entry in corpus.usable() if entry.subclass in ("chord", "fifth")]
    simulator = MixtureSimulator(
        long_tones,
        corpus=corpus,
        segment_seconds=SEGMENT_S,
        partial_probability=0.0,
        length=5,
        max_sources=2,
    )
    for index in range(len(simulator)):
        assert simulator[index].onsets.max() < 4


def test_same_class_probability_controls_class_mixing(corpus: Corpus) -> None:
    same = _simulator(corpus, min_sources=2, same_class_probability=1.0)
    spread = _simulator(corpus, min_sources=2, same_class_probability=0.0)
    for index in range(8):
        assert len(set(same[index].labels)) == 1
        assert len(set(spread[index].labels)) > 1


def test_lowpass_band_limits_any_class(corpus: Corpus) -> None:
    noise = [entry for entry in corpus.usable() if entry.subclass == "rain"]
    options = {"segment_seconds": SEGMENT_S, "max_sources": 1, "length": 6}
    plain = MixtureSimulator(noise, corpus=corpus, lowpass_probability=0.0, **options)
    filtered = MixtureSimulator(noise, corpus=corpus, lowpass_probability=1.0, **options)

    def fraction_above_7_5_khz(mixture: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(mixture)) ** 2
        return spectrum[round(7500 * SEGMENT_S) :].sum() / spectrum.sum()

    for index in range(len(plain)):
        assert fraction_above_7_5_khz(plain[index].mixture) > 0.04  # white: 1/16 of the power
        assert fraction_above_7_5_khz(filtered[index].mixture) < 0.02


def test_collate_pads_sources_labels_and_onsets(corpus: Corpus) -> None:
    simulator = _simulator(corpus, min_sources=1, max_sources=3)
    items = [simulator[index] for index in range(6)]
    batch = collate(items, max_sources=4, labels=corpus.labels)
    assert batch["mixture"].shape == (6, SEGMENT_SAMPLES)
    assert batch["sources"].shape == (6, 4, SEGMENT_SAMPLES)
    assert batch["count"].tolist() == [len(item.labels) for item in items]
    for b, item in enumerate(items):
        n = len(item.labels)
        assert batch["label_ids"][b, :n].tolist() == [corpus.labels.index(x) for x in item.labels]
        assert batch["label_ids"][b, n:].eq(-1).all()
        assert batch["onsets"][b, :n].tolist() == item.onsets.tolist()
        assert batch["onsets"][b, n:].eq(SEGMENT_SAMPLES).all()
        assert batch["sources"][b, n:].eq(0).all()
    assert batch["label_ids"].dtype == batch["onsets"].dtype == torch.int64


def test_dataloader_batches_simulated_mixtures(corpus: Corpus) -> None:
    simulator = _simulator(corpus, max_sources=3, length=8)
    loader = DataLoader(
        simulator, batch_size=4, collate_fn=partial(collate, max_sources=3, labels=corpus.labels)
    )
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["sources"].shape == (4, 3, SEGMENT_SAMPLES)


def test_count_weights_set_the_source_count_distribution(corpus: Corpus) -> None:
    only_two = _simulator(corpus, min_sources=1, count_weights=[0.0, 1.0, 0.0])
    assert {len(only_two[index].sources) for index in range(20)} == {2}
    mostly_three = _simulator(corpus, min_sources=1, count_weights=[1.0, 1.0, 8.0], length=200)
    counts = np.bincount([len(mostly_three[i].sources) for i in range(200)], minlength=4)
    assert counts[3] > counts[1] + counts[2]


@pytest.mark.parametrize("weights", [[1.0, 1.0], [1.0, -1.0, 1.0], [0.0, 0.0, 0.0]])
def test_bad_count_weights_are_an_error(corpus: Corpus, weights: list[float]) -> None:
    with pytest.raises(ValueError, match="count_weights"):
        _simulator(corpus, min_sources=1, count_weights=weights)


@pytest.mark.parametrize("speed", [0.8, 1.25])
def test_speed_perturbation_moves_the_pitch_by_its_factor(corpus: Corpus, speed: float) -> None:
    octave = [entry for entry in corpus.usable() if entry.subclass == "octave"]  # 440 + 880 Hz
    options = {"segment_seconds": SEGMENT_S, "max_sources": 1, "length": 4}
    perturbed = MixtureSimulator(
        octave,
        corpus=corpus,
        lowpass_probability=0.0,
        partial_probability=0.0,
        speed_probability=1.0,
        speed_range=(speed, speed),
        **options,
    )
    for index in range(len(perturbed)):
        mixture = perturbed[index].mixture
        spectrum = np.abs(np.fft.rfft(mixture * np.hanning(len(mixture))))
        peaks_hz = np.sort(np.argsort(spectrum)[-2:]) * RATE_HZ / len(mixture)
        assert peaks_hz == pytest.approx([440.0 * speed, 880.0 * speed], abs=2.0)
        assert np.all(np.isfinite(mixture)) and len(mixture) == round(SEGMENT_S * RATE_HZ)


def test_a_short_file_repeats_with_pauses_when_asked(corpus: Corpus) -> None:
    chirp = [entry for entry in corpus.usable() if entry.subclass == "chirp"]  # 1 s long
    options = {"segment_seconds": 4.0, "max_sources": 1, "length": 6, "lowpass_probability": 0.0}
    once = MixtureSimulator(chirp, corpus=corpus, partial_probability=0.0, **options)
    repeated = MixtureSimulator(
        chirp, corpus=corpus, partial_probability=0.0, repeat_probability=1.0, **options
    )
    frame_s = FRAME_SAMPLES / RATE_HZ
    for index in range(len(repeated)):
        plays = _runs(active_frames(frame_power(repeated[index].mixture)))
        assert len(plays) >= 3  # 1-s plays with 0.2-1 s pauses fill 4 s at least 3 times
        assert repeated[index].onsets[0] <= 0.2 * RATE_HZ + FRAME_SAMPLES
        pauses_s = [(start - end) * frame_s for (_, end), (start, _) in zip(plays, plays[1:])]
        assert all(0.15 <= pause <= 1.05 for pause in pauses_s)
        assert len(_runs(active_frames(frame_power(once[index].mixture)))) == 1


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """``(first, end)`` frame of every run of True in ``active``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], active.astype(int), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def test_user_scenes_start_every_source_together_at_close_levels(corpus: Corpus) -> None:
    scenes = user_scenes(corpus.usable(), corpus=corpus, seed=3, length=30)
    counts = []
    for index in range(len(scenes)):
        item = scenes[index]
        counts.append(len(item.sources))
        assert len(item.mixture) == round(SCENE_SECONDS * RATE_HZ)
        assert item.onsets.max() <= 0.2 * RATE_HZ + FRAME_SAMPLES  # all from the first 0.2 s
        power = [frame_power(source) for source in item.sources]
        levels_db = [10 * np.log10(p[active_frames(p)].mean()) for p in power]
        assert max(levels_db) - min(levels_db) <= 10.0 + 0.1  # gains within ±5 dB
    assert set(counts) == {1, 2, 3}
