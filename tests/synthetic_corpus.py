"""A tiny synthetic corpus in the format of ../shared/corpus, for tests that must not use it.

Tones, harmonic "voices", noise bursts and chirps as speech / music / env, in six sources,
plus three files the usable filter must drop (silent, clipped, too short).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

RATE_HZ = 16000
HELD_OUT = {"talk_b", "tunes_b", "fx_b"}
COLUMNS = ["path", "source", "class", "subclass", "duration_s", "licence", "origin", "orig_file"]


def _t(seconds: float) -> np.ndarray:
    return np.arange(round(seconds * RATE_HZ)) / RATE_HZ


def _tone(seconds: float, *freqs_hz: float) -> np.ndarray:
    t = _t(seconds)
    return 0.2 * sum(np.sin(2 * np.pi * f * t + i) for i, f in enumerate(freqs_hz))


def _voice(seconds: float, pitch_hz: float) -> np.ndarray:
    t = _t(seconds)
    harmonics = sum(np.sin(2 * np.pi * k * pitch_hz * t) / k for k in range(1, 12))
    return 0.1 * harmonics * (0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t))


def _bursts(seconds: float, seed: int) -> np.ndarray:
    t = _t(seconds)
    noise = np.random.default_rng(seed).standard_normal(len(t))
    return 0.05 * noise * (np.sin(2 * np.pi * 2.0 * t) > 0.3)


def _chirp(seconds: float) -> np.ndarray:
    t = _t(seconds)
    return 0.3 * np.sin(2 * np.pi * (200.0 * t + 900.0 * t**2))


# name -> (source, class, audio)
SOUNDS: dict[str, tuple[str, str, np.ndarray]] = {
    "voice_low": ("talk_a", "speech", _voice(1.5, 110.0)),
    "voice_high": ("talk_a", "speech", _voice(2.0, 220.0)),
    "voice_mid": ("talk_b", "speech", _voice(1.2, 160.0)),
    "chord": ("tunes_a", "music", _tone(4.0, 262.0, 330.0, 392.0)),
    "fifth": ("tunes_a", "music", _tone(4.0, 220.0, 330.0)),
    "octave": ("tunes_b", "music", _tone(2.5, 440.0, 880.0)),
    "bursts": ("fx_a", "env", _bursts(3.0, seed=1)),
    "chirp": ("fx_a", "env", _chirp(1.0)),
    "rain": ("fx_b", "env", 0.05 * np.random.default_rng(2).standard_normal(3 * RATE_HZ)),
    "silent": ("fx_a", "env", 1e-5 * np.random.default_rng(3).standard_normal(RATE_HZ)),
    "clipped": ("tunes_a", "music", np.clip(10.0 * _tone(1.0, 300.0), -1.0, 1.0)),
    "short": ("fx_a", "env", _chirp(0.1)),
}
UNUSABLE = {"silent", "clipped", "short"}


def write_corpus(root: Path, sounds: dict[str, tuple[str, str, np.ndarray]], rate_hz: int) -> None:
    rows = []
    for name, (source, label, audio) in sounds.items():
        path = f"audio/{source}/{label}/{name}.flac"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / path, audio, rate_hz, subtype="PCM_16")
        duration_s = round(len(audio) / rate_hz, 3)
        rows.append([path, source, label, name, duration_s, "CC0-1.0", "synthetic", name])
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
