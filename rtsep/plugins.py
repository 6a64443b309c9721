"""Plugins: inference backends and DAW bridges that other packages add by entry point.

Two entry-point groups (``docs/plugins.md`` has the contracts):

* ``rtsep.backends``: name → a callable ``(model, threads) -> Backend``
  (:class:`rtsep.engine.backends.Backend`); ``--backend NAME`` and ``[engine] backend``
  accept every registered name.
* ``rtsep.bridges``: name → a callable ``(kinds) -> None`` that adds its sub-command to
  ``rtsep bridge`` (``kinds`` is the ``argparse`` sub-parsers object; the sub-command sets
  ``run=callable(args) -> int``).

rtsep's own backends (torch, onnxruntime, torch-cuda-graphs) and bridges (osc, midi) register
through the same groups in its ``pyproject.toml``. They are also known here by name, so that a
checkout whose package metadata predates the entry points (an old ``pip install -e .``) still
runs.

This module imports neither torch nor the model: names are read from the package metadata and
an entry point is imported only when it is used.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

BACKENDS_GROUP = "rtsep.backends"
BRIDGES_GROUP = "rtsep.bridges"

#: The built-in entry points, as in pyproject.toml (used when the metadata lacks them).
BUILTIN = {
    BACKENDS_GROUP: {
        "torch": "rtsep.engine.backends:TorchBackend",
        "onnxruntime": "rtsep.engine.backends:onnx_backend",
        "torch-cuda-graphs": "rtsep.engine.cuda_graph:CudaGraphBackend",
    },
    BRIDGES_GROUP: {
        "osc": "rtsep.bindings.bridges:register_osc",
        "midi": "rtsep.bindings.bridges:register_midi",
    },
}


class PluginError(ValueError):
    """An unknown plugin name, or a plugin that fails to import."""


def registered(group: str) -> dict[str, metadata.EntryPoint]:
    """Name → entry point of every plugin installed in ``group``, sorted by name.

    Installed entry points come first; a built-in name missing from the metadata is added
    from :data:`BUILTIN`. A name registered twice keeps the first distribution's.
    """
    found: dict[str, metadata.EntryPoint] = {}
    for entry in metadata.entry_points(group=group):
        found.setdefault(entry.name, entry)
    for name, value in BUILTIN.get(group, {}).items():
        found.setdefault(name, metadata.EntryPoint(name, value, group))
    return dict(sorted(found.items()))


def load(group: str, name: str) -> Any:
    """The object entry point ``name`` of ``group`` names (imported now).

    Raises :class:`PluginError` naming the installed choices for an unknown name, and the
    plugin and its import error when it cannot be loaded.
    """
    entries = registered(group)
    if name not in entries:
        raise PluginError(f"no {_kind(group)} named {name!r}: installed: {', '.join(entries)}")
    try:
        return entries[name].load()
    except (ImportError, AttributeError) as error:
        value = entries[name].value
        raise PluginError(f"{_kind(group)} {name!r} ({value}) cannot be loaded: {error}") from None


def describe(group: str) -> list[str]:
    """``"name (distribution version)"`` per installed plugin, for ``rtsep info``."""
    lines = []
    for name, entry in registered(group).items():
        dist = getattr(entry, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else "rtsep, built in"
        lines.append(f"{name} ({origin})")
    return lines


def _kind(group: str) -> str:
    return {BACKENDS_GROUP: "backend", BRIDGES_GROUP: "bridge"}.get(group, group)
