"""The MIDI bridge, driven with real JACK MIDI on a JACK dummy server.

The sender is a JACK-Client with MIDI ports, patched to the bridge's python-rtmidi JACK ports.
Behind the bridge: a real control server and the real CueState, and, end to end, a real
``rtsep separate --realtime --control`` with ``rtsep bridge midi`` as separate processes.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from jack_server import JackPlayRecord
from ports import free_port

from rtsep.bindings import Client
from rtsep.bindings.bridges import presets_from_config
from rtsep.bindings.midi_bridge import MidiBridge, MidiMap, classify, midi_main
from rtsep.bindings.osc_bridge import parse_host_port
from rtsep.config import load_config
from rtsep.engine.control import ControlServer
from rtsep.engine.controllable import CueState

LABELS = ("speech", "music", "env")
PRESETS = {0: [], 1: ["speech"], 2: ["music", "rain on a roof"]}
N_OUTPUTS = 4


def encode_words(text: str, kind: str) -> object:
    if kind == "label":
        return LABELS.index(text)
    return tuple(text.lower().split())


def wait_for(predicate: Callable[[], object], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class MidiSender:
    """A JACK client with one MIDI output (sends queued messages, in order, on the next
    cycles) and one MIDI input (records what arrives)."""

    def __init__(self, server) -> None:
        self.client = server.client("rtsep-midi-sender")
        self.out = self.client.midi_outports.register("out")
        self.inp = self.client.midi_inports.register("in")
        self.queue: collections.deque[bytes] = collections.deque()
        self.received: list[bytes] = []
        self._thread_id: int | None = None
        self._exit: type[Exception] | None = None  # set by close()
        self.cycles = 0  # process cycles run
        self.client.set_process_callback(self._process)
        self.client.activate()

    def patch(self, bridge_port: str) -> None:
        """Connect to the bridge's ports ``NAME:in`` and, if there, ``NAME-feedback:out``."""
        self.client.connect(self.out, f"{bridge_port}:in")
        feedback = self.client.get_ports(f"^{bridge_port}-feedback:", is_midi=True)
        if feedback:
            self.client.connect(feedback[0], self.inp)
        self.settle()

    def settle(self, cycles: int = 3) -> None:
        """Wait a few process cycles, so that new connections carry the next events (an event
        written before the graph has the connection is lost)."""
        start = self.cycles
        wait_for(lambda: self.cycles >= start + cycles)

    def send(self, *messages: bytes | list[int]) -> None:
        self.queue.extend(bytes(message) for message in messages)

    def wait_sent(self) -> None:
        wait_for(lambda: not self.queue)

    def last(self, status: int, data1: int) -> int | None:
        """The data-2 byte of the latest received message starting ``status data1``."""
        found = [
            m[2] for m in list(self.received) if len(m) == 3 and m[:2] == bytes([status, data1])
        ]
        return found[-1] if found else None

    # End the process thread from inside before closing the client (tests/jack_server.py says
    # why); it reads the same attributes: client, _exit, _thread_id.
    close = JackPlayRecord.close

    def _process(self, frames: int) -> None:
        self._thread_id = threading.get_native_id()
        if self._exit is not None:
            raise self._exit
        self.cycles += 1
        self.out.clear_buffer()
        offset = 0
        while self.queue and offset < frames:
            self.out.write_midi_event(offset, self.queue.popleft())
            offset += 1
        for _, data in self.inp.incoming_midi_events():
            self.received.append(bytes(data))


@pytest.fixture
def rig(jack_server):
    server = jack_server(16000, 256)
    state = CueState(LABELS, N_OUTPUTS, encode_words)
    control = ControlServer(
        state, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", telemetry_rate_hz=50.0
    ).start()
    port = f"rtsep-midi-{os.getpid()}"
    bridge = MidiBridge(control.endpoint, PRESETS, port=port, feedback=True).start()
    sender = MidiSender(server)
    sender.patch(port)
    yield SimpleNamespace(bridge=bridge, state=state, sender=sender, control=control)
    sender.close()
    bridge.stop()
    control.stop()


def cue_texts(state: CueState) -> list[str]:
    return [cue.text for cue in state.snapshot().cues]


@pytest.mark.jack
def test_cc7_on_channel_k_sets_the_gain_of_output_k_minus_1(rig):
    state, sender = rig.state, rig.sender
    sender.send([0xB0, 7, 127], [0xB1, 7, 0], [0xB2, 7, 64], [0xB3, 7, 1])
    wait_for(lambda: state.snapshot().gains_db[3] != 0.0)
    assert state.snapshot().gains_db == (
        6.0,
        -120.0,
        pytest.approx(-60 + 66 * 64 / 127),
        -59.480315,
    )
    wait_for(lambda: rig.bridge.counters["handled"] == 4)  # counted after the state changes


@pytest.mark.jack
def test_a_fader_sweep_ends_at_its_last_position(rig):
    state, sender, bridge = rig.state, rig.sender, rig.bridge
    sweep = [[0xB0, 7, value] for value in range(0, 128, 4)] + [[0xB0, 7, 100]]
    sender.send(*sweep, [0xB1, 7, 127])
    wait_for(lambda: bridge.counters["handled"] + bridge.counters["superseded"] == len(sweep) + 1)
    assert state.snapshot().gains_db[:2] == (MidiMap().gain_db(100), 6.0)
    # Within one read, only the last gain of each channel is sent, in its place.
    kept = bridge._latest_gains([[0xB0, 7, 1], [0x90, 36, 1], [0xB0, 7, 2], [0xB1, 7, 3]])
    assert kept == [[0x90, 36, 1], [0xB0, 7, 2], [0xB1, 7, 3]]


@pytest.mark.jack
def test_note_on_toggles_mute_and_solo_of_output_k(rig):
    state, sender, bridge = rig.state, rig.sender, rig.bridge
    sender.send([0x90, 36, 100])  # note 36: mute output 0
    wait_for(lambda: state.snapshot().muted[0])
    sender.send([0x80, 36, 0], [0x90, 36, 0])  # releases (Note Off, velocity 0): nothing
    sender.send([0x9F, 37, 1])  # any channel: note 37 mutes output 1
    wait_for(lambda: state.snapshot().muted[1])
    sender.send([0x90, 36, 127])  # again: unmute
    wait_for(lambda: not state.snapshot().muted[0])
    sender.send([0x90, 48 + 3, 127])
    wait_for(lambda: state.snapshot().soloed[3])
    snap = state.snapshot()
    assert snap.muted == (False, True, False, False) and snap.soloed == (False, False, False, True)
    wait_for(lambda: bridge.counters["handled"] == 6)  # counted after the state changes
    assert bridge.counters["unknown"] == 0


@pytest.mark.jack
def test_program_change_selects_the_preset_cues(rig):
    state, sender = rig.state, rig.sender
    sender.send([0xC0, 2])
    wait_for(lambda: cue_texts(state) == ["music", "rain on a roof"])
    assert state.snapshot().mode == "extract"
    sender.send([0xC5, 1])  # any channel
    wait_for(lambda: cue_texts(state) == ["speech"])
    sender.send([0xC0, 0])  # preset 0 = [] separates everything
    wait_for(lambda: state.snapshot().mode == "separate" and state.snapshot().cues == ())


@pytest.mark.jack
def test_garbage_and_unknown_messages_change_nothing_and_are_counted(rig):
    state, sender, bridge = rig.state, rig.sender, rig.bridge
    before = state.snapshot()
    malformed = [
        [0x07, 0x99],  # no status byte
        [0xB0, 0x07],  # a CC without its value
        [0xB0, 0x87, 0x10],  # a status byte where a data byte belongs
        [0xC0, 0x01, 0x02, 0x03],  # too long
        [0xF4],  # undefined system status
        [0xFF, 0x13, 0x99],
        [0x90],
    ]
    unknown = [
        [0xB0, 10, 64],  # pan: not mapped
        [0xE0, 0x00, 0x40],  # pitch bend
        [0x90, 100, 127],  # a note outside the mute and solo ranges
        [0xA0, 36, 10],  # poly pressure on a mute note
        [0xF2, 0, 0],  # song position
    ]
    refused = [
        [0xC0, 9],  # no preset 9
        [0x90, 36 + N_OUTPUTS, 127],  # mute an output the engine does not have
        [0xB0 | N_OUTPUTS, 7, 100],  # gain of an output the engine does not have
    ]
    sender.send(*malformed, *unknown, *refused)
    total = len(malformed) + len(unknown) + len(refused)
    wait_for(lambda: sum(bridge.counters.values()) - bridge.counters["feedback"] >= total)
    counts = {k: bridge.counters[k] for k in ("malformed", "unknown", "refused", "handled")}
    assert counts == {
        "malformed": len(malformed),
        "unknown": len(unknown),
        "refused": 3,
        "handled": 0,
    }
    assert state.snapshot() is before  # nothing changed
    sender.send([0xB0, 7, 127])  # and the bridge keeps working
    wait_for(lambda: state.snapshot().gains_db[0] == 6.0)


@pytest.mark.jack
def test_gains_mutes_and_levels_come_back_on_the_feedback_output(rig):
    state, sender, control = rig.state, rig.sender, rig.control
    with Client(control.endpoint) as client:
        client.set_gain(1, -6.0)
        client.mute(2)
        client.solo(0)
    wait_for(lambda: sender.last(0xB1, 7) == 104)  # -6 dB: the nearest CC value
    wait_for(lambda: sender.last(0x90, 36 + 2) == 127)
    wait_for(lambda: sender.last(0x90, 48 + 0) == 127)
    # Unchanged values too, for a controller connected after the bridge (the full state is
    # sent again every FULL_STATE_S).
    wait_for(lambda: sender.last(0x90, 36 + 0) == 0)
    assert sender.last(0xB0, 7) == MidiMap().gain_value(0.0) == 115
    state.report_levels((-30.0, -60.0, float("-inf"), 0.0))
    wait_for(lambda: sender.last(0xB3, 20) == 127)
    assert [sender.last(0xB0 | k, 20) for k in range(3)] == [64, 0, 0]
    sender.send([0xB1, 7, 104])  # a motorised fader echoing its position: the gain stays
    sender.wait_sent()
    wait_for(lambda: rig.bridge.counters["handled"] == 1)
    assert state.snapshot().gains_db[1] == pytest.approx(-6.0, abs=66 / 127 / 2)


def test_classify_accepts_only_whole_midi_messages():
    assert classify([0x90, 60, 100]) == classify([0xC3, 5]) == classify([0xF8]) == "ok"
    for message in ([], [60], [0x90, 60], [0x90, 60, 200], [0xF0, 1, 0xF7], [0xF9], [256, 1, 1]):
        assert classify(message) == "malformed", message


def test_the_map_and_presets_come_from_the_config_and_a_user_file(tmp_path):
    defaults = load_config()
    assert MidiMap.from_config(defaults["midi"]) == MidiMap()
    assert presets_from_config(defaults)[1] == ["speech"]
    user = tmp_path / "studio.toml"
    user.write_text(
        '[midi]\ngain_cc = 11\nmute_note = 60\n\n[presets]\n1 = ["env"]\n7 = ["birds"]\n'
    )
    config = load_config(user)
    midi_map = MidiMap.from_config(config["midi"])
    assert (midi_map.gain_cc, midi_map.mute_note, midi_map.solo_note) == (11, 60, 48)
    presets = presets_from_config(config)
    assert presets[1] == ["env"] and presets[7] == ["birds"] and presets[2] == ["music"]
    for text, message in [
        ("[midi]\ngain_cc = 200\n", "midi.gain_cc"),
        ("[midi]\nsolo_note = 40\n", "midi.solo_note"),
        ("[midi]\ngain_min_db = 10.0\n", "midi.gain_min_db"),
        ('[presets]\nx = ["speech"]\n', "presets.x"),
        ('[presets]\n4 = "speech"\n', "presets.4"),
    ]:
        user.write_text(text)
        with pytest.raises(ValueError, match=message):
            config = load_config(user)
            MidiMap.from_config(config["midi"])
            presets_from_config(config)
        assert midi_main(["--list-ports"], config_file=str(user)) == 1


def test_the_osc_bridge_selects_the_same_config_presets(tmp_path):
    from pythonosc.udp_client import SimpleUDPClient

    state = CueState(LABELS, N_OUTPUTS, encode_words)
    control = ControlServer(state, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*").start()
    user = tmp_path / "studio.toml"
    user.write_text('[presets]\n7 = ["music", "birds singing"]\n')
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        listen = f"127.0.0.1:{probe.getsockname()[1]}"
    argv = ["--config", str(user), "bridge", "osc", "--listen", listen]
    bridge = subprocess.Popen(
        _rtsep(*argv, "--control", control.endpoint, "--preset", "1=env"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        sender = SimpleUDPClient(*parse_host_port(listen))

        def selects(number: int, cues: list[str]) -> bool:
            sender.send_message("/rtsep/preset", number)  # again until the bridge listens
            time.sleep(0.05)
            return cue_texts(state) == cues

        wait_for(lambda: selects(7, ["music", "birds singing"]), 20.0)  # the user file's
        wait_for(lambda: selects(2, ["music"]))  # config.toml's
        wait_for(lambda: selects(1, ["env"]))  # --preset overrides the configured 1
    finally:
        _stop(bridge)
        control.stop()


def test_without_jack_the_bridge_says_what_to_do(capsys, monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"rtsep-no-such-server-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    assert midi_main(["--api", "jack", "--control", "tcp://127.0.0.1:1"]) == 1
    assert "no JACK server is running" in capsys.readouterr().err


# ---- end to end: rtsep separate --realtime --control, and rtsep bridge midi ------------------


def _rtsep(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from rtsep.cli.main import main; raise SystemExit(main())",
        *args,
    ]


def _stop(process: subprocess.Popen, timeout_s: float = 20.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.mark.jack
@pytest.mark.slow
def test_rtsep_bridge_midi_drives_a_running_engine(jack_server, tmp_path):
    server = jack_server(16000, 256)
    rate = 16000
    t = np.arange(90 * rate) / rate  # long enough to outlast the test; stopped at the end
    sf.write(tmp_path / "mix.wav", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    telemetry = f"tcp://127.0.0.1:{free_port()}"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    # Logs go to files: a pipe nobody reads fills up with the progress bar and stalls the engine.
    engine_log, bridge_log = tmp_path / "engine.log", tmp_path / "bridge.log"
    engine = subprocess.Popen(
        _rtsep("separate", str(tmp_path / "mix.wav"), "--out", str(tmp_path / "stems"),
               "--realtime", "--control", endpoint, "--telemetry", telemetry),
        env=env, stdout=engine_log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    port = f"rtsep-midi-e2e-{os.getpid()}"
    bridge = None
    sender = None
    try:
        with Client(endpoint, timeout_s=2.0, retries=60) as client:
            outputs = len(client.status()["outputs"])  # waits for model and encoder to load
            bridge = subprocess.Popen(
                _rtsep("bridge", "midi", "--control", endpoint, "--port", port, "--feedback"),
                env=env, stdout=bridge_log.open("w"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            probe = server.client("rtsep-probe-ports")
            try:
                wait_for(lambda: probe.get_ports(f"^{port}-feedback:", is_midi=True), 30.0)
            finally:
                probe.close()
            sender = MidiSender(server)
            sender.patch(port)
            sender.send([0xB1, 7, 127], [0x90, 36, 127], [0x90, 48 + outputs - 1, 127])
            sender.send([0x07, 0x99, 0x00], [0xB0, 0x87], [0xC0, 1])  # garbage, then preset 1

            def settled() -> bool:
                status = client.status()
                out = status["outputs"]
                return (
                    out[1]["gain_db"] == 6.0
                    and out[0]["mute"]
                    and out[-1]["solo"]
                    and [c["text"] for c in status["cues"]] == ["speech"]
                )

            wait_for(settled, 30.0)
            wait_for(lambda: sender.last(0xB1, 7) == 127, 10.0)  # feedback from the engine
            assert bridge.poll() is None  # the garbage did not end it
        assert _stop(bridge) == 0
        log = bridge_log.read_text()
        assert "malformed 2" in log and "handled 4" in log, log
    except BaseException:
        for name, path in (("engine", engine_log), ("bridge", bridge_log)):
            if path.exists():
                print(f"---- {name} output ----\n{path.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        if sender is not None:
            sender.close()
        if bridge is not None:
            _stop(bridge)
        _stop(engine)


def test_the_midi_bridge_imports_no_torch_numpy_or_model():
    code = (
        "import sys\n"
        "from rtsep.cli.main import main\n"
        "rc = main(['bridge', 'midi', '--help'])\n"
        "import rtsep.bindings.midi_bridge\n"
        "heavy = [m for m in ('torch', 'numpy', 'rtsep.model') if m in sys.modules]\n"
        "print(rc, heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.splitlines()[-1] == "0 []", result.stdout + result.stderr


@pytest.mark.jack
def test_connect_reads_an_existing_port_and_list_ports_names_it(jack_server, capsys):
    server = jack_server(16000, 256)
    state = CueState(LABELS, N_OUTPUTS, encode_words)
    control = ControlServer(state, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*").start()
    sender = MidiSender(server)  # its port exists before the bridge: --connect finds it
    try:
        assert midi_main(["--list-ports"]) == 0
        listed = capsys.readouterr().out
        assert "rtsep-midi-sender:out" in listed.split("outputs:")[0]  # an input to read
        port = f"rtsep-midi-connect-{os.getpid()}"
        bridge = MidiBridge(control.endpoint, PRESETS, port=port, connect="rtsep-midi-sender:out")
        try:
            bridge.start()
            wait_for(lambda: sender.client.get_all_connections(sender.out))
            sender.settle()
            sender.send([0xB2, 7, 127])
            wait_for(lambda: state.snapshot().gains_db[2] == 6.0)
        finally:
            bridge.stop()
        with pytest.raises(OSError, match="no MIDI port matches 'nothing-like-this'"):
            MidiBridge(control.endpoint, port=port, connect="nothing-like-this")
    finally:
        sender.close()
        control.stop()
