"""`rtsep live` when its device goes away, and on Ctrl-C: one clear line, a prompt exit.

``rtsep live`` runs as a subprocess on a JACK dummy server that this process starts without
touching its own PortAudio (PortAudio cannot terminate once its JACK server is gone, and the
test process must live on). Killing the server with SIGKILL is a vanished sound card.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from jack_server import INSTALL_HINT, JACKD, JackServer

pytestmark = [pytest.mark.jack, pytest.mark.slow]

#: The issue's bound: from the device's end to the process's exit (seconds).
EXIT_WITHIN_S = 2.0


@pytest.fixture
def server():
    if JACKD is None:
        pytest.skip(f"jackd is not installed ({INSTALL_HINT})")
    jack = JackServer(48000, 128).start(portaudio=False)
    try:
        yield jack
    finally:
        jack.stop()


def _start_live(server: JackServer, audio: str) -> subprocess.Popen:
    """``rtsep live`` on ``server``; returns once its header line is out (audio running)."""
    argv = [sys.executable, "-m", "rtsep.cli.main", "live", "--input", "JACK", "--output"]
    argv += ["JACK", "--samplerate", "48000", "--blocksize", "128", "--cue", "speech"]
    argv += ["--audio", audio]
    env = dict(os.environ, **server.client_env(), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    live = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    for line in live.stdout:
        if line.startswith("live: "):
            break
        assert time.monotonic() < deadline, "rtsep live did not start"
    else:
        pytest.fail(f"rtsep live exited before starting: {live.stderr.read()}")
    time.sleep(1.0)  # audio flowing
    assert live.poll() is None, live.stderr.read()
    return live


def _wait(live: subprocess.Popen, since: float) -> tuple[int, float, str, str]:
    try:
        out, err = live.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        live.kill()
        out, err = live.communicate()
        pytest.fail(f"rtsep live did not exit: {err}")
    return live.returncode, time.monotonic() - since, out, err


@pytest.mark.parametrize("audio", ["rtmixer", "sounddevice"])
@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_a_killed_or_stopped_jack_server_ends_rtsep_live_with_one_clear_line(
    server, audio: str, how: str
) -> None:
    live = _start_live(server, audio)
    killed = time.monotonic()
    if how == "killed":
        server.kill()  # SIGKILL: the server leaves no word
    else:
        server.stop()  # SIGTERM: a clean shutdown that tells its clients
    code, seconds, _, err = _wait(live, killed)
    ours = [line for line in err.splitlines() if line.startswith("rtsep live:")]
    assert code != 0
    assert len(ours) == 1 and "the audio device went away" in ours[0], err
    assert seconds <= EXIT_WITHIN_S, f"exited {seconds:.2f} s after the server was killed"


@pytest.mark.parametrize("audio", ["rtmixer", "sounddevice"])
def test_ctrl_c_stops_rtsep_live_promptly_with_its_summary(server, audio: str) -> None:
    live = _start_live(server, audio)
    interrupted = time.monotonic()
    live.send_signal(signal.SIGINT)
    code, seconds, out, err = _wait(live, interrupted)
    assert code == 0, err
    assert "stopped after" in out
    assert seconds <= EXIT_WITHIN_S, f"exited {seconds:.2f} s after Ctrl-C"
