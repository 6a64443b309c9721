"""Training data: corpus reader, source-wise split, mixture simulator, user-scene validation."""

from rtsep.data.corpus import Corpus, Entry
from rtsep.data.scenes import user_scenes
from rtsep.data.simulator import Mixture, MixtureSimulator, collate
from rtsep.data.split import split_entries, validation_sources

__all__ = [
    "Corpus",
    "Entry",
    "Mixture",
    "MixtureSimulator",
    "collate",
    "split_entries",
    "user_scenes",
    "validation_sources",
]
