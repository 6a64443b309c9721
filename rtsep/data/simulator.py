"""On-the-fly mixtures of corpus files, deterministic from (seed, index).

Each item draws 1..``max_sources`` files (never the same file twice), crops each where it has
energy, optionally band-limits, reverberates and cuts it to start/stop inside the segment,
normalises it to unit RMS over its active frames, applies a random relative gain and sums. A
final common factor sets the mixture level without touching the relative levels, so
``mixture == sources.sum(0)`` to float32 precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import soxr
import torch
from scipy import signal
from torch.utils.data import Dataset

from rtsep.data.corpus import (
    FRAME_SAMPLES,
    Corpus,
    Entry,
    active_frames,
    activity_threshold,
    frame_power,
)

FADE_SECONDS = 0.01  # raised-cosine ramp where a file is cut inside the segment
MIN_ACTIVE_SECONDS = 0.25  # shortest span a partial source is active
LOWPASS_CUTOFF_HZ = (3000.0, 7500.0)
LOWPASS_ORDER = 8
LOWPASS_PREROLL_SAMPLES = 512  # filtered and dropped so the filter starts settled
RT60_RANGE_S = (0.2, 1.0)
DIRECT_TO_REVERB_DB = (0.0, 12.0)
REPEAT_PAUSE_SECONDS = (0.2, 1.0)  # silence between the plays of a repeated short file


@dataclass
class Mixture:
    """One simulated mixture of ``n`` sources over ``time`` samples.

    ``sources`` are ordered by onset; ``mixture == sources.sum(0)`` to float32 precision.
    ``onsets[i]`` is the first sample of source ``i`` that reaches the activity threshold
    (-40 dB re its loudest 10 ms frame) inside its first active frame.
    """

    mixture: np.ndarray  # float32 [time]
    sources: np.ndarray  # float32 [n, time]
    labels: list[str]  # class per source
    onsets: np.ndarray  # int64 [n], samples
    files: list[str]  # corpus-relative path per source


class MixtureSimulator(Dataset):
    """Indexable set of ``length`` mixtures; item ``i`` depends only on ``(seed, i)``.

    ``entries`` are the candidate files (e.g. one part of ``split_entries``); the unusable ones
    (see ``Corpus.is_usable``) are dropped at construction, which decodes every entry once into
    ``corpus``'s cache. A ``torch.utils.data.DataLoader`` can iterate it with
    ``collate_fn=functools.partial(collate, max_sources=..., labels=...)``.

    Per item: the source count is drawn from ``[min_sources, max_sources]``, uniformly or with
    the relative ``count_weights`` (one per count, in order); with probability
    ``same_class_probability`` all sources share one class, otherwise the classes are spread
    (all distinct while there are enough classes). Classes are equally likely; within a class a
    file is drawn with probability proportional to its length. Each source is, independently:
    band-limited with probability ``lowpass_probability`` (Butterworth low-pass, cutoff uniform
    in 3-7.5 kHz, whatever its class); cut to start and/or stop inside the segment with
    probability ``partial_probability`` (active at least 0.25 s, 10 ms fades at cuts);
    played faster or slower with probability ``speed_probability`` (resampled by a factor
    uniform in ``speed_range``: pitch, formants and tempo move together, so a few speakers and
    instruments stand for many);
    a file shorter than its span is played once at a random start, or, with probability
    ``repeat_probability``, repeated from a start within its first pause with pauses of
    0.2-1 s between plays (a dog that barks, a door that knocks);
    reverberated with probability ``reverb_probability`` (exponentially decaying noise RIR,
    RT60 0.2-1 s); normalised to unit RMS over its active frames and given a gain uniform in
    ``gain_range_db`` (dB). Finally all are scaled by one factor so the mixture RMS is uniform in
    ``mixture_rms_dbfs`` (dB re full scale) unless that would put its peak above ``max_peak``,
    in which case the peak is ``max_peak``.
    """

    def __init__(
        self,
        entries: Sequence[Entry],
        *,
        corpus: Corpus,
        sample_rate: int = 16000,
        segment_seconds: float = 3.0,
        min_sources: int = 1,
        max_sources: int = 4,
        count_weights: Sequence[float] | None = None,
        seed: int = 0,
        same_class_probability: float = 0.3,
        gain_range_db: tuple[float, float] = (-10.0, 10.0),
        partial_probability: float = 0.5,
        lowpass_probability: float = 0.3,
        reverb_probability: float = 0.0,
        speed_probability: float = 0.0,
        speed_range: tuple[float, float] = (0.8, 1.25),
        repeat_probability: float = 0.0,
        mixture_rms_dbfs: tuple[float, float] = (-30.0, -20.0),
        max_peak: float = 0.9,
        length: int = 10**7,
    ) -> None:
        if sample_rate != corpus.sample_rate_hz:
            raise ValueError(
                f"sample_rate {sample_rate} Hz differs from the corpus rate"
                f" {corpus.sample_rate_hz} Hz"
            )
        if not 1 <= min_sources <= max_sources:
            raise ValueError(
                f"need 1 <= min_sources <= max_sources, got {min_sources}, {max_sources}"
            )
        self.corpus = corpus
        self.sample_rate = sample_rate
        self.segment_samples = round(segment_seconds * sample_rate)
        if self.segment_samples < 2 * MIN_ACTIVE_SECONDS * sample_rate:
            raise ValueError(f"segment_seconds must be at least {2 * MIN_ACTIVE_SECONDS} s")
        self.min_sources = min_sources
        self.max_sources = max_sources
        self.count_probabilities = None
        if count_weights is not None:
            weights = np.asarray(count_weights, dtype=np.float64)
            if (
                len(weights) != max_sources - min_sources + 1
                or (weights < 0).any()
                or weights.sum() <= 0
            ):
                raise ValueError(
                    f"count_weights needs {max_sources - min_sources + 1} non-negative weights"
                    f" (counts {min_sources}..{max_sources}), not all zero;"
                    f" got {list(count_weights)}"
                )
            self.count_probabilities = weights / weights.sum()
        self.seed = seed
        self.same_class_probability = same_class_probability
        self.gain_range_db = gain_range_db
        self.partial_probability = partial_probability
        self.lowpass_probability = lowpass_probability
        self.reverb_probability = reverb_probability
        self.speed_probability = speed_probability
        self.speed_range = speed_range
        self.repeat_probability = repeat_probability
        self.mixture_rms_dbfs = mixture_rms_dbfs
        self.max_peak = max_peak
        self.length = length
        self.entries = corpus.usable(entries)
        if len(self.entries) < max_sources:
            raise ValueError(
                f"only {len(self.entries)} usable files for mixtures of up to {max_sources} sources"
            )
        self.labels = sorted({entry.label for entry in self.entries})
        by_label = np.array([self.labels.index(entry.label) for entry in self.entries])
        samples = np.array([corpus.samples(entry) for entry in self.entries], dtype=np.float64)
        self._weights = [np.where(by_label == k, samples, 0.0) for k in range(len(self.labels))]
        ramp = np.linspace(0.0, np.pi, round(FADE_SECONDS * sample_rate))
        self._fade = (0.5 - 0.5 * np.cos(ramp)).astype(np.float32)
        self._min_active = round(MIN_ACTIVE_SECONDS * sample_rate)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Mixture:
        if not 0 <= index < self.length:
            raise IndexError(f"mixture index {index} outside [0, {self.length})")
        rng = np.random.default_rng((self.seed, index))
        count = self._draw_count(rng)
        chosen = self._draw_files(rng, self._draw_classes(rng, count))
        sources = np.stack([self._render(rng, self.entries[i]) for i in chosen])
        onsets = np.array([_onset(source) for source in sources], dtype=np.int64)
        order = np.argsort(onsets, kind="stable")
        sources = sources[order] * self._mixture_scale(rng, sources.sum(axis=0))
        return Mixture(
            mixture=sources.sum(axis=0),
            sources=sources,
            labels=[self.entries[chosen[i]].label for i in order],
            onsets=onsets[order],
            files=[self.entries[chosen[i]].path for i in order],
        )

    def _draw_count(self, rng: np.random.Generator) -> int:
        if self.count_probabilities is None:
            return int(rng.integers(self.min_sources, self.max_sources + 1))
        return self.min_sources + int(
            rng.choice(len(self.count_probabilities), p=self.count_probabilities)
        )

    def _draw_classes(self, rng: np.random.Generator, count: int) -> list[int]:
        n_labels = len(self.labels)
        if count == 1 or n_labels == 1 or rng.random() < self.same_class_probability:
            return [int(rng.integers(n_labels))] * count
        spread = list(rng.permutation(n_labels)[:count])
        spread += list(rng.integers(n_labels, size=count - len(spread)))
        return [int(k) for k in rng.permutation(spread)]

    def _draw_files(self, rng: np.random.Generator, classes: list[int]) -> list[int]:
        """One distinct file index per class; a class with no file left lends to the others."""
        weights = [w.copy() for w in self._weights]
        chosen = []
        for label in classes:
            if weights[label].sum() <= 0.0:
                label = next(k for k in rng.permutation(len(weights)) if weights[k].sum() > 0.0)
            cumulative = np.cumsum(weights[label])
            index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
            chosen.append(index)
            for w in weights:
                w[index] = 0.0
        return chosen

    def _render(self, rng: np.random.Generator, entry: Entry) -> np.ndarray:
        """One source over the segment, float32 [segment_samples], gain applied."""
        total = self.segment_samples
        start, stop = 0, total
        if rng.random() < self.partial_probability:
            cut = int(rng.integers(1, 4))  # 1: starts inside, 2: stops inside, 3: both
            if cut & 1:
                start = int(rng.integers(1, total - self._min_active))
            if cut & 2:
                stop = int(rng.integers(start + self._min_active, total))
        span = stop - start
        # No draw at all when speed perturbation is off, so that the mixtures of a seed (the
        # evaluation's among them) stay what they were before it existed.
        speed = 1.0
        if self.speed_probability > 0.0 and rng.random() < self.speed_probability:
            speed = float(rng.uniform(*self.speed_range))
        file_span = int(np.ceil(span * speed))  # file samples that play in ``span`` samples
        file_samples = self.corpus.samples(entry)
        if file_samples <= file_span:
            # No draw when repetition is off, so the mixtures of a seed stay what they were.
            if self.repeat_probability > 0.0 and rng.random() < self.repeat_probability:
                return self._repeated(rng, entry, start, stop)
            file_start, file_stop = 0, file_samples
            played = min(span, int(file_samples / speed))  # samples it lasts in the segment
            start += int(rng.integers(0, span - played + 1))
        else:
            file_start = self._energetic_start(rng, entry, file_span)
            file_stop = file_start + file_span
            played = span

        lowpass = rng.random() < self.lowpass_probability
        preroll = min(file_start, LOWPASS_PREROLL_SAMPLES) if lowpass else 0
        audio = self.corpus.read(entry, file_start - preroll, file_stop)
        if lowpass:
            cutoff_hz = rng.uniform(*LOWPASS_CUTOFF_HZ)
            audio = signal.sosfilt(_lowpass(round(cutoff_hz, -1), self.sample_rate), audio)
            audio = audio[preroll:].astype(np.float32)
        if speed != 1.0:
            resampled = soxr.resample(audio, self.sample_rate * speed, self.sample_rate)
            audio = np.zeros(played, dtype=np.float32)
            audio[: min(played, len(resampled))] = resampled[:played]
        fade = self._fade  # every crop is at least MIN_ACTIVE_SECONDS long: longer than 2 fades
        if file_start > 0 and start > 0:
            audio[: len(fade)] *= fade
        if file_stop < file_samples and stop < total:
            audio[len(audio) - len(fade) :] *= fade[::-1]

        source = np.zeros(total, dtype=np.float32)
        source[start : start + len(audio)] = audio
        return self._finish(rng, source)

    def _repeated(
        self, rng: np.random.Generator, entry: Entry, start: int, stop: int
    ) -> np.ndarray:
        """A short file played over and over in ``[start, stop)`` samples with random pauses,
        the first play beginning within one pause of ``start``; float32 [segment_samples]."""
        clip = self.corpus.read(entry, 0, self.corpus.samples(entry))
        if rng.random() < self.lowpass_probability:
            cutoff_hz = rng.uniform(*LOWPASS_CUTOFF_HZ)
            clip = signal.sosfilt(_lowpass(round(cutoff_hz, -1), self.sample_rate), clip)
            clip = clip.astype(np.float32)
        source = np.zeros(self.segment_samples, dtype=np.float32)
        pause_range = [round(seconds * self.sample_rate) for seconds in REPEAT_PAUSE_SECONDS]
        position = start + int(rng.integers(0, pause_range[0] + 1))
        while position < stop:
            played = min(len(clip), stop - position)
            source[position : position + played] = clip[:played]
            position += len(clip) + int(rng.integers(pause_range[0], pause_range[1] + 1))
        return self._finish(rng, source)

    def _finish(self, rng: np.random.Generator, source: np.ndarray) -> np.ndarray:
        """``source`` [segment_samples] reverberated (maybe), at unit active RMS times its
        random gain."""
        total = self.segment_samples
        if rng.random() < self.reverb_probability:
            source = signal.oaconvolve(source, self._room_response(rng))[:total]
            source = source.astype(np.float32)
        power = frame_power(source)
        active_rms = max(float(np.sqrt(power[active_frames(power)].mean())), 1e-12)
        gain_db = rng.uniform(*self.gain_range_db)
        return source * np.float32(10.0 ** (gain_db / 20.0) / active_rms)

    def _energetic_start(self, rng: np.random.Generator, entry: Entry, span: int) -> int:
        """A crop start (samples) among those whose window holds at least half the most active
        frames any window of ``span`` samples holds in this file."""
        active = active_frames(self.corpus.stats(entry).frame_power)
        window = max(1, span // FRAME_SAMPLES)
        last_start = self.corpus.samples(entry) - span
        cumulative = np.concatenate(([0], np.cumsum(active)))
        counts = (cumulative[window:] - cumulative[:-window])[: last_start // FRAME_SAMPLES + 1]
        candidates = np.flatnonzero(counts >= max(1, counts.max() / 2))
        if len(candidates) == 0:
            return int(rng.integers(0, last_start + 1))
        frame = int(candidates[rng.integers(len(candidates))])
        return min(frame * FRAME_SAMPLES + int(rng.integers(FRAME_SAMPLES)), last_start)

    def _room_response(self, rng: np.random.Generator) -> np.ndarray:
        """A synthetic RIR: unit direct path plus exponentially decaying noise, float32 [taps]."""
        rt60_s = rng.uniform(*RT60_RANGE_S)
        t_s = np.arange(round(rt60_s * self.sample_rate)) / self.sample_rate
        tail = rng.standard_normal(len(t_s)) * 10.0 ** (-3.0 * t_s / rt60_s)
        tail *= 10.0 ** (-rng.uniform(*DIRECT_TO_REVERB_DB) / 20.0) / np.linalg.norm(tail)
        tail[0] += 1.0
        return tail.astype(np.float32)

    def _mixture_scale(self, rng: np.random.Generator, mixture: np.ndarray) -> np.float32:
        target_rms = 10.0 ** (rng.uniform(*self.mixture_rms_dbfs) / 20.0)
        rms = float(np.sqrt(np.mean(np.square(mixture, dtype=np.float64))))
        peak = float(np.abs(mixture).max())
        scale = target_rms / rms if rms > 0.0 else 1.0
        if peak * scale > self.max_peak:
            scale = self.max_peak * (1.0 - 1e-6) / peak  # margin for float32 rounding
        return np.float32(scale)


@lru_cache(maxsize=256)
def _lowpass(cutoff_hz: float, sample_rate: int) -> np.ndarray:
    return signal.butter(LOWPASS_ORDER, cutoff_hz, fs=sample_rate, output="sos")


def _onset(source: np.ndarray) -> int:
    """First sample of ``source`` [time] reaching the activity threshold in its first active
    frame (see ``active_frames``); 0 for a silent source."""
    power = frame_power(source)
    active = active_frames(power)
    if not active.any():
        return 0
    first = int(np.argmax(active)) * FRAME_SAMPLES
    frame = np.square(source[first : first + FRAME_SAMPLES])
    return first + int(np.argmax(frame >= activity_threshold(power)))


def collate(
    mixtures: list[Mixture], max_sources: int, labels: list[str]
) -> dict[str, torch.Tensor]:
    """Batch mixtures of equal length T, padding the source axis to S = ``max_sources``.

    Returns ``mixture`` float32 [B, T]; ``sources`` float32 [B, S, T] (zeros for padding);
    ``count`` int64 [B]; ``label_ids`` int64 [B, S], the index in ``labels`` (-1 for padding);
    ``onsets`` int64 [B, S] in samples (T for padding).
    """
    time = len(mixtures[0].mixture)
    batch = len(mixtures)
    sources = torch.zeros(batch, max_sources, time)
    label_ids = torch.full((batch, max_sources), -1, dtype=torch.int64)
    onsets = torch.full((batch, max_sources), time, dtype=torch.int64)
    for b, item in enumerate(mixtures):
        n = len(item.sources)
        if n > max_sources or len(item.mixture) != time:
            raise ValueError(
                f"mixture {b} has {n} sources over {len(item.mixture)} samples;"
                f" the batch allows {max_sources} sources over {time} samples"
            )
        sources[b, :n] = torch.from_numpy(item.sources)
        unknown = set(item.labels) - set(labels)
        if unknown:
            raise ValueError(f"mixture {b} has label(s) {sorted(unknown)} not in {labels}")
        label_ids[b, :n] = torch.tensor([labels.index(label) for label in item.labels])
        onsets[b, :n] = torch.from_numpy(item.onsets)
    return {
        "mixture": torch.from_numpy(np.stack([item.mixture for item in mixtures])),
        "sources": sources,
        "count": torch.tensor([len(item.sources) for item in mixtures], dtype=torch.int64),
        "label_ids": label_ids,
        "onsets": onsets,
    }
