"""The control channel: protocol, server thread, CueState, Python client and `rtsep ctl`.

Everything runs over real ZeroMQ sockets on 127.0.0.1 with ephemeral ports, against a real
server thread and the real CueState.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import statistics
import threading
import time

import pytest
import zmq
import zmq.auth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ports import free_port

from rtsep.bindings import Client, ControlTimeout
from rtsep.bindings.client import ctl_main
from rtsep.bindings.protocol import (
    COMMANDS,
    ERROR_CODES,
    LEVEL_FLOOR_DB,
    MAX_MESSAGE_BYTES,
    ControlError,
    decode_request,
    encode_request,
    generate_keys,
    is_loopback_endpoint,
)
from rtsep.engine.control import ControlServer, InsecureBindError
from rtsep.engine.controllable import CueState

LABELS = ("speech", "music", "env")
N_OUTPUTS = 4
ANY_PORT = "tcp://127.0.0.1:*"


def encode_words(text: str, kind: str) -> object:
    """A real (if small) cue encoder: labels → index, text → its words; no words = unknown."""
    if kind == "label":
        return LABELS.index(text)
    words = tuple(word for word in text.lower().split() if word.isalpha())
    if not words:
        raise ValueError(f"unknown cue {text!r}: no words to encode")
    return words


def new_state() -> CueState:
    return CueState(LABELS, N_OUTPUTS, encode_words)


@contextlib.contextmanager
def running_server(state: CueState | None = None, **options):
    state = state or new_state()
    options.setdefault("telemetry_rate_hz", 50.0)
    server = ControlServer(state, ANY_PORT, ANY_PORT, **options).start()
    try:
        yield server, state
    finally:
        server.stop()


@pytest.fixture
def served():
    with running_server() as pair:
        yield pair


@pytest.fixture
def zctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def connect(context: zmq.Context, kind: int, endpoint: str) -> zmq.Socket:
    sock = context.socket(kind)
    sock.linger = 0
    sock.rcvtimeo = 3000
    sock.connect(endpoint)
    return sock


def request(cmd: str, request_id=1, **args) -> bytes:
    return encode_request(request_id, cmd, args)


def dealer_exchange(sock: zmq.Socket, frames: list[bytes], marker: int) -> list[dict]:
    """Send ``frames`` then a ping with id ``marker`` on a DEALER; return the replies that came
    before the ping's (the server answers in order, so that is the answer to ``frames``)."""
    sock.send_multipart(frames)
    sock.send(request("ping", marker))
    replies = []
    while True:
        reply = json.loads(sock.recv_multipart()[-1])
        if reply["id"] == marker and reply["ok"]:
            return replies
        replies.append(reply)


# ---- round trips -----------------------------------------------------------------------------

ROUND_TRIPS = {
    "ping": ({}, lambda r, s: r == {"pong": True, "protocol": 1}),
    "status": ({}, lambda r, s: r["mode"] == "separate" and len(r["outputs"]) == N_OUTPUTS),
    "set_cues": (
        {"cues": ["Speech", "a dog barking"]},
        lambda r, s: (
            [c.text for c in s.snapshot().cues] == ["speech", "a dog barking"]
            and [c["kind"] for c in r["cues"]] == ["label", "text"]
            and r["mode"] == "extract"
        ),
    ),
    "set_mode": ({"mode": "remove"}, lambda r, s: s.snapshot().mode == "remove"),
    "set_gain": (
        {"output": 1, "db": -6},
        lambda r, s: s.snapshot().gains_db[1] == -6.0 and r["gain_db"] == -6.0,
    ),
    "mute": ({"output": 2}, lambda r, s: s.snapshot().muted == (False, False, True, False)),
    "solo": (
        {"output": 3, "on": True},
        lambda r, s: s.snapshot().output_gains == (0.0, 0.0, 0.0, 1.0),
    ),
    "list_labels": ({}, lambda r, s: r == {"labels": list(LABELS), "free_text": True}),
    "stats": ({}, lambda r, s: r["control"]["requests"] >= 1 and "counters" in r),
    "reset_stats": ({}, lambda r, s: r == {}),
}


def test_round_trips_cover_every_command():
    assert set(ROUND_TRIPS) == set(COMMANDS)


@pytest.mark.parametrize("cmd", sorted(ROUND_TRIPS))
@pytest.mark.parametrize("envelope", ["req", "dealer", "dealer+delimiter"])
def test_every_command_round_trips_and_the_reply_carries_the_id(served, zctx, cmd, envelope):
    server, state = served
    args, check = ROUND_TRIPS[cmd]
    request_id = f"{envelope}-{cmd}"
    payload = request(cmd, request_id, **args)
    if envelope == "req":
        sock = connect(zctx, zmq.REQ, server.endpoint)
        sock.send(payload)
        frames = [sock.recv()]
    else:
        sock = connect(zctx, zmq.DEALER, server.endpoint)
        delimiter = [b""] if envelope == "dealer+delimiter" else []
        sock.send_multipart(delimiter + [payload])
        frames = sock.recv_multipart()
        assert frames[:-1] == delimiter  # the reply mirrors the request's envelope
    reply = json.loads(frames[-1])
    assert reply["v"] == 1 and reply["id"] == request_id and reply["ok"] is True, reply
    assert check(reply["result"], state), reply["result"]


def test_python_client_drives_every_command(served):
    server, state = served
    with Client(server.endpoint, timeout_s=2.0) as ctl:
        assert ctl.ping()["pong"] is True
        assert ctl.set_cues("music", "birds singing")["mode"] == "extract"
        assert ctl.set_mode("remove")["mode"] == "remove"
        ctl.set_gain(0, -12.5)
        ctl.mute(1)
        ctl.solo(2)
        ctl.solo(2, on=False)
        assert ctl.list_labels()["labels"] == list(LABELS)
        status = ctl.status()
        assert status["telemetry"] == server.telemetry_endpoint
        assert [o["gain_db"] for o in status["outputs"]] == [-12.5, 0.0, 0.0, 0.0]
        assert [o["mute"] for o in status["outputs"]] == [False, True, False, False]
        assert ctl.stats()["control"]["requests"] >= 8
        assert ctl.reset_stats() == {}
        assert ctl.set_cues()["mode"] == "separate"  # no cues = separate everything
    snap = state.snapshot()
    assert snap.cues == () and snap.mode == "separate" and snap.muted[1]


# ---- refusals --------------------------------------------------------------------------------


def _msg(**fields) -> bytes:
    return json.dumps(fields).encode()


REFUSALS = [
    ([b"not json"], "bad_json", None),
    ([b'{"v":1,"id":1,"cmd":"ping"'], "bad_json", None),
    ([b'{"v":1,"id":"\xff\xfe","cmd":"ping"}'], "bad_json", None),
    ([b'{"v":1,"id":1,"cmd":"set_gain","args":{"output":0,"db":NaN}}'], "bad_json", None),
    ([b"[" * 5000 + b"]" * 5000], "bad_json", None),
    ([b"[]"], "bad_request", None),
    ([_msg(v=1, cmd="ping")], "bad_request", None),
    ([_msg(v=1, id={"a": 1}, cmd="ping")], "bad_request", None),
    ([_msg(v=1, id=True, cmd="ping")], "bad_request", None),
    ([_msg(v=1, id="x" * 200, cmd="ping")], "bad_request", None),
    ([_msg(id=7, cmd="ping")], "bad_request", 7),
    ([_msg(v=2, id=7, cmd="ping")], "unsupported_version", 7),
    ([_msg(v=1, id=7, cmd="ping", extra=1)], "bad_request", 7),
    ([_msg(v=1, id=7, cmd=["ping"])], "bad_request", 7),
    ([_msg(v=1, id=7, cmd="ping", args=[])], "bad_request", 7),
    ([_msg(v=1, id=7, cmd="launch")], "unknown_command", 7),
    ([_msg(v=1, id=7, cmd="ping", args={"x": 1})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_mode", args={})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_mode", args={"mode": "karaoke"})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_gain", args={"output": "1", "db": 0})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_gain", args={"output": True, "db": 0})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_gain", args={"output": 9, "db": 0})], "bad_args", 7),
    ([b'{"v":1,"id":7,"cmd":"set_gain","args":{"output":0,"db":1e400}}'], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_gain", args={"output": 0, "db": 500})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="mute", args={"output": 0, "on": 1})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_cues", args={"cues": "speech"})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_cues", args={"cues": [1]})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_cues", args={"cues": ["  "]})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_cues", args={"cues": ["x" * 201]})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_cues", args={"cues": ["bell\x07"]})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_cues", args={"cues": ["speech", "Speech"]})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_cues", args={"cues": list("abcde")})], "bad_args", 7),
    ([_msg(v=1, id=7, cmd="set_cues", args={"cues": ["music", "1 2 3"]})], "invalid_cue", 7),
    ([_msg(v=1, id=7, cmd="set_cues", args={"cues": ["a" * 70000]})], "too_large", None),
    ([request("ping"), request("ping")], "bad_frames", None),
    ([b"", b"", request("ping")], "bad_frames", None),
]


@pytest.mark.parametrize("frames,code,request_id", REFUSALS)
def test_bad_messages_get_an_error_reply_and_change_nothing(served, zctx, frames, code, request_id):
    server, state = served
    before = state.snapshot()
    replies = dealer_exchange(connect(zctx, zmq.DEALER, server.endpoint), frames, marker=-1)
    assert len(replies) == 1, replies
    error = replies[0]
    assert error["ok"] is False and error["id"] == request_id
    assert error["error"]["code"] == code, error
    assert error["error"]["message"]
    assert state.snapshot() is before


def test_a_message_without_payload_frame_is_dropped(served, zctx):
    server, state = served
    sock = connect(zctx, zmq.DEALER, server.endpoint)
    assert dealer_exchange(sock, [b""], marker=-1) == []
    assert Client(server.endpoint).stats()["control"]["dropped"] == 1


def test_a_frame_over_the_hard_limit_drops_the_connection_not_the_server(served, zctx):
    server, state = served
    before = state.snapshot()
    sock = connect(zctx, zmq.DEALER, server.endpoint)
    sock.rcvtimeo = 300
    sock.send(b"x" * (5 * MAX_MESSAGE_BYTES))
    with pytest.raises(zmq.Again):
        sock.recv()
    with Client(server.endpoint, timeout_s=1.0) as ctl:
        assert ctl.ping()["pong"] is True
    assert state.snapshot() is before


def test_max_message_bytes_is_configurable(zctx):
    with running_server(max_message_bytes=1000) as (server, _):
        sock = connect(zctx, zmq.DEALER, server.endpoint)
        [reply] = dealer_exchange(sock, [request("set_cues", 3, cues=["a" * 199] * 5)], -1)
        assert reply["error"]["code"] == "too_large"
    with running_server(max_message_bytes=4 * MAX_MESSAGE_BYTES) as (server, _):
        sock = connect(zctx, zmq.DEALER, server.endpoint)
        [reply] = dealer_exchange(sock, [request("set_cues", 3, cues=["a" * 100_000])], -1)
        assert reply["error"]["code"] == "bad_args"  # read whole, then refused on its merits


def test_client_raises_control_error_with_code(served):
    server, _ = served
    with Client(server.endpoint) as ctl, pytest.raises(ControlError) as info:
        ctl.set_gain(17, 0.0)
    assert info.value.code == "bad_args" and "0..3" in info.value.message


# ---- fuzzing ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
request_ids = st.one_of(st.integers(), st.text(max_size=20), json_values)
structured = st.fixed_dictionaries(
    {},
    optional={
        "v": st.one_of(st.just(1), json_values),
        "id": request_ids,
        "cmd": st.one_of(st.sampled_from(sorted(COMMANDS) + ["", "nope"]), json_values),
        "args": st.one_of(
            json_values,
            st.dictionaries(
                st.sampled_from(["cues", "mode", "output", "db", "on", "x"]), json_values
            ),
        ),
        "extra": json_values,
    },
).map(lambda message: [json.dumps(message).encode()])


def _invalid_utf8(text: str, junk: bytes) -> list[bytes]:
    body = json.dumps({"v": 1, "id": 1, "cmd": "set_cues", "args": {"cues": [text]}}).encode()
    cut = len(body) // 2
    return [body[:cut] + b"\xc3\x28" + junk + body[cut:]]


garbage = st.one_of(
    st.binary(min_size=1, max_size=2048).map(lambda b: [b]),
    st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    structured,
    st.tuples(st.text(max_size=20), st.binary(max_size=8)).map(lambda t: _invalid_utf8(*t)),
    st.integers(1, 60000).map(lambda n: [b"[" * n + b"]" * n]),
    st.integers(1, 20000).map(lambda n: [b'{"a":' * n + b"1" + b"}" * n]),
    st.integers(1000, 3 * MAX_MESSAGE_BYTES).map(
        lambda n: [request("set_cues", 1, cues=["a" * n])]
    ),
    st.lists(st.text(max_size=300), max_size=40).map(
        lambda cues: [request("set_cues", 1, cues=cues)]
    ),
)


def test_fuzzed_messages_get_an_error_or_a_drop_and_never_crash_the_server(zctx):
    with running_server() as (server, state):
        sock = connect(zctx, zmq.DEALER, server.endpoint)
        markers = iter(range(10**6, 10**7))

        @settings(
            max_examples=400,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(frames=garbage)
        def check(frames):
            before = state.snapshot()
            replies = dealer_exchange(sock, frames, next(markers))
            assert len(replies) <= 1
            for reply in replies:
                if reply["ok"]:  # the fuzzer wrote a valid request: it must parse as one
                    decode_request(frames[0])
                    return
                assert reply["error"]["code"] in ERROR_CODES
            assert state.snapshot() is before

        initial = state.snapshot()
        check()
        with Client(server.endpoint) as ctl:
            assert ctl.ping()["pong"] is True
            assert ctl.stats()["control"].get("error.internal", 0) == 0
        print(f"\nfuzz: state version {initial.version} -> {state.snapshot().version}")


def test_fuzz_leaves_the_state_unchanged_when_every_reply_is_an_error(zctx):
    """The unstructured fuzz families can never form a valid request: state stays put."""
    with running_server() as (server, state):
        sock = connect(zctx, zmq.DEALER, server.endpoint)
        initial = state.snapshot()
        markers = iter(range(10**6, 10**7))

        @settings(max_examples=200, deadline=None, database=None)
        @given(
            frames=st.one_of(
                st.binary(min_size=1, max_size=512).map(lambda b: [b"\xff" + b]),
                st.lists(st.binary(max_size=64), min_size=2, max_size=5).map(lambda f: [b"x"] + f),
            )
        )
        def check(frames):
            replies = dealer_exchange(sock, frames, next(markers))
            assert all(not reply["ok"] for reply in replies)

        check()
        assert state.snapshot() is initial
        assert Client(server.endpoint).ping()["pong"] is True


# ---- load ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_load_1000_commands_per_second_for_10_seconds_all_answered(served, zctx, capsys):
    server, state = served
    rate_hz, duration_s = 1000, 10.0
    total = int(rate_hz * duration_s)
    commands = [
        ("ping", {}),
        ("status", {}),
        ("set_gain", {"output": 0, "db": -3.0}),
        ("stats", {}),
    ]
    payloads = [encode_request(i, *commands[i % len(commands)]) for i in range(total)]
    sock = connect(zctx, zmq.DEALER, server.endpoint)
    sent_at: dict[int, float] = {}
    rtts: list[float] = []
    start = time.perf_counter()
    next_index = 0
    while len(rtts) < total:
        now = time.perf_counter()
        assert now - start < 3 * duration_s, f"only {len(rtts)} of {total} replies"
        while next_index < total and start + next_index / rate_hz <= now:
            sock.send(payloads[next_index])
            sent_at[next_index] = time.perf_counter()
            next_index += 1
        wait_ms = 1 if next_index < total else 100
        while sock.poll(wait_ms, zmq.POLLIN):
            reply = json.loads(sock.recv())
            assert reply["ok"] is True, reply
            rtts.append(time.perf_counter() - sent_at.pop(reply["id"]))
            wait_ms = 0
    elapsed = time.perf_counter() - start
    assert not sent_at and len(rtts) == total
    rtts_ms = sorted(rtt * 1000.0 for rtt in rtts)
    p50 = statistics.median(rtts_ms)
    p99 = rtts_ms[int(0.99 * len(rtts_ms)) - 1]
    with capsys.disabled():
        print(
            f"\nload: {total} commands in {elapsed:.2f} s ({total / elapsed:.0f}/s), "
            f"round trip p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {rtts_ms[-1]:.3f} ms"
        )


def test_a_client_that_never_reads_does_not_stall_the_server(served, zctx):
    server, _ = served
    hog = connect(zctx, zmq.DEALER, server.endpoint)
    hog.sndhwm = hog.rcvhwm = 10
    for i in range(3000):
        with contextlib.suppress(zmq.Again):
            hog.send(request("status", i), zmq.NOBLOCK)
    with Client(server.endpoint, timeout_s=2.0) as ctl:
        for _ in range(20):
            assert ctl.ping()["pong"] is True


# ---- client robustness -----------------------------------------------------------------------


def test_client_times_out_with_one_clear_error():
    ctl = Client(f"tcp://127.0.0.1:{free_port()}", timeout_s=0.1, retries=2)
    started = time.monotonic()
    with pytest.raises(ControlTimeout, match="after 3 attempt"):
        ctl.ping()
    assert time.monotonic() - started < 2.0
    ctl.close()


def test_client_retries_until_a_late_server_answers():
    port = free_port()
    ctl = Client(f"tcp://127.0.0.1:{port}", timeout_s=0.2, retries=20)
    result: dict = {}
    caller = threading.Thread(target=lambda: result.update(ctl.ping()))
    caller.start()
    time.sleep(0.5)
    with ControlServer(new_state(), f"tcp://127.0.0.1:{port}", ANY_PORT):
        caller.join(5.0)
    assert result == {"pong": True, "protocol": 1}
    ctl.close()


# ---- telemetry -------------------------------------------------------------------------------


def first_message(sock: zmq.Socket, topic: str, timeout_s: float = 3.0) -> tuple[dict, float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if sock.poll(50, zmq.POLLIN):
            frames = sock.recv_multipart()
            if frames[0] == topic.encode():
                return json.loads(frames[1]), time.monotonic() - started
    raise AssertionError(f"no {topic} message in {timeout_s} s")


def test_a_late_subscriber_gets_the_current_state_at_once(zctx, capsys):
    with running_server(status_interval_s=60.0, telemetry_rate_hz=20.0) as (server, state):
        with Client(server.endpoint) as ctl:
            ctl.set_cues("music")
            ctl.set_gain(3, -9.0)
        time.sleep(0.5)  # the change's own status message is long gone
        sub = connect(zctx, zmq.SUB, server.telemetry_endpoint)
        sub.subscribe(b"status")
        message, waited_s = first_message(sub, "status")
        with capsys.disabled():
            print(f"\nlate subscriber: status after {waited_s * 1000:.1f} ms")
        assert waited_s < 2.0  # the periodic status is 60 s away: this came from XPUB
        data = message["data"]
        assert data["mode"] == "extract" and data["cues"] == [{"text": "music", "kind": "label"}]
        assert data["outputs"][3]["gain_db"] == -9.0
        assert message["topic"] == "status" and message["v"] == 1


def test_engine_events_reach_subscribers_on_their_topics(served):
    server, state = served
    with Client(server.endpoint) as ctl:
        ctl.set_cues("speech")
        seen: dict[str, dict] = {}
        for topic, message in ctl.watch(timeout_s=3.0):
            if topic == "status" and not seen:  # subscribed: now let the engine talk
                snap = state.snapshot()
                state.mark_applied(snap, at_ns=snap.changed_ns + 12_500_000)
                state.source_born(0, "speech")
                state.count("deadline_misses", 2)
                state.count("dropped_chunks")
                state.report_levels((-12.0, float("-inf"), float("nan"), -300.0))
            seen.setdefault(topic, message["data"])
            if {"applied", "sources", "overload", "levels"} <= set(seen):
                break
    assert seen["applied"]["events"] == [
        {"version": 1, "mode": "extract", "cues": ["speech"], "switch_latency_ms": 12.5}
    ]
    born = seen["sources"]["events"][0]
    assert (born["event"], born["output"], born["label"]) == ("born", 0, "speech")
    assert {(e["counter"], e["delta"]) for e in seen["overload"]["events"]} == {
        ("deadline_misses", 2),
        ("dropped_chunks", 1),
    }
    assert seen["levels"]["levels_db"] == [-12.0] + [LEVEL_FLOOR_DB] * 3
    status = Client(server.endpoint).status()
    assert status["applied_version"] == 1 and status["last_switch_latency_ms"] == 12.5
    assert status["outputs"][0]["label"] == "speech" and status["outputs"][0]["active"]


def test_telemetry_rate_is_bounded(zctx):
    with running_server(telemetry_rate_hz=10.0) as (server, state):
        sub = connect(zctx, zmq.SUB, server.telemetry_endpoint)
        sub.subscribe(b"levels")
        time.sleep(0.2)
        count, started = 0, time.monotonic()
        while time.monotonic() - started < 1.0:
            state.report_levels((-20.0,) * N_OUTPUTS)
            time.sleep(0.001)
            while sub.poll(0, zmq.POLLIN):
                sub.recv_multipart()
                count += 1
        assert 1 <= count <= 12  # at most 10 per second, give or take a tick at each end


# ---- security --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint,loopback",
    [
        ("tcp://127.0.0.1:5570", True),
        ("tcp://127.0.0.1:*", True),
        ("tcp://localhost:5570", True),
        ("tcp://[::1]:5570", True),
        ("tcp://127.1.2.3:5570", True),
        ("ipc:///tmp/rtsep.sock", True),
        ("inproc://control", True),
        ("tcp://0.0.0.0:5570", False),
        ("tcp://*:5570", False),
        ("tcp://192.168.1.10:5570", False),
        ("tcp://eth0:5570", False),
        ("tcp://[::]:5570", False),
        ("udp://127.0.0.1:5570", False),
    ],
)
def test_loopback_endpoints(endpoint, loopback):
    assert is_loopback_endpoint(endpoint) is loopback


@pytest.mark.parametrize("which", ["command", "telemetry"])
def test_a_non_loopback_bind_without_keys_is_refused_before_binding(which):
    port = free_port()
    wide = f"tcp://0.0.0.0:{port}"
    endpoints = (wide, ANY_PORT) if which == "command" else (ANY_PORT, wide)
    with pytest.raises(InsecureBindError, match="rtsep keys generate"):
        ControlServer(new_state(), *endpoints)
    with socket.socket() as probe:  # nothing was bound: the port is still free
        probe.bind(("127.0.0.1", port))


def test_curve_admits_authorised_clients_only(tmp_path):
    keys = generate_keys(tmp_path / "keys")
    assert (keys.server_secret.stat().st_mode & 0o077) == 0
    with running_server(keys_dir=tmp_path / "keys") as (server, _):
        with Client(server.endpoint, keys_dir=tmp_path / "keys", timeout_s=2.0) as ctl:
            assert ctl.ping()["pong"] is True
            topic, _ = next(ctl.watch(["status"], timeout_s=3.0))
            assert topic == "status"

        intruder = tmp_path / "intruder"  # knows the server's public key, is not authorised
        intruder.mkdir()
        shutil.copy(keys.server_public, intruder)
        zmq.auth.create_certificates(intruder, "client")
        for keys_dir in (intruder, None):
            with Client(server.endpoint, keys_dir=keys_dir, timeout_s=0.3, retries=1) as ctl:
                with pytest.raises(ControlTimeout):
                    ctl.ping()

    generate_keys(tmp_path / "keys", client_name="second")  # read at the next server start
    with running_server(keys_dir=tmp_path / "keys") as (server, _):
        for name in ("client", "second"):
            with Client(
                server.endpoint, keys_dir=tmp_path / "keys", client_name=name, timeout_s=2.0
            ) as ctl:
                assert ctl.ping()["pong"] is True
    with pytest.raises(FileExistsError):
        generate_keys(tmp_path / "keys")


# ---- CueState ---------------------------------------------------------------------------------


def test_cue_state_swaps_whole_snapshots_and_skips_no_ops():
    state = new_state()
    first = state.snapshot()
    assert state.snapshot() is first  # the engine's read is a plain reference
    state.set_gain(0, -6.0, received_ns=1)
    second = state.snapshot()
    assert second.version == 1 and second.changed_ns == 1 and first.gains_db[0] == 0.0
    state.set_gain(0, -6.0, received_ns=2)
    assert state.snapshot() is second


def test_output_gains_apply_mute_and_solo():
    state = new_state()
    state.set_gain(1, -20.0, 0)
    state.set_mute(0, True, 0)
    assert state.snapshot().output_gains == pytest.approx((0.0, 0.1, 1.0, 1.0))
    state.set_solo(1, True, 0)
    state.set_solo(3, True, 0)
    assert state.snapshot().output_gains == pytest.approx((0.0, 0.1, 0.0, 1.0))


def test_cues_are_encoded_on_the_control_side_and_refusals_change_nothing():
    state = new_state()
    state.set_cues(["ENV", "rain on a roof"], 0)
    snap = state.snapshot()
    assert [(c.text, c.kind, c.encoded) for c in snap.cues] == [
        ("env", "label", 2),
        ("rain on a roof", "text", ("rain", "on", "a", "roof")),
    ]
    with pytest.raises(ControlError) as info:
        state.set_cues(["speech", "???"], 0)
    assert info.value.code == "invalid_cue" and state.snapshot() is snap

    labels_only = CueState(LABELS, 2)
    with pytest.raises(ControlError, match="no text encoder"):
        labels_only.set_cues(["a dog barking"], 0)
    assert labels_only.set_cues(["music"], 0)["cues"] == [{"text": "music", "kind": "label"}]
    assert labels_only.list_labels() == {"labels": list(LABELS), "free_text": False}


def test_stats_reset_from_a_baseline_and_events_are_bounded():
    state = CueState(LABELS, 2, max_events=3)
    state.count("chunks", 10)
    state.reset_stats()
    state.count("chunks", 4)
    assert state.stats()["counters"] == {"chunks": 4}
    for k in range(5):
        state.source_born(k % 2, None)
    assert len(state.drain_events()) == 3 and state.stats()["events_dropped"] == 2
    assert state.drain_events() == []
    assert state.levels_db() is None
    state.report_levels([-1.0, -2.0])
    assert state.levels_db() == [-1.0, -2.0] and state.levels_db() is None


# ---- rtsep ctl ---------------------------------------------------------------------------------


def test_ctl_prints_json_results_and_exits_0(served, capsys):
    server, state = served
    base = ["--control", server.endpoint]
    assert ctl_main(base + ["set-cues", "speech", "a dog barking"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "extract"
    assert ctl_main(base + ["set-gain", "1", "-6"]) == 0
    assert ctl_main(base + ["mute", "2"]) == 0
    assert ctl_main(base + ["solo", "1"]) == 0
    assert ctl_main(base + ["solo", "1", "--off"]) == 0
    assert ctl_main(base + ["set-mode", "remove"]) == 0
    for command in ("ping", "list-labels", "stats", "reset-stats"):
        assert ctl_main(base + [command]) == 0
    capsys.readouterr()
    assert ctl_main(base + ["status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["mode"] == "remove" and status["outputs"][1]["gain_db"] == -6.0
    assert status["outputs"][2]["mute"] and not status["outputs"][1]["solo"]
    assert ctl_main(base + ["watch", "--topic", "status", "--count", "1"]) == 0
    line = capsys.readouterr().out.strip().splitlines()
    assert len(line) == 1 and json.loads(line[0])["topic"] == "status"


def test_ctl_failures_exit_1_with_one_line(served, capsys):
    server, _ = served
    assert ctl_main(["--control", server.endpoint, "set-gain", "9", "0"]) == 1
    assert capsys.readouterr().err.strip() == "rtsep ctl: bad_args: output must be 0..3, got 9"
    dead = f"tcp://127.0.0.1:{free_port()}"
    assert ctl_main(["--control", dead, "--timeout", "0.1", "--retries", "0", "ping"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no reply from" in err
    assert ctl_main(["--control", dead, "set-mode", "karaoke"]) == 1
    assert ctl_main(["--help"]) == 0
    assert "set-cues" in capsys.readouterr().out
