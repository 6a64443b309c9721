"""The built-in ``rtsep bridge`` sub-commands (``osc``, ``midi``), registered through the
``rtsep.bridges`` entry points (:mod:`rtsep.plugins`), and the presets both bridges share.

A bridge's registration callable gets the ``argparse`` sub-parsers of ``rtsep bridge``, adds
its sub-command and sets ``run=callable(args) -> int``. These two hand their whole argument
list to the bridge's own parser, so ``rtsep bridge midi --help`` is the bridge's help. They
import nothing heavy: the bridge module is imported when the sub-command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def register_osc(kinds: argparse._SubParsersAction) -> None:
    """``rtsep bridge osc``: bindings/osc_bridge.py."""
    osc = kinds.add_parser(
        "osc", help="OSC bridge (rtsep bridge osc --help)", add_help=False, prefix_chars="\0"
    )
    osc.add_argument("argv", nargs=argparse.REMAINDER)
    osc.set_defaults(run=_run_osc)


def register_midi(kinds: argparse._SubParsersAction) -> None:
    """``rtsep bridge midi``: bindings/midi_bridge.py."""
    midi = kinds.add_parser(
        "midi", help="MIDI bridge (rtsep bridge midi --help)", add_help=False, prefix_chars="\0"
    )
    midi.add_argument("argv", nargs=argparse.REMAINDER)
    midi.set_defaults(run=_run_midi)


def _run_osc(args: argparse.Namespace) -> int:
    """The OSC bridge, with ``[presets]`` of the configuration before its own ``--preset``
    options (so that those override a configured number)."""
    from ..config import load_config
    from .osc_bridge import osc_main

    try:
        presets = presets_from_config(load_config(getattr(args, "config", None)))
    except (OSError, ValueError) as error:
        print(f"rtsep bridge osc: {error}", file=sys.stderr)
        return 1
    configured = [f"--preset={number}={';'.join(cues)}" for number, cues in presets.items()]
    return osc_main(configured + args.argv)


def _run_midi(args: argparse.Namespace) -> int:
    from .midi_bridge import midi_main

    return midi_main(args.argv, config_file=getattr(args, "config", None))


def presets_from_config(config: Mapping[str, Any]) -> dict[int, list[str]]:
    """``[presets]`` of a configuration → ``{number: [cue, ...]}``.

    ``ValueError`` naming the key for a number that is not a whole number 0..16383 or cues
    that are not a list of strings.
    """
    presets: dict[int, list[str]] = {}
    for key, cues in config.get("presets", {}).items():
        if not str(key).isdigit() or int(key) > 16383:
            raise ValueError(f"presets.{key}: preset numbers are whole numbers 0..16383")
        if not isinstance(cues, Sequence) or isinstance(cues, str):
            raise ValueError(f'presets.{key}: use a list of cues, e.g. ["speech"]')
        if not all(isinstance(cue, str) and ";" not in cue for cue in cues):
            # ";" separates cues in the OSC bridge's --preset and in marker names.
            raise ValueError(f'presets.{key}: every cue is a string without ";"')
        presets[int(key)] = list(cues)
    return presets
