"""Read a corpus folder: a ``manifest.csv`` plus 16 kHz mono audio files.

The manifest has one row per file with the columns ``path`` (relative to the corpus folder),
``source``, ``class``, ``subclass``, ``duration_s``, ``licence`` and ``origin`` (further columns
are ignored). Audio is decoded once and kept in memory: as int16 when the file is 16-bit PCM
(exact, half the size of float32), as float32 otherwise.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE_HZ = 16000
FRAME_SAMPLES = 160  # 10 ms at 16 kHz: the resolution of every activity measure
ACTIVE_BELOW_PEAK_DB = 40.0  # a frame is active when within this many dB of the loudest frame
MIN_DURATION_S = 0.25
SILENT_PEAK_FRAME_DBFS = -50.0  # a file whose loudest frame is quieter is "nearly silent"
CLIP_LEVEL = 0.999
MAX_CLIPPED_FRACTION = 0.01

_MANIFEST_COLUMNS = ("path", "source", "class", "subclass", "duration_s", "licence", "origin")
_INT16_SUBTYPES = {"PCM_16", "PCM_S8", "PCM_U8"}


@dataclass(frozen=True)
class Entry:
    """One manifest row. ``path`` is relative to the corpus folder; ``label`` is the class."""

    path: str
    source: str
    label: str
    subclass: str
    duration_s: float
    licence: str
    origin: str


@dataclass(frozen=True)
class FileStats:
    """Level statistics of one file, computed from its decoded audio.

    ``frame_power`` holds the mean square of each 10 ms frame (``FRAME_SAMPLES`` samples; the last
    frame may be shorter), shape [ceil(samples / FRAME_SAMPLES)], in full-scale units squared.
    """

    samples: int
    clipped_fraction: float
    frame_power: np.ndarray

    @property
    def peak_frame_dbfs(self) -> float:
        """Level of the loudest 10 ms frame, in dB re full scale (-inf for digital silence)."""
        return power_db(float(self.frame_power.max(initial=0.0)))


def power_db(power: float) -> float:
    """Mean-square power (full scale = 1) to dB; -inf for zero."""
    return 10.0 * np.log10(power) if power > 0.0 else -np.inf


def frame_power(audio: np.ndarray, frame_samples: int = FRAME_SAMPLES) -> np.ndarray:
    """Mean square of consecutive non-overlapping frames of ``audio`` [time].

    Returns shape [ceil(time / frame_samples)]; the last frame averages only its own samples.
    """
    audio = np.asarray(audio, dtype=np.float32)
    whole = len(audio) // frame_samples
    square = np.square(audio, dtype=np.float32)
    power = square[: whole * frame_samples].reshape(whole, frame_samples).mean(axis=1)
    if len(audio) > whole * frame_samples:
        power = np.append(power, square[whole * frame_samples :].mean())
    return power


def activity_threshold(power: np.ndarray) -> float:
    """The power (mean square) a frame must reach to be active: ``ACTIVE_BELOW_PEAK_DB`` (40 dB)
    below the loudest of ``power`` [frames]; +inf when every frame is digitally silent."""
    peak = float(power.max(initial=0.0))
    return peak * 10.0 ** (-ACTIVE_BELOW_PEAK_DB / 10.0) if peak > 0.0 else np.inf


def active_frames(power: np.ndarray) -> np.ndarray:
    """Boolean mask [frames] of the frames of ``power`` that reach ``activity_threshold``."""
    return power >= activity_threshold(power)


class Corpus:
    """The entries of one corpus folder and their audio, decoded on first use and cached.

    ``root`` is the folder holding ``manifest.csv``. Every audio file must be mono or is mixed
    down; its rate must be ``sample_rate_hz``, else loading raises ``ValueError`` naming the file.
    """

    def __init__(self, root: str | Path, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
        self.root = Path(root)
        self.sample_rate_hz = sample_rate_hz
        self.entries: tuple[Entry, ...] = tuple(_read_manifest(self.root / "manifest.csv"))
        self._audio: dict[str, np.ndarray] = {}
        self._stats: dict[str, FileStats] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    @property
    def labels(self) -> list[str]:
        """Sorted class names present in the manifest."""
        return sorted({entry.label for entry in self.entries})

    def load(self, entry: Entry | str) -> np.ndarray:
        """The whole file as float32 [time] at ``sample_rate_hz``, full scale = 1 (a new array)."""
        return self.read(entry, 0, None)

    def read(self, entry: Entry | str, start: int, stop: int | None) -> np.ndarray:
        """Samples ``[start, stop)`` of a file as a new float32 array [stop - start]."""
        raw = self._raw(_path_of(entry))[start:stop]
        if raw.dtype == np.int16:
            return raw.astype(np.float32) * np.float32(1.0 / 32768.0)
        return raw.copy()

    def samples(self, entry: Entry | str) -> int:
        """Length of a file in samples (decodes it on first use)."""
        return len(self._raw(_path_of(entry)))

    def stats(self, entry: Entry | str) -> FileStats:
        """Level statistics of a file, computed on first use and cached."""
        path = _path_of(entry)
        if path not in self._stats:
            audio = self.load(path)
            clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL)) if len(audio) else 0.0
            self._stats[path] = FileStats(len(audio), clipped, frame_power(audio))
        return self._stats[path]

    def is_usable(self, entry: Entry | str) -> bool:
        """Whether a file is fit for mixing.

        Dropped: shorter than ``MIN_DURATION_S`` (0.25 s), nearly silent (loudest 10 ms frame
        below ``SILENT_PEAK_FRAME_DBFS``, -50 dBFS), or heavily clipped (more than
        ``MAX_CLIPPED_FRACTION``, 1 %, of samples at ``|x| >= 0.999``).
        """
        stats = self.stats(entry)
        return (
            stats.samples >= MIN_DURATION_S * self.sample_rate_hz
            and stats.peak_frame_dbfs >= SILENT_PEAK_FRAME_DBFS
            and stats.clipped_fraction <= MAX_CLIPPED_FRACTION
        )

    def usable(self, entries: Iterable[Entry] | None = None) -> list[Entry]:
        """The usable ones of ``entries`` (default: the whole corpus), in order."""
        return [e for e in (self.entries if entries is None else entries) if self.is_usable(e)]

    def _raw(self, path: str) -> np.ndarray:
        if path not in self._audio:
            self._audio[path] = self._decode(path)
        return self._audio[path]

    def _decode(self, path: str) -> np.ndarray:
        file = self.root / path
        try:
            info = sf.info(str(file))
            dtype = "int16" if info.subtype in _INT16_SUBTYPES else "float32"
            audio, rate = sf.read(str(file), dtype=dtype, always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as error:
            raise ValueError(f"cannot read audio file {file}: {error}") from error
        if rate != self.sample_rate_hz:
            raise ValueError(
                f"{file} is sampled at {rate} Hz but the corpus expects {self.sample_rate_hz} Hz:"
                " resample it (e.g. with soxr) and update the manifest"
            )
        if audio.shape[1] == 1:
            return np.ascontiguousarray(audio[:, 0])
        return audio.astype(np.float32).mean(axis=1) / (32768.0 if dtype == "int16" else 1.0)


def _path_of(entry: Entry | str) -> str:
    return entry.path if isinstance(entry, Entry) else entry


def _read_manifest(manifest: Path) -> Iterator[Entry]:
    try:
        handle = manifest.open(newline="", encoding="utf-8")
    except OSError as error:
        raise FileNotFoundError(f"no corpus manifest at {manifest}: {error}") from error
    with handle:
        reader = csv.DictReader(handle)
        missing = set(_MANIFEST_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{manifest} lacks the column(s) {', '.join(sorted(missing))}")
        for row in reader:
            yield Entry(
                path=row["path"],
                source=row["source"],
                label=row["class"],
                subclass=row["subclass"],
                duration_s=float(row["duration_s"]),
                licence=row["licence"],
                origin=row["origin"],
            )
