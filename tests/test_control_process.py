"""The control plane in a process of its own: real child process, real sockets, real pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import zmq
from ports import free_port

from rtsep.bindings import Client
from rtsep.bindings.protocol import RATE_LIMITED, ControlError, encode_request
from rtsep.engine.control import ControlServer, InsecureBindError
from rtsep.engine.control_process import ControlProcess
from rtsep.engine.controllable import CueState

LABELS = ("speech", "music", "env")
ANY_PORT = "tcp://127.0.0.1:*"


def wait_for(predicate, timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` until it holds (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_commands_reach_the_engine_state_and_engine_reports_reach_clients():
    state = CueState(LABELS, 2)  # the engine's side; labels encode to their index
    state.set_cues(["speech"], time.monotonic_ns())
    with (
        ControlProcess(state, None, ANY_PORT, ANY_PORT) as control,
        Client(control.endpoint, timeout_s=10.0) as client,
    ):
        before = client.status()
        assert before["cues"] == [{"text": "speech", "kind": "label"}]  # started from ours
        reply = client.set_cues("music", "env")
        client.set_gain(1, -6.0)
        wait_for(lambda: state.snapshot().gains_db[1] == -6.0)
        snap = state.snapshot()
        assert [cue.text for cue in snap.cues] == ["music", "env"]
        assert [cue.encoded for cue in snap.cues] == [1, 2]  # encoded in the child
        assert snap.version == reply["version"] + 1
        state.mark_applied(snap)
        state.report_levels((-10.0, -20.0))
        state.count("deadline_misses", 3)
        state.source_born(0, "music")
        wait_for(lambda: client.status()["applied_version"] == snap.version)
        status = client.status()
        assert [o["level_db"] for o in status["outputs"]] == [-10.0, -20.0]
        assert status["outputs"][0]["label"] == "music" and status["outputs"][0]["active"]
        assert client.stats()["counters"] == {"deadline_misses": 3}
        with pytest.raises(ControlError, match="invalid_cue"):
            client.set_cues("a dog barking")  # no encoder for free text in the child
        assert state.snapshot() is snap  # a refusal sends nothing
    assert control._process.returncode == 0
    assert control.failure is None


def test_a_bind_failure_in_the_child_is_raised_by_start():
    with ControlServer(CueState(LABELS, 2), ANY_PORT, ANY_PORT) as taken:
        control = ControlProcess(CueState(LABELS, 2), None, taken.endpoint, ANY_PORT)
        with pytest.raises(OSError, match=f"cannot bind {taken.endpoint}"):
            control.start()
        assert control._process.returncode is not None  # the child is gone


def test_a_non_loopback_endpoint_without_keys_is_refused_before_spawning():
    with pytest.raises(InsecureBindError):
        ControlProcess(CueState(LABELS, 2), None, f"tcp://0.0.0.0:{free_port()}", ANY_PORT)


def test_the_child_ends_when_the_engine_process_dies():
    code = (
        "import sys\n"
        "from rtsep.engine.control_process import ControlProcess\n"
        "from rtsep.engine.controllable import CueState\n"
        "control = ControlProcess(CueState(['speech'], 1), None, 'tcp://127.0.0.1:*',\n"
        "                         'tcp://127.0.0.1:*').start()\n"
        "print(control._process.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    engine = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    child_pid = int(engine.stdout.readline())
    engine.kill()  # no stop(): the child must notice on its own (end of file on its socket)
    engine.wait()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{child_pid}") and _state(child_pid) != "Z":
        assert time.monotonic() < deadline, "the control process outlived its engine"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def test_a_client_over_its_rate_gets_rate_limited_replies_and_others_do_not():
    # A refill of one message per 1000 s: the burst is all a client gets during the test.
    with ControlServer(
        CueState(LABELS, 2), ANY_PORT, ANY_PORT, client_rate_hz=0.001, client_burst=3
    ) as server:
        context = zmq.Context()
        try:
            greedy, polite = (context.socket(zmq.DEALER) for _ in range(2))
            for sock in (greedy, polite):
                sock.linger = 0
                sock.connect(server.endpoint)
            for n in range(5):
                greedy.send(encode_request(n, "ping", {}))
            polite.send(encode_request("p", "ping", {}))
            replies = [_reply(greedy) for _ in range(5)]
            assert [r["ok"] for r in replies] == [True, True, True, False, False]
            assert [r["id"] for r in replies] == [0, 1, 2, None, None]
            assert {r["error"]["code"] for r in replies[3:]} == {RATE_LIMITED}
            assert "messages/s" in replies[3]["error"]["message"]
            assert _reply(polite)["ok"]  # limits are per client
        finally:
            context.destroy(linger=0)


def _reply(sock: zmq.Socket) -> dict:
    assert sock.poll(10_000), "no reply"
    return json.loads(sock.recv())
