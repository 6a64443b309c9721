"""The label vocabulary and the phrasings that teach text cues what each label means.

Training phrasings are encoded once by the sentence encoder and cached; evaluation uses the
held-out phrasings, which training never sees, to measure how free text generalises.
"""

from __future__ import annotations

LABELS: tuple[str, ...] = ("speech", "music", "env")

TRAINING_PHRASINGS: dict[str, tuple[str, ...]] = {
    "speech": (
        "speech",
        "someone talking",
        "a person speaking",
        "human voice",
        "a man talking",
        "a woman speaking",
        "spoken words",
        "a voice saying something",
        "people talking",
        "a narrator reading aloud",
        "dialogue",
        "a child speaking",
        "voice",
        "an announcer",
        "someone counting numbers",
        "a spoken sentence",
    ),
    "music": (
        "music",
        "a song",
        "musical instruments playing",
        "a melody",
        "piano",
        "drums",
        "a guitar",
        "a synthesizer",
        "an orchestra",
        "background music",
        "a soundtrack",
        "a beat",
        "strings playing",
        "a band performing",
        "electronic music",
        "a flute tune",
    ),
    "env": (
        "environmental sound",
        "sound effects",
        "noise",
        "an explosion",
        "footsteps",
        "a door closing",
        "a gunshot",
        "ambient noise",
        "wind blowing",
        "an engine",
        "a crash",
        "birds and animals",
        "machinery",
        "water splashing",
        "an alarm",
        "a click",
    ),
}

#: Phrasings never used in training: the text-cue evaluation set.
HELD_OUT_PHRASINGS: dict[str, tuple[str, ...]] = {
    "speech": ("a person giving a talk", "somebody reading out words", "vocal speech"),
    "music": ("a tune being played", "instrumental music", "a keyboard playing chords"),
    "env": ("a loud bang", "everyday noises", "a metal object hitting the floor"),
}
