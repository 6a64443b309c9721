"""The user-scene validation: mixtures shaped like the scenes a user brings, not like training.

Training mixtures crop sources and start or stop half of them inside the segment, with levels
±10 dB apart, so they overlap less than a user's scene and overstate separation and counting.
User scenes here: 4-s excerpts, every source playing from the first sample, levels within
±5 dB of each other, short clips repeated with pauses (a bark, a knock), no band-limiting
or synthetic reverberation, and a good share of one-source recordings (30 % one, 40 % two,
30 % three sources). Built from held-out sources only.
"""

from __future__ import annotations

from collections.abc import Sequence

from rtsep.data.corpus import Corpus, Entry
from rtsep.data.simulator import MixtureSimulator

SCENE_SECONDS = 4.0
SCENE_COUNT_WEIGHTS = (0.3, 0.4, 0.3)  # one, two, three sources
#: MixtureSimulator options that make a scene (the count, seed and length aside)
SCENE_OPTIONS = {
    "segment_seconds": SCENE_SECONDS,
    "gain_range_db": (-5.0, 5.0),
    "partial_probability": 0.0,
    "lowpass_probability": 0.0,
    "reverb_probability": 0.0,
    "repeat_probability": 1.0,
}


def user_scenes(
    entries: Sequence[Entry], *, corpus: Corpus, seed: int, length: int
) -> MixtureSimulator:
    """``length`` user-like scenes (see the module docstring) of ``entries``, item ``i``
    deterministic from ``(seed, i)``; 16 kHz, ``SCENE_SECONDS`` long."""
    return MixtureSimulator(
        entries,
        corpus=corpus,
        min_sources=1,
        max_sources=len(SCENE_COUNT_WEIGHTS),
        count_weights=SCENE_COUNT_WEIGHTS,
        seed=seed,
        length=length,
        **SCENE_OPTIONS,
    )
