"""The effective configuration: defaults from config.toml, a user file, then flags."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import tomllib

DEFAULTS_FILE = Path(__file__).resolve().parent / "default_config.toml"
#: Sections whose keys a user file may add as well as override (preset numbers).
OPEN_SECTIONS = ("presets",)


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
        try:
            with path.open("rb") as handle:
                user = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path}: not valid TOML: {error}") from None
        merge(config, user, source=str(path))
    return config


def merge(config: dict, overrides: dict, source: str = "overrides") -> dict:
    """Merge ``overrides`` (``{section: {key: value}}``) into ``config`` in place."""
    for section, values in overrides.items():
        if section not in config or not isinstance(values, dict):
            raise ValueError(f"{source}: unknown config section [{section}]")
        for key, value in values.items():
            if key not in config[section] and section not in OPEN_SECTIONS:
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


# ------------------------------------------------------------------------------- validation
def _whole(low: int, high: int | None = None):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return value >= low and (high is None or value <= high)

    span = f"{low}..{high}" if high is not None else f"{low} or more"
    return check, f"a whole number, {span}"


def _number(low: float, high: float, low_open: bool = False):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return (value > low if low_open else value >= low) and value <= high

    return check, f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"


def _one_of(*choices: str):
    return (lambda value: value in choices), "one of " + ", ".join(f'"{c}"' for c in choices)


def _backend():
    """``auto`` or a name of the ``rtsep.backends`` entry points (read when checked)."""

    def installed() -> list[str]:
        from .plugins import BACKENDS_GROUP, registered

        return ["auto", *registered(BACKENDS_GROUP)]

    class Takes:
        def __str__(self) -> str:
            return "one of " + ", ".join(f'"{name}"' for name in installed())

    return (lambda value: isinstance(value, str) and value in installed()), Takes()


def _device(value) -> bool:
    if not isinstance(value, str):
        return False
    return value in ("cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit())


def _text(value) -> bool:
    return isinstance(value, str)


def _device_name(value) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


#: ``(section, key)`` → (check, what the key takes). Keys not listed are not checked here.
RULES = {
    ("model", "path"): (_text, 'a path to a .pt checkpoint, or "" for the shipped weights'),
    ("model", "device"): (_device, '"cpu", "cuda" or "cuda:N"'),
    ("engine", "backend"): _backend(),
    ("engine", "threads"): _whole(1, 256),
    ("engine", "chunk_hops"): _whole(1, 64),
    ("engine", "blocksize"): _whole(32, 4096),
    ("engine", "samplerate"): _whole(0, 384000),
    ("engine", "safety_ms"): _number(0.0, 1000.0),
    ("engine", "resampler"): _one_of("polyphase", "soxr"),
    ("tracker", "match_threshold"): _number(-1.0, 1.0),
    ("tracker", "birth_decodes"): _whole(1),
    ("tracker", "death_decodes"): _whole(1),
    ("io", "input"): (_device_name, "a device index or a name substring"),
    ("io", "output"): (_device_name, "a device index or a name substring"),
    ("io", "audio"): _one_of("rtmixer", "sounddevice"),
    ("io", "worker_priority"): _whole(0, 99),
    ("control", "endpoint"): (_text, 'a ZeroMQ endpoint such as "tcp://127.0.0.1:5570"'),
    ("control", "telemetry"): (_text, 'a ZeroMQ endpoint such as "tcp://127.0.0.1:5571"'),
    ("control", "max_message_bytes"): _whole(64),
    ("control", "telemetry_rate_hz"): _number(0.0, 1000.0, low_open=True),
    ("control", "client_rate_hz"): _number(0.0, 1e6, low_open=True),
    ("control", "client_burst"): _whole(1),
    ("control", "client_queue"): _whole(1),
}


def validate_config(config: dict, flags: dict[str, str] | None = None) -> dict:
    """Check every known key of the effective ``config`` once; returns ``config``.

    Raises ``ValueError`` with one line that names the key (and the flag that set it, from
    ``flags``: ``{"engine.threads": "--threads"}``), the value and what it takes.
    """
    flags = flags or {}
    for (section, key), (check, takes) in RULES.items():
        if section not in config or key not in config[section]:
            continue
        value = config[section][key]
        if not check(value):
            name = f"{section}.{key}"
            given = f" (from {flags[name]})" if name in flags else ""
            raise ValueError(f"{name} = {_toml_value(value)}{given}: use {takes}")
    return config


def engine_config_from(config: dict, **overrides):
    """The :class:`~rtsep.engine.runtime.EngineConfig` of an effective configuration: every
    ``[engine]`` and ``[tracker]`` key that names one of its fields (``blocksize`` is
    ``block_samples``); ``overrides`` set any field."""
    import dataclasses

    from .engine.runtime import EngineConfig

    fields = {field.name for field in dataclasses.fields(EngineConfig)}
    renamed = {"blocksize": "block_samples"}
    values = {}
    for section in ("engine", "tracker"):
        for key, value in config.get(section, {}).items():
            name = renamed.get(key, key)
            if name in fields:
                values[name] = value
    return EngineConfig(**{**values, **overrides})
