"""Cues: the label vocabulary and the sentence encoder for free-text cues."""

from .text_encoder import TextEncoder, TextEncoderUnavailable, shared_text_encoder
from .vocabulary import HELD_OUT_PHRASINGS, LABELS, TRAINING_PHRASINGS

__all__ = [
    "HELD_OUT_PHRASINGS",
    "LABELS",
    "TRAINING_PHRASINGS",
    "TextEncoder",
    "TextEncoderUnavailable",
    "shared_text_encoder",
]
