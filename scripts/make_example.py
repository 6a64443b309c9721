"""Build the shipped demo mixture (rtsep/examples/example_mix.flac) from the corpus.

Deterministic: the same corpus gives the same file. The provenance and licences of every part
go to example_mix.json beside it. Run: python scripts/make_example.py [CORPUS]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

RATE_HZ = 16000
SECONDS = 8.0
SPEECH = "audio/asterisk_en_allison/speech/sounds_en_US_f_Allison__queue-periodic-announce.flac"
PARTS = [  # corpus path, start (s), level (dB RMS re the speech)
    (SPEECH, 0.2, 0.0),
    ("audio/sonicpi_samples/music/sonic-pi_samples__loop_garzul.flac", 0.0, -4.0),
    ("audio/sonicpi_ambient/env/sonic-pi_samples__misc_crow.flac", 1.5, -2.0),
    ("audio/sonicpi_ambient/env/sonic-pi_samples__misc_crow.flac", 5.0, -2.0),
]


def main(corpus: Path) -> None:
    manifest = {row["path"]: row for row in csv.DictReader((corpus / "manifest.csv").open())}
    length = int(SECONDS * RATE_HZ)
    mix = np.zeros(length)
    parts = []
    for path, start_s, level_db in PARTS:
        audio, rate = sf.read(corpus / path, dtype="float64")
        assert rate == RATE_HZ, path
        start = int(start_s * RATE_HZ)
        audio = audio[: length - start]
        active = audio[np.abs(audio) > 1e-3]
        gain = 10 ** (level_db / 20) / np.sqrt(np.mean(active**2))
        mix[start : start + audio.size] += gain * audio
        row = manifest[path]
        parts.append(
            {
                "file": path,
                "class": row["class"],
                "start_s": start_s,
                "level_db": level_db,
                "licence": row["licence"],
                "origin": row["orig_file"],
            }
        )
    mix *= 0.5 / np.abs(mix).max()
    out = Path(__file__).resolve().parent.parent / "rtsep" / "examples"
    sf.write(out / "example_mix.flac", mix.astype(np.float32), RATE_HZ, subtype="PCM_16")
    card = {
        "file": "example_mix.flac",
        "sample_rate_hz": RATE_HZ,
        "seconds": SECONDS,
        "contains": ["speech", "music", "env"],
        "licence": "CC-BY-SA-3.0 (the speech part is CC-BY-SA-3.0; music and effects are CC0)",
        "made_by": "scripts/make_example.py",
        "parts": parts,
    }
    (out / "example_mix.json").write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpus"))
