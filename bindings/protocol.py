"""The rtsep control protocol, version 1: the one module the server and every Python client import.

``docs/protocol.md`` is the normative spec; this module is its executable form. It holds the
message schema and its validation, the error codes, the telemetry topics, the endpoint security
rule (loopback or CURVE) and the CURVE key layout.

Wire format (ZeroMQ, UTF-8 JSON, one JSON document per message):

* command, client → server (ROUTER): optional empty delimiter frame, then
  ``{"v": 1, "id": ID, "cmd": NAME, "args": {...}}``
* reply, server → client: the same delimiter if the request had one, then
  ``{"v": 1, "id": ID, "ok": true, "result": ...}`` or
  ``{"v": 1, "id": ID, "ok": false, "error": {"code": CODE, "message": TEXT}}``
* telemetry, server → subscribers (PUB): two frames, ``TOPIC`` and
  ``{"v": 1, "topic": TOPIC, "seq": N, "time_s": UNIX_SECONDS, "data": {...}}``
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq.auth

PROTOCOL_VERSION = 1

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5570"
DEFAULT_TELEMETRY_ENDPOINT = "tcp://127.0.0.1:5571"

MAX_MESSAGE_BYTES = 65536  # default limit on one command message (all frames), in bytes
MAX_ID_CHARS = 128
MAX_CUES = 16  # protocol ceiling; the engine may accept fewer (one per output)
MAX_CUE_CHARS = 200
MAX_OUTPUT_INDEX = 63
GAIN_DB_MIN = -120.0
GAIN_DB_MAX = 24.0
LEVEL_FLOOR_DB = -120.0  # levels below this (silence: -inf) are reported as this value

MODES = ("separate", "extract", "remove")

# Error codes: the `error.code` strings of a failed reply.
BAD_JSON = "bad_json"  # not one UTF-8 JSON document
BAD_FRAMES = "bad_frames"  # more than one payload frame after the optional delimiter
TOO_LARGE = "too_large"  # message over the server's max_message_bytes
BAD_REQUEST = "bad_request"  # JSON but not a request object (fields missing, extra or mistyped)
UNSUPPORTED_VERSION = "unsupported_version"  # "v" is not PROTOCOL_VERSION
UNKNOWN_COMMAND = "unknown_command"
BAD_ARGS = "bad_args"  # an argument is missing, unknown, mistyped or out of range
INVALID_CUE = "invalid_cue"  # the engine cannot encode a cue (unknown label, no text encoder)
INTERNAL = "internal"  # a server bug: the request changed nothing, the server keeps running
RATE_LIMITED = "rate_limited"  # the client is over its message rate: unread, id null, no change
ERROR_CODES = (
    BAD_JSON,
    BAD_FRAMES,
    TOO_LARGE,
    BAD_REQUEST,
    UNSUPPORTED_VERSION,
    UNKNOWN_COMMAND,
    BAD_ARGS,
    INVALID_CUE,
    INTERNAL,
    RATE_LIMITED,
)

# Telemetry topics (first frame of every PUB message; subscribe by prefix).
TOPIC_STATUS = "status"  # full `status` result: on change, on every new subscription, periodically
TOPIC_LEVELS = "levels"  # {"levels_db": [per output]}
TOPIC_SOURCES = "sources"  # {"events": [{"event": "born"|"died", "output", "label", "time_s"}]}
TOPIC_APPLIED = "applied"  # {"events": [{"version", "mode", "cues", "switch_latency_ms"}]}
TOPIC_OVERLOAD = "overload"  # {"events": [{"counter", "delta", "total"}]}
TOPICS = (TOPIC_STATUS, TOPIC_LEVELS, TOPIC_SOURCES, TOPIC_APPLIED, TOPIC_OVERLOAD)

# Engine counters whose increase is published on TOPIC_OVERLOAD.
OVERLOAD_COUNTERS = ("deadline_misses", "dropped_chunks", "underruns", "overruns")

_REQUEST_FIELDS = frozenset({"v", "id", "cmd", "args"})
_MAX_SAFE_INT = 2**53


class ControlError(Exception):
    """A protocol-level failure with a machine-readable ``code`` (one of ERROR_CODES).

    Raised by validation and by the engine's handlers; the server turns it into an error reply.
    Clients raise it when a reply has ``ok: false``. ``request_id`` is the id of the request
    it answers, when that id could be read.
    """

    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    """A validated command. ``args`` holds every argument of ``cmd``, defaults filled in."""

    id: str | int
    cmd: str
    args: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Argument checkers: each returns the normalised value or raises ControlError(BAD_ARGS).


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _check_cues(value: Any) -> tuple[str, ...]:
    if type(value) is not list:
        raise ControlError(BAD_ARGS, "cues must be a list of strings")
    if len(value) > MAX_CUES:
        raise ControlError(BAD_ARGS, f"at most {MAX_CUES} cues, got {len(value)}")
    return tuple(check_cue_text(item) for item in value)


def check_cue_text(value: Any) -> str:
    """Validate one cue (a label or free text): 1..MAX_CUE_CHARS characters, no control chars.

    Returns the text with surrounding white space removed.
    """
    if type(value) is not str:
        raise ControlError(BAD_ARGS, "each cue must be a string")
    text = value.strip()
    if not text or len(text) > MAX_CUE_CHARS:
        raise ControlError(BAD_ARGS, f"a cue must have 1 to {MAX_CUE_CHARS} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise ControlError(BAD_ARGS, "a cue must not contain control characters")
    return text


def _check_mode(value: Any) -> str:
    if type(value) is not str or value not in MODES:
        raise ControlError(BAD_ARGS, f"mode must be one of {', '.join(MODES)}")
    return value


def _check_output(value: Any) -> int:
    if not _is_int(value) or not 0 <= value <= MAX_OUTPUT_INDEX:
        raise ControlError(BAD_ARGS, f"output must be an integer 0..{MAX_OUTPUT_INDEX}")
    return value


def _check_db(value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise ControlError(BAD_ARGS, "db must be a finite number")
    if not GAIN_DB_MIN <= value <= GAIN_DB_MAX:
        raise ControlError(BAD_ARGS, f"db must be within {GAIN_DB_MIN:g}..{GAIN_DB_MAX:g}")
    return float(value)


def _check_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ControlError(BAD_ARGS, "on must be true or false")
    return value


@dataclass(frozen=True)
class ArgSpec:
    """One command argument: its checker, and its default (``required`` when there is none)."""

    check: Callable[[Any], Any]
    required: bool = True
    default: Any = None


_OUTPUT_SWITCH = {"output": ArgSpec(_check_output), "on": ArgSpec(_check_bool, False, True)}

# Command name → its arguments. The spec in docs/protocol.md lists results and semantics.
COMMANDS: Mapping[str, Mapping[str, ArgSpec]] = {
    "ping": {},
    "status": {},
    "set_cues": {"cues": ArgSpec(_check_cues)},
    "set_mode": {"mode": ArgSpec(_check_mode)},
    "set_gain": {"output": ArgSpec(_check_output), "db": ArgSpec(_check_db)},
    "mute": _OUTPUT_SWITCH,
    "solo": _OUTPUT_SWITCH,
    "list_labels": {},
    "stats": {},
    "reset_stats": {},
}


def _check_args(cmd: str, args: Any) -> dict[str, Any]:
    if type(args) is not dict:
        raise ControlError(BAD_REQUEST, "args must be a JSON object")
    spec = COMMANDS[cmd]
    unknown = sorted(set(args) - set(spec))
    if unknown:
        raise ControlError(BAD_ARGS, f"{cmd} takes no argument {unknown[0][:40]!r}")
    checked = {}
    for name, arg in spec.items():
        if name in args:
            checked[name] = arg.check(args[name])
        elif arg.required:
            raise ControlError(BAD_ARGS, f"{cmd} needs the argument {name!r}")
        else:
            checked[name] = arg.default
    return checked


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _loads(payload: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity; raises ControlError(BAD_JSON)."""
    try:
        return json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise ControlError(BAD_JSON, "message is not valid UTF-8") from exc
    except RecursionError as exc:
        raise ControlError(BAD_JSON, "JSON nested too deeply") from exc
    except ValueError as exc:
        raise ControlError(BAD_JSON, f"invalid JSON: {str(exc)[:80]}") from exc


def _check_id(value: Any) -> str | int:
    if type(value) is str and len(value) <= MAX_ID_CHARS:
        return value
    if _is_int(value) and abs(value) < _MAX_SAFE_INT:
        return value
    raise ControlError(
        BAD_REQUEST, f"id must be a string of at most {MAX_ID_CHARS} chars or an integer"
    )


def decode_request(payload: bytes, max_message_bytes: int = MAX_MESSAGE_BYTES) -> Request:
    """Parse and validate one command payload (the JSON frame).

    Raises ControlError with the code to reply with; its ``request_id`` is set once the id was
    read, so the error reply can carry it.
    """
    if len(payload) > max_message_bytes:
        raise ControlError(TOO_LARGE, f"message over {max_message_bytes} bytes")
    message = _loads(payload)
    if type(message) is not dict:
        raise ControlError(BAD_REQUEST, "a request must be a JSON object")
    if "id" not in message:
        raise ControlError(BAD_REQUEST, "the request has no id")
    request_id = _check_id(message["id"])
    try:
        extra = sorted(set(message) - _REQUEST_FIELDS)
        if extra:
            raise ControlError(BAD_REQUEST, f"unknown request field {extra[0][:40]!r}")
        version = message.get("v")
        if not _is_int(version):
            raise ControlError(BAD_REQUEST, f'"v" must be the integer {PROTOCOL_VERSION}')
        if version != PROTOCOL_VERSION:
            raise ControlError(
                UNSUPPORTED_VERSION, f"protocol version {PROTOCOL_VERSION} only, got {version}"
            )
        cmd = message.get("cmd")
        if type(cmd) is not str:
            raise ControlError(BAD_REQUEST, '"cmd" must be a string')
        if cmd not in COMMANDS:
            raise ControlError(UNKNOWN_COMMAND, f"unknown command {cmd[:40]!r}")
        return Request(request_id, cmd, _check_args(cmd, message.get("args", {})))
    except ControlError as exc:
        exc.request_id = request_id
        raise


def _dumps(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")


def encode_request(request_id: str | int, cmd: str, args: Mapping[str, Any]) -> bytes:
    """The JSON frame of a command (not validated here: the server validates)."""
    return _dumps({"v": PROTOCOL_VERSION, "id": request_id, "cmd": cmd, "args": dict(args)})


def encode_result(request_id: str | int | None, result: Any) -> bytes:
    """The JSON frame of a successful reply. Raises ValueError/TypeError if not JSON-able."""
    return _dumps({"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result})


def encode_error(request_id: str | int | None, code: str, message: str) -> bytes:
    """The JSON frame of a failed reply; ``request_id`` is None when it could not be read."""
    error = {"code": code, "message": message}
    return _dumps({"v": PROTOCOL_VERSION, "id": request_id, "ok": False, "error": error})


def decode_reply(payload: bytes) -> tuple[Any, Any]:
    """Parse a reply frame into ``(id, result)``; a failed reply raises ControlError.

    A reply that is not a protocol-1 reply raises ControlError(BAD_JSON or BAD_REQUEST).
    """
    message = _loads(payload)
    if type(message) is not dict or message.get("v") != PROTOCOL_VERSION:
        raise ControlError(BAD_REQUEST, "not a protocol-1 reply")
    if message.get("ok") is True:
        return message.get("id"), message.get("result")
    error = message.get("error")
    if type(error) is not dict:
        raise ControlError(BAD_REQUEST, "failed reply without an error object")
    raise ControlError(
        str(error.get("code", INTERNAL)), str(error.get("message", "")), message.get("id")
    )


def encode_telemetry(topic: str, seq: int, data: Mapping[str, Any]) -> list[bytes]:
    """The two frames of a telemetry message; ``seq`` counts messages per topic from 0."""
    body = {"v": PROTOCOL_VERSION, "topic": topic, "seq": seq, "time_s": time.time(), "data": data}
    return [topic.encode("ascii"), _dumps(body)]


def decode_telemetry(frames: list[bytes]) -> tuple[str, dict[str, Any]]:
    """Parse the frames of a telemetry message into ``(topic, message)``."""
    if len(frames) != 2:
        raise ControlError(BAD_FRAMES, f"telemetry has 2 frames, got {len(frames)}")
    message = _loads(frames[1])
    if type(message) is not dict or message.get("v") != PROTOCOL_VERSION:
        raise ControlError(BAD_REQUEST, "not a protocol-1 telemetry message")
    return frames[0].decode("ascii", "replace"), message


# ---------------------------------------------------------------------------------------------
# Endpoints and security.

_TCP = re.compile(r"^tcp://(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:/]+)):(?P<port>\d+|\*)$")
_LOOPBACK_HOSTS = frozenset({"localhost", "::1"})


def split_tcp_endpoint(endpoint: str) -> tuple[str, str] | None:
    """``tcp://HOST:PORT`` → ``(HOST, PORT)`` (IPv6 brackets removed); None if not tcp."""
    match = _TCP.match(endpoint)
    if match is None:
        return None
    return match["v6"] or match["host"], match["port"]


def is_loopback_endpoint(endpoint: str) -> bool:
    """True for endpoints only this machine can reach: ipc://, inproc://, tcp on 127.x / ::1.

    ``tcp://*``, ``tcp://0.0.0.0``, interface names and every other address are not loopback.
    """
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    parts = split_tcp_endpoint(endpoint)
    if parts is None:
        return False
    host = parts[0]
    return host in _LOOPBACK_HOSTS or re.fullmatch(r"127(\.\d{1,3}){3}", host) is not None


@dataclass(frozen=True)
class KeyFiles:
    """Where ``generate_keys`` put the CURVE keys (ZeroMQ certificate files, Z85 text)."""

    server_public: Path  # give to every client
    server_secret: Path  # stays with the server
    client_public: Path
    client_secret: Path  # give to that client only
    authorized_dir: Path  # public keys of the clients the server accepts


SERVER_KEY_NAME = "server"
AUTHORIZED_DIR_NAME = "authorized_clients"


def generate_keys(folder: str | os.PathLike[str], client_name: str = "client") -> KeyFiles:
    """Create CURVE keys for a server bound beyond loopback, and authorise one client.

    Layout of ``folder``: ``server.key`` / ``server.key_secret``, ``<client_name>.key`` /
    ``<client_name>.key_secret`` and ``authorized_clients/<client_name>.key``. An existing
    server key pair is kept, so calling again with another ``client_name`` adds a client.
    Secret files are made readable by their owner only. Raises FileExistsError rather than
    overwrite a client's keys.
    """
    if client_name == SERVER_KEY_NAME or not re.fullmatch(r"[A-Za-z0-9_.-]+", client_name):
        raise ValueError(f"client name {client_name!r}: use letters, digits, '_', '.', '-'")
    root = Path(folder)
    authorized = root / AUTHORIZED_DIR_NAME
    authorized.mkdir(parents=True, exist_ok=True)
    server_public = root / f"{SERVER_KEY_NAME}.key"
    server_secret = root / f"{SERVER_KEY_NAME}.key_secret"
    if not server_secret.exists():
        zmq.auth.create_certificates(root, SERVER_KEY_NAME)
    client_public = root / f"{client_name}.key"
    if client_public.exists():
        raise FileExistsError(f"{client_public} exists: choose another client name")
    zmq.auth.create_certificates(root, client_name)
    client_secret = root / f"{client_name}.key_secret"
    shutil.copyfile(client_public, authorized / client_public.name)
    for secret in (server_secret, client_secret):
        secret.chmod(0o600)
    return KeyFiles(server_public, server_secret, client_public, client_secret, authorized)


def load_server_keys(folder: str | os.PathLike[str]) -> tuple[bytes, bytes, Path]:
    """``(public, secret, authorized_dir)`` of a folder made by ``generate_keys``."""
    root = Path(folder)
    public, secret = zmq.auth.load_certificate(root / f"{SERVER_KEY_NAME}.key_secret")
    if secret is None:
        raise ValueError(f"{root / SERVER_KEY_NAME}.key_secret holds no secret key")
    return public, secret, root / AUTHORIZED_DIR_NAME


def load_client_keys(
    folder: str | os.PathLike[str], client_name: str = "client"
) -> tuple[bytes, bytes, bytes]:
    """``(client_public, client_secret, server_public)`` from a client's key folder.

    The folder holds ``server.key`` and ``<client_name>.key_secret`` (as ``generate_keys``
    writes them).
    """
    root = Path(folder)
    public, secret = zmq.auth.load_certificate(root / f"{client_name}.key_secret")
    if secret is None:
        raise ValueError(f"{root / client_name}.key_secret holds no secret key")
    server_public, _ = zmq.auth.load_certificate(root / f"{SERVER_KEY_NAME}.key")
    return public, secret, server_public
