"""Synchronous Python client of the rtsep control protocol, and ``rtsep ctl`` (``ctl_main``).

::

    from rtsep.bindings import Client

    with Client("tcp://127.0.0.1:5570", timeout_s=2.0, retries=2) as ctl:
        ctl.set_cues("speech", "a dog barking")
        print(ctl.status()["outputs"])
        for topic, message in ctl.watch(["levels"]):
            print(message["data"]["levels_db"])
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import zmq

from .protocol import (
    DEFAULT_ENDPOINT,
    MODES,
    TOPICS,
    ControlError,
    decode_reply,
    decode_telemetry,
    encode_request,
    load_client_keys,
    split_tcp_endpoint,
)

_WATCH_POLL_S = 0.1  # how often watch() checks its stop event


class ControlTimeout(TimeoutError):
    """No reply (or no telemetry) within the timeout, after every retry."""


class Client:
    """A control-protocol client on a DEALER socket, with a timeout and Lazy-Pirate retries.

    ``timeout_s``: how long to wait for each reply (seconds). ``retries``: how many times a
    request is re-sent, each time on a fresh socket, before ``call`` raises ControlTimeout
    (every command is idempotent, so a re-sent one is harmless). ``keys_dir``: a folder with
    ``server.key`` and ``<client_name>.key_secret`` when the server uses CURVE.
    ``telemetry_endpoint``: where ``watch`` subscribes; by default the one ``status`` names.

    Failed commands raise ControlError (``.code``, ``.message``). Not thread-safe: use one
    Client per thread.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        timeout_s: float = 2.0,
        retries: int = 2,
        telemetry_endpoint: str | None = None,
        keys_dir: str | os.PathLike[str] | None = None,
        client_name: str = "client",
    ) -> None:
        if timeout_s <= 0 or retries < 0:
            raise ValueError("timeout_s must be positive and retries at least 0")
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.retries = retries
        self.telemetry_endpoint = telemetry_endpoint
        self._keys = None if keys_dir is None else load_client_keys(keys_dir, client_name)
        self._context = zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self._next_id = 1

    # ---- commands --------------------------------------------------------------------------

    def call(self, cmd: str, /, **args: Any) -> Any:
        """Send one command and return its ``result``.

        Raises ControlError when the server refuses it and ControlTimeout when no reply came
        after ``retries + 1`` attempts of ``timeout_s`` each.
        """
        request_id = self._next_id
        self._next_id += 1
        payload = encode_request(request_id, cmd, args)
        for _ in range(self.retries + 1):
            sock = self._command_socket()
            try:
                sock.send(payload)  # waits at most timeout_s (SNDTIMEO) for queue space
            except zmq.Again:
                pass  # the queue stayed full: counts as a lost request
            else:
                found, result = self._await_reply(sock, request_id)
                if found:
                    return result
            self._drop_command_socket()  # Lazy Pirate: a fresh socket sheds stale replies
        attempts = self.retries + 1
        raise ControlTimeout(
            f"no reply from {self.endpoint} to {cmd!r} after {attempts} attempt(s) of "
            f"{self.timeout_s:g} s: is the engine running with this control endpoint?"
        )

    def _await_reply(self, sock: zmq.Socket, request_id: int) -> tuple[bool, Any]:
        deadline = time.monotonic() + self.timeout_s
        while (remaining_s := deadline - time.monotonic()) > 0:
            if not sock.poll(remaining_s * 1000.0, zmq.POLLIN):
                break
            frame = sock.recv_multipart()[-1]
            try:
                reply_id, result = decode_reply(frame)
            except ControlError as exc:
                if exc.request_id in (None, request_id):
                    raise
                continue  # a stale error reply
            if reply_id == request_id:
                return True, result
        return False, None

    def ping(self) -> dict[str, Any]:
        """``{"pong": true, "protocol": 1}``."""
        return self.call("ping")

    def status(self) -> dict[str, Any]:
        """Mode, cues, outputs (label, gain, mute, solo, level), latency, backend, counters."""
        return self.call("status")

    def set_cues(self, *cues: str) -> dict[str, Any]:
        """Extract these cues (labels or free text); no cues = separate everything."""
        return self.call("set_cues", cues=list(cues))

    def set_mode(self, mode: str) -> dict[str, Any]:
        """``"separate"``, ``"extract"`` or ``"remove"``."""
        return self.call("set_mode", mode=mode)

    def set_gain(self, output: int, db: float) -> dict[str, Any]:
        """Gain of output ``output`` (0-based) in dB."""
        return self.call("set_gain", output=output, db=db)

    def mute(self, output: int, on: bool = True) -> dict[str, Any]:
        """Mute (or with ``on=False`` unmute) output ``output``."""
        return self.call("mute", output=output, on=on)

    def solo(self, output: int, on: bool = True) -> dict[str, Any]:
        """Solo (or with ``on=False`` unsolo) output ``output``."""
        return self.call("solo", output=output, on=on)

    def list_labels(self) -> dict[str, Any]:
        """``{"labels": [...], "free_text": bool}``."""
        return self.call("list_labels")

    def stats(self) -> dict[str, Any]:
        """Engine counters and gauges, and the control server's own counters."""
        return self.call("stats")

    def reset_stats(self) -> dict[str, Any]:
        """Restart the counters from zero."""
        return self.call("reset_stats")

    # ---- telemetry -------------------------------------------------------------------------

    def watch(
        self,
        topics: Iterable[str] = (),
        *,
        stop: threading.Event | None = None,
        timeout_s: float | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(topic, message)`` telemetry, ``message["data"]`` holding the payload.

        ``topics``: the topics to receive (protocol.TOPICS); empty = all. The current
        ``status`` arrives first thing after subscribing. Ends when ``stop`` is set; raises
        ControlTimeout after ``timeout_s`` without any message (None = wait forever).
        """
        wanted = set(topics)
        sock = self._context.socket(zmq.SUB)
        sock.linger = 0
        self._secure(sock)
        try:
            sock.connect(self._telemetry_endpoint())
            for topic in wanted or {""}:
                sock.setsockopt_string(zmq.SUBSCRIBE, topic)
            last_message = time.monotonic()
            while stop is None or not stop.is_set():
                if not sock.poll(_WATCH_POLL_S * 1000.0, zmq.POLLIN):
                    if timeout_s is not None and time.monotonic() - last_message > timeout_s:
                        raise ControlTimeout(f"no telemetry for {timeout_s:g} s")
                    continue
                last_message = time.monotonic()
                topic, message = decode_telemetry(sock.recv_multipart())
                if not wanted or topic in wanted:
                    yield topic, message
        finally:
            sock.close(linger=0)

    def _telemetry_endpoint(self) -> str:
        """The telemetry endpoint, asked of the server if not given; a wildcard bind host
        (``*``, ``0.0.0.0``, ``::``) is replaced by the host of the command endpoint."""
        if self.telemetry_endpoint is None:
            self.telemetry_endpoint = self.status()["telemetry"]
        telemetry = split_tcp_endpoint(self.telemetry_endpoint)
        command = split_tcp_endpoint(self.endpoint)
        if telemetry is None or command is None or telemetry[0] not in ("*", "0.0.0.0", "::"):
            return self.telemetry_endpoint
        host = f"[{command[0]}]" if ":" in command[0] else command[0]
        return f"tcp://{host}:{telemetry[1]}"

    # ---- sockets ---------------------------------------------------------------------------

    def _secure(self, sock: zmq.Socket) -> None:
        if self._keys is not None:
            sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = self._keys
        parts = split_tcp_endpoint(self.endpoint)
        if parts is not None and ":" in parts[0]:
            sock.ipv6 = True

    def _command_socket(self) -> zmq.Socket:
        if self._socket is None:
            sock = self._context.socket(zmq.DEALER)
            sock.linger = 0
            sock.sndtimeo = int(self.timeout_s * 1000)
            self._secure(sock)
            sock.connect(self.endpoint)
            self._socket = sock
        return self._socket

    def _drop_command_socket(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def close(self) -> None:
        """Close the command socket (telemetry sockets close when their watch() ends)."""
        self._drop_command_socket()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ---- rtsep ctl -------------------------------------------------------------------------------


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtsep ctl",
        description="Control a running rtsep engine (rtsep live / rtsep separate --realtime). "
        "Prints each result as JSON; exit status 0 on success, 1 on any failure.",
    )
    parser.add_argument(
        "--control",
        metavar="ENDPOINT",
        default=os.environ.get("RTSEP_CONTROL", DEFAULT_ENDPOINT),
        help="command endpoint of the engine (default: $RTSEP_CONTROL or %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=float, default=2.0, metavar="S", help="seconds to wait per attempt"
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="re-sends after a timeout (default: 2)"
    )
    parser.add_argument(
        "--keys", type=Path, metavar="DIR", help="CURVE key folder (from `rtsep keys generate`)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text)

    add("ping", "check that the engine answers")
    add("status", "show mode, cues, outputs, latency, backend and counters")
    add("list-labels", "list the label cues the model knows")
    add("stats", "show engine and control counters")
    add("reset-stats", "restart the counters from zero")
    cues = add("set-cues", "extract these cues; no cue = separate everything")
    cues.add_argument(
        "cues", nargs="*", metavar="CUE", help='a label or free text (quote it: "a dog barking")'
    )
    mode = add("set-mode", "choose what the outputs carry")
    mode.add_argument(
        "mode",
        choices=MODES,
        help="separate: every source; extract: the cued sources; "
        "remove: the mixture without the cued sources",
    )
    gain = add("set-gain", "set the gain of one output")
    gain.add_argument("output", type=int, help="output index, from 0")
    gain.add_argument("db", type=float, help="gain in dB (e.g. -6)")
    for name, verb in (("mute", "mute"), ("solo", "solo")):
        switch = add(name, f"{verb} one output (--off to un{verb})")
        switch.add_argument("output", type=int, help="output index, from 0")
        switch.add_argument("--off", action="store_true", help=f"un{verb} instead")
    watch = add("watch", "print telemetry as JSON lines until Ctrl-C")
    watch.add_argument(
        "--topic",
        action="append",
        choices=TOPICS,
        default=[],
        help="receive only this topic (repeatable; default: all)",
    )
    watch.add_argument("--count", type=int, metavar="N", help="stop after N messages")
    watch.add_argument(
        "--telemetry", metavar="ENDPOINT", help="telemetry endpoint (default: ask the engine)"
    )
    return parser


def _command_args(ns: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The protocol command and arguments for a parsed ``rtsep ctl`` command line."""
    cmd = ns.command.replace("-", "_")
    if cmd == "set_cues":
        return cmd, {"cues": ns.cues}
    if cmd == "set_mode":
        return cmd, {"mode": ns.mode}
    if cmd == "set_gain":
        return cmd, {"output": ns.output, "db": ns.db}
    if cmd in ("mute", "solo"):
        return cmd, {"output": ns.output, "on": not ns.off}
    return cmd, {}


def ctl_main(argv: list[str]) -> int:
    """``rtsep ctl [--control ENDPOINT] COMMAND ARGS...``: returns the exit status (0 or 1).

    Results go to stdout as JSON (``watch``: one JSON line per message); failures go to stderr
    as one line.
    """
    parser = _build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (argparse printed it)
        return 0 if exc.code in (0, None) else 1
    try:
        client = Client(
            ns.control,
            timeout_s=ns.timeout,
            retries=ns.retries,
            keys_dir=ns.keys,
            telemetry_endpoint=getattr(ns, "telemetry", None),
        )
    except (ValueError, OSError) as exc:
        print(f"rtsep ctl: {exc}", file=sys.stderr)
        return 1
    try:
        if ns.command == "watch":
            for seen, (_, message) in enumerate(client.watch(ns.topic), start=1):
                print(json.dumps(message), flush=True)
                if ns.count is not None and seen >= ns.count:
                    break
        else:
            cmd, args = _command_args(ns)
            print(json.dumps(client.call(cmd, **args), indent=2))
    except ControlTimeout as exc:
        print(f"rtsep ctl: {exc}", file=sys.stderr)
        return 1
    except ControlError as exc:
        print(f"rtsep ctl: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
    return 0
