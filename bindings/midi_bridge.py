"""MIDI ↔ rtsep control bridge, for DAWs (REAPER, Ardour) and hardware controllers.

A MIDI input port (a JACK MIDI port, or an ALSA sequencer port, through python-rtmidi) whose
messages become control commands; an optional MIDI output that sends the engine's gains,
levels, mutes and solos back (motorised faders, LED rings). The map (``[midi]`` of
config.toml, ``docs/daw.md`` has the table):

=================================  ========================================================
Control Change ``gain_cc`` (7) on  ``set_gain`` of output k−1: value v → ``gain_min_db`` +
MIDI channel k (1..16)             (``gain_max_db`` − ``gain_min_db``)·v/127 dB (−60…+6, 127
                                   → +6 dB); v = 0 → −120 dB (the protocol's floor: silence)
Note On ``mute_note`` (36) + k     toggle mute of output k (any channel; velocity 0 and Note
                                   Off do nothing), k < ``note_span`` (12)
Note On ``solo_note`` (48) + k     toggle solo of output k
Program Change p                   ``set_cues`` of preset p + ``program_offset`` (``[presets]``)
=================================  ========================================================

Gain messages that a later one of the same channel supersedes before the bridge has read
them are dropped (``superseded``): a fader sweep sets its last position, once. Anything else
is counted and ignored: ``unknown`` (well-formed MIDI the map does not use),
``malformed`` (not MIDI: a data byte where a status byte belongs, a wrong length) and
``refused`` (the engine said no: an output it does not have, a preset that is not there).
Nothing a controller sends stops the bridge.

Feedback (values that changed, and all of them every 2 s for a controller that connects
late): CC ``gain_cc`` on channel k+1 with the gain's value, CC
``level_cc`` (20) on channel k+1 with the level (0..127 = ``level_floor_db``..0 dBFS), and
Note On of the mute/solo notes with velocity 127 (on) or 0 (off), on channel 1.

The bridge polls its MIDI input from its own thread (every 2 ms): on JACK, a python-rtmidi
callback would run Python (and wait for the GIL) on JACK's process thread, which can make the
whole JACK graph late. It imports neither torch nor the model.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from .client import Client, ControlTimeout
from .protocol import (
    BAD_ARGS,
    DEFAULT_ENDPOINT,
    GAIN_DB_MIN,
    TOPIC_LEVELS,
    TOPIC_STATUS,
    ControlError,
    check_cue_text,
)

log = logging.getLogger(__name__)

APIS = ("jack", "alsa")
MIDI_CHANNELS = 16
POLL_S = 0.002  # how often the input thread looks for MIDI (seconds)
FULL_STATE_S = 2.0  # feedback sends only changes, and everything again this often (seconds)
COUNTERS = (
    "handled",
    "superseded",
    "unknown",
    "malformed",
    "refused",
    "timeouts",
    "errors",
    "feedback",
)

# Status byte (high nibble for channel messages) → message length in bytes, status included.
_CHANNEL_LENGTHS = {0x80: 3, 0x90: 3, 0xA0: 3, 0xB0: 3, 0xC0: 2, 0xD0: 2, 0xE0: 3}
_SYSTEM_LENGTHS = {0xF1: 2, 0xF2: 3, 0xF3: 2, 0xF6: 1, 0xF8: 1, 0xFA: 1, 0xFB: 1, 0xFC: 1}
_SYSTEM_LENGTHS.update({0xFE: 1, 0xFF: 1})
NOTE_OFF, NOTE_ON, CONTROL_CHANGE, PROGRAM_CHANGE = 0x80, 0x90, 0xB0, 0xC0


@dataclass(frozen=True)
class MidiMap:
    """Which MIDI message does what (``[midi]`` of config.toml; the module doc has the map).

    Gains in dB, levels in dBFS, CC and note numbers 0..127.
    """

    gain_cc: int = 7
    gain_max_db: float = 6.0
    gain_min_db: float = -60.0
    mute_note: int = 36
    solo_note: int = 48
    note_span: int = 12
    program_offset: int = 0
    level_cc: int = 20
    level_floor_db: float = -60.0

    def __post_init__(self) -> None:
        for name in ("gain_cc", "mute_note", "solo_note", "level_cc"):
            _require(name, _is_whole(getattr(self, name), 0, 127), "a whole number 0..127")
        _require("note_span", _is_whole(self.note_span, 1, 128), "a whole number 1..128")
        _require("program_offset", _is_whole(self.program_offset, -127, 16383), "a whole number")
        for name in ("gain_max_db", "gain_min_db", "level_floor_db"):
            _require(name, _is_number(getattr(self, name)), "a number (dB)")
        _require("gain_min_db", self.gain_min_db < self.gain_max_db, "less than gain_max_db")
        _require("level_floor_db", self.level_floor_db < 0, "below 0 dBFS")
        mute = set(range(self.mute_note, self.mute_note + self.note_span))
        solo = set(range(self.solo_note, self.solo_note + self.note_span))
        _require("solo_note", not mute & solo, "a note range apart from the mute notes")
        _require("gain_cc", self.gain_cc != self.level_cc, "a CC other than level_cc")

    @classmethod
    def from_config(cls, midi: Mapping[str, Any]) -> MidiMap:
        """The map from a ``[midi]`` section (keys that are not map keys are ignored)."""
        names = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in midi.items() if key in names})

    def gain_db(self, value: int) -> float:
        """A CC value 0..127 → dB: ``gain_min_db + (gain_max_db - gain_min_db) * value / 127``,
        except 0, which is silence (-120 dB, the protocol's floor)."""
        if value == 0:
            return GAIN_DB_MIN
        span = self.gain_max_db - self.gain_min_db
        return round(self.gain_min_db + span * value / 127, 6)

    def gain_value(self, db: float) -> int:
        """dB → the CC value whose gain is nearest (0 only for a gain below every value's)."""
        span = self.gain_max_db - self.gain_min_db
        value = round((db - self.gain_min_db) / span * 127)
        return int(min(127, max(0 if db < self.gain_db(1) - span / 254 else 1, value)))

    def level_value(self, level_db: float) -> int:
        """dBFS → 0..127 (``level_floor_db`` and below → 0, 0 dBFS and above → 127)."""
        fraction = (level_db - self.level_floor_db) / -self.level_floor_db
        return int(min(127, max(0, round(127 * fraction))))


def _is_whole(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _require(name: str, ok: bool, takes: str) -> None:
    if not ok:
        raise ValueError(f"midi.{name}: use {takes}")


def classify(message: Sequence[int]) -> str:
    """``"ok"`` for one complete MIDI message, else ``"malformed"`` (the bytes say why not)."""
    if not message or not all(type(b) is int and 0 <= b <= 0xFF for b in message):
        return "malformed"
    status = message[0]
    if status < 0x80 or any(b >= 0x80 for b in message[1:]):
        return "malformed"
    wanted = _CHANNEL_LENGTHS.get(status & 0xF0) if status < 0xF0 else _SYSTEM_LENGTHS.get(status)
    return "ok" if wanted == len(message) else "malformed"


def _open_port(kind: str, api: str, client_name: str, port_name: str, connect: str | None):
    """A python-rtmidi ``MidiIn``/``MidiOut`` on ``api``: a virtual port ``port_name`` of
    client ``client_name``, or (``connect``) a connection to the first port whose name
    contains ``connect``. ``OSError`` that says what to do when the API is not there."""
    import rtmidi

    if api not in APIS:
        raise ValueError(f"unknown MIDI API {api!r}: use one of {', '.join(APIS)}")
    api_id = {"jack": rtmidi.API_UNIX_JACK, "alsa": rtmidi.API_LINUX_ALSA}[api]
    if api_id not in rtmidi.get_compiled_api():
        raise OSError(f"this python-rtmidi has no {api} support; use --api {_other(api)}")
    cls = rtmidi.MidiIn if kind == "in" else rtmidi.MidiOut
    try:
        port = cls(api_id, name=client_name)
        if connect is None:
            port.open_virtual_port(port_name)
            return port
        names = port.get_ports()
        index = next((i for i, name in enumerate(names) if connect in name), None)
        if index is None:
            port.delete()
            raise OSError(f"no MIDI port matches {connect!r}; ports: {', '.join(names) or 'none'}")
        port.open_port(index, port_name)
        return port
    except rtmidi.SystemError as error:
        hint = {
            "jack": "no JACK server is running: start jackd (or qjackctl), or use --api alsa",
            "alsa": "no ALSA sequencer (/dev/snd/seq): load snd-seq, or use --api jack",
        }[api]
        raise OSError(f"cannot open a {api.upper()} MIDI port: {hint} ({error})") from None


def _other(api: str) -> str:
    return "alsa" if api == "jack" else "jack"


class MidiBridge:
    """Read MIDI from a port of the bridge's own and forward it to the control endpoint.

    ``presets``: preset number → cues (``[presets]``). ``midi_map``: what each message does.
    ``port``: the bridge's name (JACK client ``port``, input port ``in``; feedback client
    ``port-feedback``, output port ``out``). ``api``: ``"jack"`` or ``"alsa"``. ``connect``:
    instead of a port of its own, connect the input to the port whose name contains this.
    ``feedback``: open the MIDI output that sends state back.
    ``timeout_s``/``retries``/``keys_dir``: passed to the control ``Client``.
    """

    def __init__(
        self,
        control: str = DEFAULT_ENDPOINT,
        presets: Mapping[int, Sequence[str]] | None = None,
        midi_map: MidiMap | None = None,
        *,
        port: str = "rtsep-midi",
        api: str = "jack",
        connect: str | None = None,
        feedback: bool = False,
        timeout_s: float = 1.0,
        retries: int = 1,
        keys_dir: str | None = None,
    ) -> None:
        self.map = midi_map or MidiMap()
        self.presets = {
            int(number): [check_cue_text(cue) for cue in cues]
            for number, cues in (presets or {}).items()
        }
        self.counters = dict.fromkeys(COUNTERS, 0)
        client_options = {"timeout_s": timeout_s, "retries": retries, "keys_dir": keys_dir}
        self._commands = Client(control, **client_options)  # used on the MIDI thread only
        self._telemetry = Client(control, **client_options)  # used on the feedback thread only
        self._input = _open_port("in", api, port, "in", connect)
        self._input.ignore_types(sysex=True, timing=True, active_sense=True)
        self._output = None
        if feedback:
            try:
                self._output = _open_port("out", api, f"{port}-feedback", "out", None)
            except OSError:
                self._input.delete()
                raise
        self._sent: dict[tuple[int, int], int] = {}  # (status, data 1) → data 2 last sent
        self._sent_since = 0.0  # time.monotonic() when _sent was last cleared
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> MidiBridge:
        """Read MIDI (and, with feedback, follow telemetry) on daemon threads; returns at once."""
        targets = [("midi", self._read)] + ([("midi-feedback", self._follow)] * bool(self._output))
        for name, target in targets:
            thread = threading.Thread(target=target, name=f"rtsep-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop the threads and close the MIDI ports and sockets."""
        self._stop.set()
        for thread in self._threads:
            thread.join(2.0)
        for port in (self._input, self._output):
            if port is not None:
                port.close_port()
                port.delete()
        self._commands.close()
        self._telemetry.close()

    # ---- MIDI → control --------------------------------------------------------------------

    def _read(self) -> None:
        while not self._stop.is_set():
            waiting = []
            while (event := self._input.get_message()) is not None:
                waiting.append(event[0])
            if not waiting:
                self._stop.wait(POLL_S)
                continue
            for message in self._latest_gains(waiting):
                self.handle(message)

    def _latest_gains(self, messages: list[Sequence[int]]) -> list[Sequence[int]]:
        """``messages`` in order, less every gain CC that a later one of the same channel
        supersedes (counted as ``superseded``): a fader sweep that arrived while the engine
        was slow to answer sets its last position once, not every position it passed."""
        last: dict[int, int] = {}
        for index, message in enumerate(messages):
            if self._is_gain(message):
                last[message[0]] = index
        kept = [
            message
            for index, message in enumerate(messages)
            if not self._is_gain(message) or last[message[0]] == index
        ]
        self.counters["superseded"] += len(messages) - len(kept)
        return kept

    def _is_gain(self, message: Sequence[int]) -> bool:
        return (
            classify(message) == "ok"
            and message[0] & 0xF0 == CONTROL_CHANGE
            and message[1] == self.map.gain_cc
        )

    def handle(self, message: Sequence[int]) -> str:
        """Act on one MIDI message; returns (and counts) what became of it: ``handled``,
        ``unknown``, ``malformed``, ``refused``, ``timeouts`` or ``errors``. Never raises."""
        try:
            outcome = self._dispatch(list(message))
        except ControlError as exc:
            log.warning("MIDI %s refused: %s: %s", _hex(message), exc.code, exc.message)
            outcome = "refused"
        except ControlTimeout as exc:
            log.warning("MIDI %s: %s", _hex(message), exc)
            outcome = "timeouts"
        except Exception:  # a bug must not end the bridge: log it with its traceback
            log.exception("MIDI %s: unexpected error", _hex(message))
            outcome = "errors"
        self.counters[outcome] += 1
        if outcome in ("unknown", "malformed"):
            log.debug("MIDI %s ignored (%s)", _hex(message), outcome)
        return outcome

    def _dispatch(self, message: list[int]) -> str:
        if classify(message) != "ok":
            return "malformed"
        kind, channel = message[0] & 0xF0, message[0] & 0x0F
        if kind == CONTROL_CHANGE and message[1] == self.map.gain_cc:
            self._commands.set_gain(channel, self.map.gain_db(message[2]))
            return "handled"
        if kind in (NOTE_ON, NOTE_OFF):
            for switch, first in (("mute", self.map.mute_note), ("solo", self.map.solo_note)):
                output = message[1] - first
                if 0 <= output < self.map.note_span:
                    if kind == NOTE_ON and message[2] > 0:
                        self._toggle(switch, output)
                    return "handled"  # a button's release (velocity 0, Note Off) does nothing
        if kind == PROGRAM_CHANGE:
            self._preset(message[1] + self.map.program_offset)
            return "handled"
        return "unknown"

    def _toggle(self, switch: str, output: int) -> None:
        outputs = self._commands.status()["outputs"]
        if output >= len(outputs):
            raise ControlError(BAD_ARGS, f"the engine has {len(outputs)} outputs, not {output + 1}")
        self._commands.call(switch, output=output, on=not outputs[output][switch])

    def _preset(self, number: int) -> None:
        if number not in self.presets:
            known = ", ".join(map(str, sorted(self.presets))) or "none configured"
            raise ControlError(BAD_ARGS, f"no preset {number} ({known})")
        self._commands.set_cues(*self.presets[number])

    # ---- control → MIDI feedback -----------------------------------------------------------

    def _follow(self) -> None:
        """Feedback thread: follow status and levels telemetry until stopped."""
        while not self._stop.is_set():
            try:
                for topic, message in self._telemetry.watch(
                    (TOPIC_STATUS, TOPIC_LEVELS), stop=self._stop
                ):
                    if topic == TOPIC_STATUS:
                        self._send_status(message["data"])
                    else:
                        for k, level in enumerate(message["data"]["levels_db"][:MIDI_CHANNELS]):
                            value = self.map.level_value(float(level))
                            self._send(CONTROL_CHANGE | k, self.map.level_cc, value)
            except (ControlTimeout, ControlError) as exc:  # engine away: try again
                log.info("MIDI feedback waiting for the engine: %s", exc)
                self._stop.wait(1.0)

    def _send_status(self, status: Mapping[str, Any]) -> None:
        for output in status["outputs"]:
            k = output["index"]
            if k < MIDI_CHANNELS:
                gain = self.map.gain_value(float(output["gain_db"]))
                self._send(CONTROL_CHANGE | k, self.map.gain_cc, gain)
            if k < self.map.note_span:
                self._send(NOTE_ON, self.map.mute_note + k, 127 * bool(output["mute"]))
                self._send(NOTE_ON, self.map.solo_note + k, 127 * bool(output["solo"]))

    def _send(self, status: int, data1: int, data2: int) -> None:
        """Send one 3-byte message unless ``data2`` is what ``(status, data1)`` last sent
        within ``FULL_STATE_S`` (a controller connected late catches up by then)."""
        now = time.monotonic()
        if now - self._sent_since > FULL_STATE_S:
            self._sent.clear()
            self._sent_since = now
        if self._sent.get((status, data1)) == data2:
            return
        self._output.send_message([status, data1, data2])
        self._sent[(status, data1)] = data2
        self.counters["feedback"] += 1


def _hex(message: Sequence[Any]) -> str:
    return " ".join(f"{b:02X}" if type(b) is int else repr(b) for b in message) or "(empty)"


def list_ports(api: str) -> dict[str, list[str]]:
    """The MIDI ports python-rtmidi sees on ``api``: ``{"inputs": [...], "outputs": [...]}``
    (``inputs``: ports the bridge can read with ``--connect``)."""
    found = {}
    for kind, key in (("in", "inputs"), ("out", "outputs")):
        port = _open_port(kind, api, "rtsep-midi-list", "probe", None)
        found[key] = [name for name in port.get_ports() if "rtsep-midi-list" not in name]
        port.close_port()
        port.delete()
    return found


def run_midi_bridge(*, stop: threading.Event | None = None, **options: Any) -> dict[str, int]:
    """Run a ``MidiBridge(**options)`` until ``stop`` is set or Ctrl-C; returns its counters."""
    bridge = MidiBridge(**options).start()
    log.info(
        "MIDI bridge %s on %s → %s",
        options.get("port", "rtsep-midi"),
        options.get("api", "jack"),
        options.get("control", DEFAULT_ENDPOINT),
    )
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stop()
    log.info("MIDI messages: %s", ", ".join(f"{k} {v}" for k, v in bridge.counters.items()))
    return bridge.counters


def midi_main(argv: list[str], config_file: str | None = None) -> int:
    """``rtsep bridge midi`` / ``python -m rtsep.bindings.midi_bridge``: run until Ctrl-C.

    Defaults come from ``[midi]``, ``[presets]`` and ``[control]`` of the configuration
    (config.toml, then ``config_file`` or ``$RTSEP_CONFIG``). Returns the exit status (0, or 1
    when the bridge cannot start).
    """
    from ..config import load_config
    from .bridges import presets_from_config

    try:
        config = load_config(config_file)
        midi = config["midi"]
        midi_map = MidiMap.from_config(midi)
        presets = presets_from_config(config)
    except (OSError, ValueError) as exc:
        print(f"rtsep bridge midi: {exc}", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(
        prog="rtsep bridge midi",
        description="Bridge MIDI (DAWs, controllers) to a running engine. The map is [midi] "
        "of the configuration (rtsep config); docs/daw.md has it as a table.",
    )
    parser.add_argument(
        "--control",
        default=config["control"]["endpoint"],
        metavar="ENDPOINT",
        help="command endpoint of the engine (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        default=midi["port"],
        metavar="NAME",
        help="name of the bridge's MIDI ports (default: %(default)s; JACK: NAME:in, "
        "NAME-feedback:out)",
    )
    parser.add_argument("--api", choices=APIS, default=midi["api"], help="default: %(default)s")
    parser.add_argument(
        "--connect",
        metavar="PORT",
        help="read the existing MIDI port whose name contains PORT instead of a port of its own",
    )
    parser.add_argument(
        "--feedback",
        action="store_true",
        help="open a MIDI output that sends gains, levels, mutes and solos back",
    )
    parser.add_argument("--keys", metavar="DIR", help="CURVE key folder of the engine")
    parser.add_argument(
        "--list-ports", action="store_true", help="print the MIDI ports of the API and exit"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every ignored message")
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 1
    logging.basicConfig(
        level=logging.DEBUG if ns.verbose else logging.INFO, format="rtsep midi: %(message)s"
    )
    try:
        if ns.list_ports:
            for key, names in list_ports(ns.api).items():
                print(f"{key}: {', '.join(names) or 'none'}")
            return 0
        run_midi_bridge(
            control=ns.control,
            presets=presets,
            midi_map=midi_map,
            port=ns.port,
            api=ns.api,
            connect=ns.connect,
            feedback=ns.feedback,
            keys_dir=ns.keys,
        )
    except (ValueError, OSError, ControlError) as exc:
        print(f"rtsep bridge midi: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(midi_main(sys.argv[1:]))
