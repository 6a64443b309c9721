"""The OSC bridge, driven with real UDP OSC packets on 127.0.0.1.

Senders: python-osc, and liblo's ``oscsend`` (Debian liblo-tools) as a foreign implementation.
Behind the bridge: a real control server thread and the real CueState.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from rtsep.bindings.osc_bridge import OscBridge, parse_host_port
from rtsep.engine.control import ControlServer
from rtsep.engine.controllable import CueState

LABELS = ("speech", "music", "env")
PRESETS = {1: ["speech"], 2: ["music", "rain on a roof"]}
OSCSEND = shutil.which("oscsend")
needs_oscsend = pytest.mark.skipif(
    OSCSEND is None, reason="oscsend not found: apt-get install -y liblo-tools"
)


def encode_words(text: str, kind: str) -> object:
    if kind == "label":
        return LABELS.index(text)
    words = tuple(word for word in text.lower().split() if word.isalpha())
    if not words:
        raise ValueError(f"unknown cue {text!r}: no words to encode")
    return words


def wait_for(predicate: Callable[[], object], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class FeedbackListener:
    """An OSC control surface stand-in: records every message the bridge sends it."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, tuple]] = []
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(lambda address, *args: self.messages.append((address, args)))
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.server.server_address[:2]

    def last(self, address: str) -> tuple | None:
        found = [args for addr, args in list(self.messages) if addr == address]
        return found[-1] if found else None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rig():
    """A bridge between a python-osc sender and a server, feeding back to ``surface``."""
    state = CueState(LABELS, 4, encode_words)
    server = ControlServer(
        state, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", telemetry_rate_hz=50.0
    ).start()
    surface = FeedbackListener()
    bridge = OscBridge("127.0.0.1:0", server.endpoint, PRESETS, surface.address).start()
    sender = SimpleUDPClient(*bridge.address)
    yield SimpleNamespace(bridge=bridge, state=state, surface=surface, sender=sender, server=server)
    bridge.stop()
    surface.close()
    server.stop()


def cue_texts(state: CueState) -> list[str]:
    return [cue.text for cue in state.snapshot().cues]


def test_python_osc_messages_become_control_commands(rig):
    state, sender = rig.state, rig.sender
    sender.send_message("/rtsep/cues", ["speech", "a dog barking"])
    wait_for(lambda: cue_texts(state) == ["speech", "a dog barking"])
    sender.send_message("/rtsep/mode", "remove")
    sender.send_message("/rtsep/gain", [1, -6.0])
    sender.send_message("/rtsep/mute", 2)
    sender.send_message("/rtsep/solo", [3, 1])
    wait_for(lambda: state.snapshot().soloed[3])
    snap = state.snapshot()
    assert snap.mode == "remove" and snap.gains_db[1] == -6.0 and snap.muted[2]
    sender.send_message("/rtsep/mute", [2, 0])
    sender.send_message("/rtsep/preset", 2)
    wait_for(lambda: cue_texts(state) == ["music", "rain on a roof"])
    assert not state.snapshot().muted[2]
    sender.send_message("/rtsep/cues", [])
    wait_for(lambda: state.snapshot().cues == () and state.snapshot().mode == "separate")


@needs_oscsend
def test_a_foreign_osc_sender_drives_the_bridge(rig):
    bridge, state = rig.bridge, rig.state
    host, port = bridge.address

    def oscsend(address: str, types: str = "", *values: str) -> None:
        subprocess.run([OSCSEND, host, str(port), address, types, *values], check=True)

    oscsend("/rtsep/cues", "ss", "music", "birds singing")
    oscsend("/rtsep/mode", "s", "remove")
    oscsend("/rtsep/gain", "if", "0", "-4.5")
    # REAPER-style per-track addresses (bindings/reaper/rtsep.ReaperOSC): 1-based, floats.
    oscsend("/rtsep/track/2/gain", "f", "-3.5")
    oscsend("/rtsep/track/3/mute", "f", "1.0")
    oscsend("/rtsep/track/4/solo", "i", "1")
    wait_for(lambda: state.snapshot().soloed[3])
    snap = state.snapshot()
    assert cue_texts(state) == ["music", "birds singing"] and snap.mode == "remove"
    assert snap.gains_db[:2] == (-4.5, -3.5) and snap.muted[2]
    oscsend("/rtsep/marker", "s", "Chorus")  # an ordinary marker: ignored
    oscsend("/rtsep/marker", "s", "rtsep: env; rain on a roof")
    wait_for(lambda: cue_texts(state) == ["env", "rain on a roof"])
    oscsend("/rtsep/preset", "i", "1")
    wait_for(lambda: cue_texts(state) == ["speech"])


def test_state_and_levels_come_back_as_osc_feedback(rig):
    state, surface, sender = rig.state, rig.surface, rig.sender
    sender.send_message("/rtsep/cues", ["speech", "a dog barking"])
    sender.send_message("/rtsep/gain", [1, -6.0])
    # Feedback comes as separate UDP packets: wait for each rather than assume their order.
    wait_for(lambda: surface.last("/rtsep/track/2/gain") == (-6.0,))
    wait_for(lambda: surface.last("/rtsep/cues") == ("speech", "a dog barking"))
    wait_for(lambda: surface.last("/rtsep/mode") == ("extract",))
    wait_for(lambda: surface.last("/rtsep/track/3/mute") == (0,))
    state.source_born(0, "speech")
    state.report_levels((-18.0, -30.0, float("-inf"), -60.0))
    wait_for(lambda: surface.last("/rtsep/track/1/level") == (-18.0,))
    wait_for(lambda: surface.last("/rtsep/track/1/name") == ("speech",))
    wait_for(lambda: surface.last("/rtsep/track/3/level") == (-120.0,))
    count = len(surface.messages)
    sender.send_message("/rtsep/status", [])  # a surface that just connected asks for all
    wait_for(lambda: any(a == "/rtsep/mode" for a, _ in surface.messages[count:]))


def test_refused_messages_report_an_error_and_change_nothing(rig):
    bridge, state, surface, sender = rig.bridge, rig.state, rig.surface, rig.sender
    before = state.snapshot()
    for address, args in [
        ("/rtsep/gain", ["one", -6.0]),
        ("/rtsep/gain", [9, -6.0]),
        ("/rtsep/gain", [0.5, -6.0]),
        ("/rtsep/mode", "karaoke"),
        ("/rtsep/mode", []),
        ("/rtsep/cues", [1, 2]),
        ("/rtsep/cues", ["12 34"]),
        ("/rtsep/preset", 7),
        ("/rtsep/track/0/gain", -3.0),
        ("/rtsep/track/1/pan", 0.5),
        ("/rtsep/launch", []),
        ("/elsewhere", 1),
    ]:
        count = len([m for m in surface.messages if m[0] == "/rtsep/error"])
        sender.send_message(address, args)
        wait_for(lambda c=count: len([m for m in surface.messages if m[0] == "/rtsep/error"]) > c)
    errors = [args[0] for address, args in surface.messages if address == "/rtsep/error"]
    assert "/rtsep/preset: bad_args: no preset 7 (1, 2)" in errors
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:  # not OSC at all
        raw.sendto(b"\x00\xffgarbage", bridge.address)
        raw.sendto(b"/rtsep/mode\x00\x00\x00\x00,s\x00\x00\xff\xfe\x00\x00", bridge.address)
    assert state.snapshot() is before
    sender.send_message("/rtsep/mode", "extract")
    wait_for(lambda: state.snapshot().mode == "extract")


def test_without_a_feedback_address_the_sender_gets_the_feedback(rig):
    bridge = OscBridge("127.0.0.1:0", rig.server.endpoint).start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as surface:
            surface.bind(("127.0.0.1", 0))
            surface.settimeout(3.0)
            surface.sendto(OscMessageBuilder("/rtsep/mode").build().dgram, bridge.address)
            assert b"/rtsep/error" in surface.recv(4096)  # "/rtsep/mode" needs its argument
            surface.sendto(OscMessageBuilder("/rtsep/status").build().dgram, bridge.address)
            addresses = set()
            while "/rtsep/mode" not in addresses:
                addresses.add(surface.recv(4096).split(b"\x00")[0].decode())
    finally:
        bridge.stop()


def test_listening_beyond_loopback_needs_insecure():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ValueError, match="no authentication"):
        OscBridge(f"0.0.0.0:{port}", "tcp://127.0.0.1:1")
    assert parse_host_port("127.0.0.1:9000") == ("127.0.0.1", 9000)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_host_port("9000")
