"""The effective configuration: defaults from config.toml, a user file, then flags."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import tomllib

DEFAULTS_FILE = Path(__file__).resolve().parent / "default_config.toml"


def load_config(user_file: str | Path | None = None) -> dict:
    """Defaults merged with ``user_file`` (or ``$RTSEP_CONFIG``), section by section.

    Unknown sections or keys in the user file are an error that names them.
    """
    with DEFAULTS_FILE.open("rb") as handle:
        config = tomllib.load(handle)
    user_file = user_file or os.environ.get("RTSEP_CONFIG")
    if user_file:
        path = Path(user_file)
        if not path.exists():
            raise FileNotFoundError(f"config file not found: {path}")
        with path.open("rb") as handle:
            merge(config, tomllib.load(handle), source=str(path))
    return config


def merge(config: dict, overrides: dict, source: str = "overrides") -> dict:
    """Merge ``overrides`` (``{section: {key: value}}``) into ``config`` in place."""
    for section, values in overrides.items():
        if section not in config or not isinstance(values, dict):
            raise ValueError(f"{source}: unknown config section [{section}]")
        for key, value in values.items():
            if key not in config[section]:
                raise ValueError(f"{source}: unknown config key {section}.{key}")
            config[section][key] = value
    return config


def with_flags(config: dict, **flags) -> dict:
    """A copy of ``config`` with ``section_key=value`` flags applied (``None`` = not given)."""
    result = copy.deepcopy(config)
    for name, value in flags.items():
        if value is None:
            continue
        section, key = name.split("_", 1)
        merge(result, {section: {key: value}}, source="command line")
    return result


def to_toml(config: dict) -> str:
    """Render a two-level configuration as TOML text."""
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)
