"""SCHED_FIFO for one thread: granted where the OS allows it, refused in one line where not;
``rtsep live``'s worker asks for it by default and says so in one line when refused."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
import threading

import pytest
from jack_server import INSTALL_HINT, JACKD, JackServer

import rtsep
from rtsep.config import load_config
from rtsep.engine.live import LiveSession
from rtsep.engine.realtime import WORKER_PRIORITY, realtime_allowed, set_fifo
from rtsep.engine.runtime import Engine, EngineConfig


def test_a_priority_outside_1_to_99_is_refused():
    for priority in (0, 100):
        with pytest.raises(ValueError, match="1..99"):
            set_fifo(0, priority)


def test_set_fifo_changes_only_the_thread_it_names():
    seen: dict[str, object] = {}
    ready, done = threading.Event(), threading.Event()

    def worker() -> None:
        ready.set()
        done.wait(5)

    thread = threading.Thread(target=worker)
    thread.start()
    ready.wait(5)
    try:
        seen["refused"] = set_fifo(thread.native_id, 1)
        seen["policy"] = os.sched_getscheduler(thread.native_id)
    finally:
        done.set()
        thread.join()
    if seen["refused"] is None:
        assert seen["policy"] == os.SCHED_FIFO
        assert realtime_allowed()
    else:
        assert isinstance(seen["refused"], str) and "not permitted" in seen["refused"]
        assert seen["policy"] == os.SCHED_OTHER
        assert not realtime_allowed()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the calling thread is untouched


def test_real_time_scheduling_of_the_worker_is_on_by_default() -> None:
    assert WORKER_PRIORITY >= 1
    assert load_config()["io"]["worker_priority"] == WORKER_PRIORITY
    default = inspect.signature(LiveSession).parameters["worker_priority"].default
    assert default == WORKER_PRIORITY


@pytest.mark.jack
def test_a_live_session_runs_its_worker_under_sched_fifo_where_the_os_allows_it(
    jack_server,
) -> None:
    jack_server(16000, 256)
    config = EngineConfig(device_rate_hz=16000, block_samples=256)
    engine = Engine(rtsep.load_model(), config, cues=["speech"], mode="extract")
    with LiveSession(engine, "JACK", "JACK") as session:
        session.start()
        worker = engine.worker_thread_id
        assert worker is not None
        policy, priority = os.sched_getscheduler(worker), os.sched_getparam(worker)
        scheduling = session.status()["live"]["worker_scheduling"]
    if realtime_allowed(WORKER_PRIORITY):
        assert (policy, priority.sched_priority) == (os.SCHED_FIFO, WORKER_PRIORITY)
        assert scheduling == f"SCHED_FIFO {WORKER_PRIORITY}"
        assert session.realtime_note is None
    else:
        assert policy == os.SCHED_OTHER and scheduling == "normal"
        assert session.realtime_note is not None and "rtprio" in session.realtime_note
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # only the worker is real-time


def refusing_prefix() -> list[str]:
    """A command prefix under which the OS refuses SCHED_FIFO, as it does to a user with no
    rtprio limit: the rtprio limit 0 (``prlimit``), and for root ``CAP_SYS_NICE`` dropped
    (``setpriv``). Skips where these tools are missing or the OS grants it anyway."""
    if shutil.which("prlimit") is None or shutil.which("setpriv") is None:
        pytest.skip("needs prlimit and setpriv (util-linux)")
    prefix = ["prlimit", "--rtprio=0:0"]
    if os.geteuid() == 0:
        prefix += ["setpriv", "--bounding-set", "-sys_nice", "--inh-caps", "-sys_nice"]
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"
    if subprocess.run([*prefix, sys.executable, "-c", probe], capture_output=True).returncode == 0:
        pytest.skip("the OS grants SCHED_FIFO even without CAP_SYS_NICE and an rtprio limit")
    return prefix


@pytest.mark.jack
def test_rtsep_live_refused_real_time_says_so_in_one_line_and_the_audio_runs() -> None:
    if JACKD is None:
        pytest.skip(f"jackd is not installed ({INSTALL_HINT})")
    prefix = refusing_prefix()
    server = JackServer(16000, 256).start(portaudio=False)
    try:
        argv = [*prefix, sys.executable, "-m", "rtsep.cli.main", "live", "--input", "JACK"]
        argv += ["--output", "JACK", "--cue", "speech", "--duration", "2"]
        env = dict(os.environ, **server.client_env(), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    finally:
        server.stop()
    # 2 s with no input for 1 s would have ended it with "the audio device went away".
    assert done.returncode == 0, done.stderr
    assert re.search(r"stopped after 2\.\d s: \d+ deadline misses", done.stdout), done.stdout
    notes = [line for line in done.stderr.splitlines() if "normal scheduling" in line]
    assert len(notes) == 1, done.stderr
    assert notes[0].startswith("rtsep live note: the model's worker runs with normal scheduling")
    assert "not permitted" in notes[0] and "rtprio" in notes[0] and "audio group" in notes[0]
