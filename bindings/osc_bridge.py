"""OSC ↔ rtsep control bridge, for DAWs (REAPER's OSC control surface) and OSC controllers.

Incoming OSC (UDP) becomes control commands; the engine's status and levels go back as OSC to
the feedback address. Addresses (``docs/daw.md`` has the full table):

=================================  ========================================================
``/rtsep/cues s…``                 set_cues (no argument = separate everything)
``/rtsep/mode s``                  set_mode ("separate", "extract", "remove")
``/rtsep/gain i f``                set_gain of output i (0-based), f dB
``/rtsep/mute i [i]``              mute output i (second argument 0 = unmute)
``/rtsep/solo i [i]``              solo output i (second argument 0 = unsolo)
``/rtsep/preset i``                set_cues(presets[i])
``/rtsep/track/N/gain f``          REAPER style, N = 1-based track: set_gain(N-1, f dB)
``/rtsep/track/N/mute b``          REAPER style: mute output N-1 (b: 1/0, float or int)
``/rtsep/track/N/solo b``          REAPER style: solo output N-1
``/rtsep/marker s``                a marker/region name "rtsep: cue; cue…" sets the cues;
                                   names without the "rtsep:" prefix are ignored
``/rtsep/status``                  send the whole state to the feedback address now
=================================  ========================================================

Feedback (only values that changed): ``/rtsep/mode s``, ``/rtsep/cues s…``,
``/rtsep/latency f`` (ms), ``/rtsep/track/N/{gain f, mute i, solo i, name s, level f}``
(level in dBFS), and ``/rtsep/error s`` when a message was refused.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import socket
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer

from .client import Client, ControlTimeout
from .protocol import (
    BAD_ARGS,
    DEFAULT_ENDPOINT,
    TOPIC_LEVELS,
    TOPIC_STATUS,
    ControlError,
    check_cue_text,
    is_loopback_endpoint,
)

log = logging.getLogger(__name__)

PREFIX = "/rtsep"
MARKER_PREFIX = "rtsep:"  # marker/region names that carry cues start with this


def parse_host_port(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9000"`` → ``("127.0.0.1", 9000)``; port 0 picks a free port."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:9000), got {text!r}")
    return host.strip("[]"), int(port)


def _index(value: Any) -> int:
    """An OSC output/preset number: an int, or a float holding one (REAPER, TouchOSC)."""
    if type(value) is int or (type(value) is float and value.is_integer()):
        return int(value)
    raise ControlError(BAD_ARGS, f"expected an integer, got {value!r}")


def _number(value: Any) -> float:
    if type(value) in (int, float) and math.isfinite(value):
        return float(value)
    raise ControlError(BAD_ARGS, f"expected a number, got {value!r}")


def _flag(value: Any) -> bool:
    if type(value) in (bool, int, float):
        return bool(value)
    raise ControlError(BAD_ARGS, f"expected 1/0, got {value!r}")


def _strings(values: Sequence[Any]) -> list[str]:
    if not all(type(value) is str for value in values):
        raise ControlError(BAD_ARGS, "cues must be OSC strings")
    return list(values)


def _arity(args: Sequence[Any], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise ControlError(BAD_ARGS, f"expected {wanted} argument(s), got {len(args)}")


class OscBridge:
    """Serve OSC on ``listen`` and forward it to the control endpoint ``control``.

    ``presets``: preset number → list of cues, for ``/rtsep/preset i``. ``feedback``:
    ``(host, port)`` that receives the state as OSC; None = whoever sent the latest message.
    ``insecure``: allow listening beyond loopback (OSC has no authentication).
    ``timeout_s``/``retries``/``keys_dir``: passed to the control ``Client``.
    """

    def __init__(
        self,
        listen: str = "127.0.0.1:9000",
        control: str = DEFAULT_ENDPOINT,
        presets: Mapping[int, Sequence[str]] | None = None,
        feedback: tuple[str, int] | None = None,
        *,
        insecure: bool = False,
        timeout_s: float = 1.0,
        retries: int = 1,
        keys_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        host, port = parse_host_port(listen)
        if not insecure and not is_loopback_endpoint(f"tcp://{host}:{port}"):
            raise ValueError(
                f"refusing to listen for OSC on {listen}: OSC has no authentication. "
                "Listen on 127.0.0.1, or pass insecure=True (--insecure) on a trusted network."
            )
        self.presets = {
            _index(number): [check_cue_text(cue) for cue in cues]
            for number, cues in (presets or {}).items()
        }
        client_options = {"timeout_s": timeout_s, "retries": retries, "keys_dir": keys_dir}
        self._commands = Client(control, **client_options)  # used on the OSC thread only
        self._telemetry = Client(control, **client_options)  # used on the feedback thread only
        self._fixed_feedback = feedback
        self._feedback = feedback
        family_host = host if feedback is None else feedback[0]
        family = socket.AF_INET6 if ":" in family_host else socket.AF_INET
        self._sender = socket.socket(family, socket.SOCK_DGRAM)
        self._sent: dict[str, tuple] = {}  # address → last arguments sent there
        self._send_lock = threading.RLock()  # OSC and feedback threads both send
        self._last_status: dict[str, Any] | None = None
        self._stop = threading.Event()
        dispatcher = Dispatcher(strict_timing=False)  # never sleep on a bundle's time tag
        dispatcher.set_default_handler(self._on_message, needs_reply_address=True)
        self._server = BlockingOSCUDPServer((host, port), dispatcher)
        self._threads: list[threading.Thread] = []
        self._routes: dict[str, Callable[[Sequence[Any]], None]] = {
            "cues": lambda a: self._commands.set_cues(*_strings(a)),
            "mode": self._on_mode,
            "gain": self._on_gain,
            "mute": lambda a: self._on_switch("mute", a),
            "solo": lambda a: self._on_switch("solo", a),
            "preset": self._on_preset,
            "marker": self._on_marker,
            "status": lambda a: self._send_status(self._last_status, full=True),
        }

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` the bridge listens on (the real port if 0 was asked for)."""
        host, port = self._server.server_address[:2]
        return host, port

    def start(self) -> OscBridge:
        """Serve OSC and feedback on two daemon threads; returns at once."""
        for name, target in (("osc", self._server.serve_forever), ("feedback", self._follow)):
            thread = threading.Thread(target=target, name=f"rtsep-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both threads and close the sockets."""
        self._stop.set()
        self._server.shutdown()
        for thread in self._threads:
            thread.join(2.0)
        self._server.server_close()
        self._sender.close()
        self._commands.close()
        self._telemetry.close()

    # ---- OSC → control ---------------------------------------------------------------------

    def _on_message(self, sender: tuple[str, int], address: str, *args: Any) -> None:
        if self._fixed_feedback is None and sender[:2] != self._feedback:
            with self._send_lock:
                self._feedback = sender[:2]
                self._sent.clear()  # a new listener gets everything
        try:
            self._route(address, args)
        except ControlError as exc:
            log.warning("OSC %s %r refused: %s", address, args, exc)
            self._send("/rtsep/error", f"{address}: {exc.code}: {exc.message}", dedupe=False)
        except ControlTimeout as exc:
            log.warning("OSC %s %r: %s", address, args, exc)
            self._send("/rtsep/error", f"{address}: timeout: {exc}", dedupe=False)

    def _route(self, address: str, args: Sequence[Any]) -> None:
        parts = address.split("/")
        if len(parts) == 5 and f"/{parts[1]}/{parts[2]}" == f"{PREFIX}/track":
            self._on_track(parts[3], parts[4], args)
            return
        route = self._routes.get(address[len(PREFIX) + 1 :]) if address.startswith(PREFIX) else None
        if route is None:
            raise ControlError(BAD_ARGS, "unknown OSC address")
        route(args)

    def _on_mode(self, args: Sequence[Any]) -> None:
        _arity(args, 1, 1)
        self._commands.set_mode(*_strings(args))

    def _on_gain(self, args: Sequence[Any]) -> None:
        _arity(args, 2, 2)
        self._commands.set_gain(_index(args[0]), _number(args[1]))

    def _on_switch(self, cmd: str, args: Sequence[Any]) -> None:
        _arity(args, 1, 2)
        on = _flag(args[1]) if len(args) == 2 else True
        self._commands.call(cmd, output=_index(args[0]), on=on)

    def _on_preset(self, args: Sequence[Any]) -> None:
        _arity(args, 1, 1)
        number = _index(args[0])
        if number not in self.presets:
            known = ", ".join(map(str, sorted(self.presets))) or "none configured"
            raise ControlError(BAD_ARGS, f"no preset {number} ({known})")
        self._commands.set_cues(*self.presets[number])

    def _on_marker(self, args: Sequence[Any]) -> None:
        _arity(args, 1, 1)
        name = _strings(args)[0].strip()
        if not name.lower().startswith(MARKER_PREFIX):
            return  # an ordinary project marker: not for us
        cues = [cue.strip() for cue in name[len(MARKER_PREFIX) :].split(";") if cue.strip()]
        self._commands.set_cues(*cues)

    def _on_track(self, track: str, what: str, args: Sequence[Any]) -> None:
        if not track.isdigit() or int(track) < 1:
            raise ControlError(BAD_ARGS, "track numbers start at 1")
        _arity(args, 1, 1)
        output = int(track) - 1
        if what == "gain":
            self._commands.set_gain(output, _number(args[0]))
        elif what in ("mute", "solo"):
            self._commands.call(what, output=output, on=_flag(args[0]))
        else:
            raise ControlError(BAD_ARGS, "unknown OSC address")

    # ---- control → OSC feedback ------------------------------------------------------------

    def _follow(self) -> None:
        """Feedback thread: follow status and levels telemetry until stopped."""
        while not self._stop.is_set():
            try:
                for topic, message in self._telemetry.watch(
                    (TOPIC_STATUS, TOPIC_LEVELS), stop=self._stop
                ):
                    if topic == TOPIC_STATUS:
                        self._last_status = message["data"]
                        self._send_status(message["data"], full=False)
                    else:
                        for k, level in enumerate(message["data"]["levels_db"]):
                            self._send(f"{PREFIX}/track/{k + 1}/level", float(level), dedupe=False)
            except (ControlTimeout, ControlError) as exc:  # engine away: try again
                log.info("OSC feedback waiting for the engine: %s", exc)
                self._stop.wait(1.0)

    def _send_status(self, status: dict[str, Any] | None, full: bool) -> None:
        if status is None:
            return
        with self._send_lock:
            if full:
                self._sent.clear()
            self._send(f"{PREFIX}/mode", status["mode"])
            self._send(f"{PREFIX}/cues", *[cue["text"] for cue in status["cues"]])
            if status.get("latency_ms") is not None:
                self._send(f"{PREFIX}/latency", float(status["latency_ms"]))
            for output in status["outputs"]:
                track = f"{PREFIX}/track/{output['index'] + 1}"
                self._send(f"{track}/gain", round(float(output["gain_db"]), 2))
                self._send(f"{track}/mute", int(output["mute"]))
                self._send(f"{track}/solo", int(output["solo"]))
                self._send(f"{track}/name", output["label"] or "")

    def _send(self, address: str, *args: str | int | float, dedupe: bool = True) -> None:
        """Send one OSC message to the feedback address; with ``dedupe``, only if ``args``
        differ from what was last sent to ``address``."""
        builder = OscMessageBuilder(address)
        for arg in args:
            builder.add_arg(arg, {str: "s", int: "i", float: "f"}[type(arg)])
        with self._send_lock:
            target = self._feedback
            if target is None or (dedupe and self._sent.get(address) == args):
                return
            try:
                self._sender.sendto(builder.build().dgram, target)
            except OSError as exc:  # nobody listening / unreachable: feedback is best effort
                log.debug("OSC feedback to %s failed: %s", target, exc)
                return
            if dedupe:
                self._sent[address] = args


def run_osc_bridge(
    listen: str = "127.0.0.1:9000",
    control: str = DEFAULT_ENDPOINT,
    presets: Mapping[int, Sequence[str]] | None = None,
    feedback: tuple[str, int] | None = None,
    *,
    stop: threading.Event | None = None,
    **options: Any,
) -> None:
    """Run an ``OscBridge`` until ``stop`` is set or Ctrl-C. ``options``: see OscBridge."""
    bridge = OscBridge(listen, control, presets, feedback, **options).start()
    log.info("OSC bridge on %s:%d → %s", *bridge.address, control)
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stop()


def _preset_arg(text: str) -> tuple[int, list[str]]:
    number, sep, cues = text.partition("=")
    if not sep or not number.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected N=CUE;CUE..., got {text!r}")
    return int(number), [cue.strip() for cue in cues.split(";") if cue.strip()]


#: The command that runs :func:`osc_main` (its usage line and messages name it).
PROG = "rtsep bridge osc"


def osc_main(argv: list[str]) -> int:
    """``rtsep bridge osc`` / ``python -m rtsep.bindings.osc_bridge``: run the bridge until
    Ctrl-C.

    Returns the exit status (0, or 1 when the bridge cannot start).
    """
    from ..cli.control_cmd import add_security_options

    parser = argparse.ArgumentParser(
        prog=PROG, description="Bridge OSC (DAWs, control surfaces) to a running engine."
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:9000",
        metavar="HOST:PORT",
        help="where to receive OSC (default: %(default)s)",
    )
    parser.add_argument(
        "--control",
        default=DEFAULT_ENDPOINT,
        metavar="ENDPOINT",
        help="command endpoint of the engine (default: %(default)s)",
    )
    parser.add_argument(
        "--feedback",
        type=parse_host_port,
        metavar="HOST:PORT",
        help="where to send state as OSC (default: the latest sender)",
    )
    parser.add_argument(
        "--preset",
        type=_preset_arg,
        action="append",
        default=[],
        metavar="N=CUE;CUE",
        help="preset for /rtsep/preset N (repeatable)",
    )
    add_security_options(
        parser,
        keys_help="CURVE key folder of the engine",
        insecure_help="allow listening beyond loopback (OSC is unauthenticated)",
    )
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 1
    logging.basicConfig(level=logging.INFO, format=f"{PROG}: %(message)s")
    try:
        run_osc_bridge(
            ns.listen,
            ns.control,
            dict(ns.preset),
            ns.feedback,
            insecure=ns.insecure,
            keys_dir=ns.keys,
        )
    except (ValueError, OSError, ControlError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(osc_main(sys.argv[1:]))
