"""Training data: the corpus reader, the source-wise split and the mixture simulator."""

from rtsep.data.corpus import Corpus, Entry
from rtsep.data.simulator import Mixture, MixtureSimulator, collate
from rtsep.data.split import split_entries, validation_sources

__all__ = [
    "Corpus",
    "Entry",
    "Mixture",
    "MixtureSimulator",
    "collate",
    "split_entries",
    "validation_sources",
]
