"""Train / validation split by whole recording source.

Files of one source share a speaker, a game or a recording chain, so a random split of files
overstates generalisation: validation holds out whole sources instead. The held-out sources
and the reason for each choice are recorded in ``validation_split.json`` beside this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from rtsep.data.corpus import Entry

SPLIT_FILE = Path(__file__).with_name("validation_split.json")

Part = Literal["train", "validation"]


def validation_sources(split_file: str | Path = SPLIT_FILE) -> frozenset[str]:
    """The source names held out for validation, read from ``split_file``."""
    with Path(split_file).open(encoding="utf-8") as handle:
        return frozenset(json.load(handle)["validation_sources"])


def split_entries(
    entries: Iterable[Entry], part: Part, held_out: Iterable[str] | None = None
) -> list[Entry]:
    """The entries of one part: ``"validation"`` = those whose source is held out, ``"train"`` =
    all others. ``entries`` is a ``Corpus`` or any iterable of entries; ``held_out`` defaults to
    the sources recorded in ``validation_split.json``. Order is preserved.
    """
    if part not in ("train", "validation"):
        raise ValueError(f"unknown split part {part!r}: use 'train' or 'validation'")
    sources = validation_sources() if held_out is None else frozenset(held_out)
    want_held_out = part == "validation"
    return [entry for entry in entries if (entry.source in sources) == want_held_out]
