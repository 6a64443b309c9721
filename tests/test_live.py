"""Live mode on a JACK dummy-driver sound card: measured delay equals the reported latency.

The JACK period equals the host block (one case aside), so PortAudio hands the engine whole
periods and the device round trip is 2 periods. Extracting one cue with the residual, the two
outputs add up to the input whatever the model's weights, at the device rate and with its
whole band, so the sum's lag behind the input is the end-to-end delay, and the aligned sum is
the input to float precision.

On a loaded machine a run can be disturbed: the JACK server (no real-time scheduling here)
goes on without a client that is late (the stream's or the recorder's; jackd logs it, PortAudio
mostly flags an xrun) and audio is lost on the way; or the engine misses a deadline and plays
silence. Either breaks the sum's correlation with the input, or shifts its peak, whatever the
latency. A failing run that was disturbed is tried again; one that was not is a real mismatch.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time

import numpy as np
import pytest
from jack_server import JackPlayRecord, JackServer, stream_ports
from ports import free_port

import rtsep
from rtsep.bindings import Client
from rtsep.cli.main import main
from rtsep.engine.live import LiveSession, monitor_matrix
from rtsep.engine.realtime import WORKER_PRIORITY, realtime_allowed
from rtsep.engine.runtime import Engine, EngineConfig

pytestmark = pytest.mark.jack

#: Largest error of the aligned outputs' sum against the input (dB re the input): nothing is
#: resampled on the way out, so the outputs add up to the input at every rate.
MAX_SUM_ERROR_DB = -60.0
#: Runs tried per case while failing runs were disturbed (xruns, deadline misses, drops).
ATTEMPTS = 3
#: Cases in the slow group (make test-slow, CI): make test keeps one block size per rate and
#: audio path (16k-256, 48k-128, 44k1-128, the stereo monitor, sounddevice at 16k-256).
SLOW = pytest.mark.slow


@pytest.fixture(scope="module")
def model() -> rtsep.Model:
    return rtsep.load_model()


def noise_bursts(rate_hz: int, seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    """Four 40 ms bursts of white noise (the whole band, to the device's Nyquist frequency)
    at irregular onsets, ``[1, frames]``: one unambiguous cross-correlation peak."""
    rng = np.random.default_rng(seed)
    noise = 0.2 * rng.standard_normal(int(seconds * rate_hz))
    gate = np.zeros_like(noise)
    burst = int(0.04 * rate_hz)
    for onset_s in (0.02, 0.11, 0.27, 0.34):
        start = int(onset_s * rate_hz)
        gate[start : start + burst] = 1.0
    return (noise * gate).astype(np.float32)[None]


def delay_of(recording: np.ndarray, signal: np.ndarray) -> int:
    """Lag (samples, >= 0) at which ``signal [frames]`` best matches ``recording [frames]``."""
    size = recording.size + signal.size
    spectrum = np.fft.rfft(recording, size) * np.conj(np.fft.rfft(signal, size))
    return int(np.argmax(np.fft.irfft(spectrum, size)[: recording.size]))


def play_through(server: JackServer, session: LiveSession, signal: np.ndarray) -> np.ndarray:
    """Play ``signal [1, frames]`` into the session's device input and record its outputs
    (``[device outputs, frames]``) from the same JACK cycle on."""
    frames = signal.shape[1] + math.ceil(session.latency.total_samples) + 4 * server.period_frames
    player = JackPlayRecord(server, signal, frames, session.stream.output_channels)
    try:
        player.connect_output_to(stream_ports(player.client, "in"))
        player.connect_input_from(stream_ports(player.client, "out"))
        session.start()
        recording = player.run()
        session.stop()
    finally:
        player.close()
    return recording


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One run through the JACK device: the delay found, the one reported, and what may have
    disturbed the recording."""

    measured: int  # lag of the outputs' sum behind the input (samples)
    reported: float  # LiveSession.latency.total_samples
    error_db: float  # of the outputs' sum, aligned, against the input (dB re the input)
    graph_errors: int  # JACK cycles that went on without a late client (the server's log)
    xruns: int  # callbacks PortAudio flagged for such a cycle
    deadline_misses: int  # engine output callbacks that played silence
    dropped_chunks: int  # engine backlog drops

    @property
    def disturbed(self) -> bool:
        """Whether audio was lost or replaced on the way, whatever the latency."""
        counts = (self.graph_errors, self.xruns, self.deadline_misses, self.dropped_chunks)
        return any(counts)

    def __str__(self) -> str:
        return (
            f"measured {self.measured} vs reported {self.reported:.2f} samples, sum error "
            f"{self.error_db:.1f} dB; {self.graph_errors} JACK graph errors, {self.xruns} xruns, "
            f"{self.deadline_misses} deadline misses, {self.dropped_chunks} dropped chunks"
        )

    def agrees(self) -> bool:
        """Measured equals reported, and the sum is the input at full band."""
        return self.measured == self.reported and self.error_db < MAX_SUM_ERROR_DB


def measure(server: JackServer, session: LiveSession, signal: np.ndarray) -> Measurement:
    """Play ``signal [1, frames]`` through ``session``, whose outputs add up to its input
    (one cue and the residual), and measure the delay of their sum."""
    graph_errors = server.graph_errors()
    total = play_through(server, session, signal).sum(axis=0)
    measured = delay_of(total, signal[0])
    aligned = total[measured : measured + signal.shape[1]].astype(np.float64)
    reference = signal[0, : aligned.size].astype(np.float64)
    stats = session.engine.stats
    return Measurement(
        measured=measured,
        reported=float(session.latency.total_samples),
        error_db=float(10 * np.log10(np.sum((aligned - reference) ** 2) / np.sum(reference**2))),
        graph_errors=server.graph_errors() - graph_errors,
        xruns=session.counters().xruns,
        deadline_misses=stats.deadline_misses,
        dropped_chunks=stats.dropped_chunks,
    )


@pytest.mark.parametrize(
    ("rate_hz", "block", "period", "monitor", "audio"),
    [
        pytest.param(16000, 64, 64, None, "rtmixer", id="16k-64", marks=SLOW),
        pytest.param(16000, 256, 256, None, "rtmixer", id="16k-256"),
        pytest.param(16000, 1000, 1000, None, "rtmixer", id="16k-1000", marks=SLOW),
        pytest.param(48000, 64, 64, None, "rtmixer", id="48k-64", marks=SLOW),
        pytest.param(48000, 256, 256, None, "rtmixer", id="48k-256", marks=SLOW),
        pytest.param(48000, 1000, 1000, None, "rtmixer", id="48k-1000", marks=SLOW),
        pytest.param(44100, 64, 64, None, "rtmixer", id="44k1-64", marks=SLOW),
        pytest.param(44100, 128, 128, None, "rtmixer", id="44k1-128"),
        pytest.param(44100, 1000, 1000, None, "rtmixer", id="44k1-1000", marks=SLOW),
        pytest.param(48000, 128, 128, None, "rtmixer", id="48k-128"),
        # PortAudio adapts 1000-frame blocks to 256-frame periods and reports what that adds.
        pytest.param(16000, 1000, 256, None, "rtmixer", id="16k-1000-on-256-period", marks=SLOW),
        # Stereo monitor: cue hard left, residual hard right.
        pytest.param(16000, 256, 256, (0, 1), "rtmixer", id="16k-256-monitor"),
        # The sounddevice (Python callback) fallback keeps the same latency.
        pytest.param(16000, 256, 256, None, "sounddevice", id="16k-256-sounddevice"),
        pytest.param(48000, 128, 128, None, "sounddevice", id="48k-128-sounddevice", marks=SLOW),
        pytest.param(
            16000, 256, 256, (0, 1), "sounddevice", id="16k-256-monitor-sounddevice", marks=SLOW
        ),
    ],
)
def test_measured_delay_through_a_jack_device_equals_the_reported_latency(
    jack_server,
    model,
    rate_hz: int,
    block: int,
    period: int,
    monitor: tuple[int, int] | None,
    audio: str,
) -> None:
    server: JackServer = jack_server(rate_hz, period)
    config = EngineConfig(device_rate_hz=rate_hz, block_samples=block, residual=True)
    signal = noise_bursts(rate_hz, seed=block)
    disturbed: list[Measurement] = []
    for _ in range(ATTEMPTS):
        engine = Engine(model, config, cues=["speech"], mode="extract")
        with LiveSession(engine, "JACK", "JACK", monitor=monitor, audio_backend=audio) as session:
            run = measure(server, session, signal)
        if run.agrees() or not run.disturbed:
            break
        disturbed.append(run)
    else:
        runs = " | ".join(map(str, disturbed))
        pytest.skip(f"all {ATTEMPTS} runs disturbed by an overloaded machine: {runs}")
    if block == period:
        assert session.latency.device_samples == 2 * period  # JACK: capture + playback period
    assert run.reported == engine.latency.total_samples + session.latency.device_samples
    assert run.measured == run.reported, str(run)
    assert run.error_db < MAX_SUM_ERROR_DB, str(run)  # the sum is the input, whole band


@pytest.mark.slow
def test_a_stalled_worker_on_rtmixer_plays_silence_then_returns_to_the_reported_latency(
    jack_server, model
) -> None:
    # rtmixer ends its play action when the ring runs dry; the session re-arms it, measures
    # the silence from the actions' stream times and the engine drops as much stale audio.
    rate_hz = 16000
    server = jack_server(rate_hz, 256)
    config = EngineConfig(device_rate_hz=rate_hz, block_samples=256, residual=True)
    signal = noise_bursts(rate_hz, seconds=0.5, seed=7)
    signal = np.tile(signal, (1, 5))  # 2.5 s: bursts every 0.5 s
    engine = Engine(model, config, cues=["speech"], mode="extract")
    with LiveSession(engine, "JACK", "JACK") as session:
        threading.Timer(0.6, engine.stall, args=(0.3,)).start()
        recording = play_through(server, session, signal).sum(axis=0)
        live = session.status()["live"]
    assert live["xruns"] == session.counters().xruns
    allowed = realtime_allowed(WORKER_PRIORITY)  # the default: SCHED_FIFO where allowed
    assert live["worker_scheduling"] == (f"SCHED_FIFO {WORKER_PRIORITY}" if allowed else "normal")
    stats = engine.stats.snapshot()
    assert stats["deadline_misses"] >= 1
    assert stats["underrun_samples"] >= 0.2 * rate_hz  # most of the stall played as silence
    reported = round(session.latency.total_samples)
    tail = slice(int(1.5 * rate_hz), int(2.5 * rate_hz))
    lag = delay_of(recording[reported + tail.start :], signal[0, tail])
    assert lag == 0, f"{lag} samples off the reported latency after the stall; {stats}"


def test_monitor_spreads_outputs_from_left_to_right_at_equal_power() -> None:
    assert monitor_matrix([2], 4).tolist() == [[0, 0, 1, 0], [0, 0, 1, 0]]
    matrix = monitor_matrix([0, 1, 3], 4)
    np.testing.assert_allclose(
        matrix[:, [0, 1, 3]], [[1, 0.5**0.5, 0], [0, 0.5**0.5, 1]], atol=1e-7
    )
    np.testing.assert_allclose((matrix**2).sum(axis=0), [1, 1, 0, 1], atol=1e-6)
    with pytest.raises(ValueError, match="monitor output 4 does not exist"):
        monitor_matrix([4], 4)


def test_rtsep_live_runs_on_the_jack_device_and_exits_cleanly(jack_server, capsys) -> None:
    jack_server(16000, 256)
    argv = ["live", "--input", "JACK", "--output", "JACK", "--cue", "speech", "--duration", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"stopped after 1\.[01] s: \d+ deadline misses, \d+ xruns", out), out


@pytest.mark.slow
def test_rtsep_live_serves_the_control_channel(jack_server, capsys) -> None:
    jack_server(16000, 256)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    argv = ["live", "--input", "JACK", "--output", "JACK", "--cue", "speech", "--duration", "4"]
    argv += ["--control", endpoint, "--telemetry", "tcp://127.0.0.1:*"]
    codes: list[int] = []
    live = threading.Thread(target=lambda: codes.append(main(argv)))
    live.start()
    try:
        # Generous timeout: the model and the text encoder load before the server binds.
        with Client(endpoint, timeout_s=60.0, retries=0) as client:
            assert client.ping() == {"pong": True, "protocol": 1}
            before = client.status()
            assert before["mode"] == "extract"
            assert before["cues"] == [{"text": "speech", "kind": "label"}]
            reply = client.set_cues("music")
            assert reply["cues"] == [{"text": "music", "kind": "label"}]
            assert reply["version"] > before["version"]
            # The engine applies it at its next chunk; the server learns of it at a tick.
            status = client.status()
            while live.is_alive() and (
                status["applied_version"] < reply["version"]
                or status["outputs"][0]["label"] != "music"
            ):
                time.sleep(0.05)
                status = client.status()
    finally:
        live.join()
    assert codes == [0]
    assert status["cues"] == [{"text": "music", "kind": "label"}]
    assert status["applied_version"] == reply["version"]  # the running engine switched
    assert [o["label"] for o in status["outputs"]] == ["music", "residual"]
    assert status["backend"] is not None and status["latency_ms"] > 0
    captured = capsys.readouterr()
    assert f"control on {endpoint}" in captured.err
    assert re.search(r"stopped after [\d.]+ s: \d+ deadline misses", captured.out), captured.out


def test_a_missing_device_is_named_with_the_devices_to_choose_from(jack_server, capsys) -> None:
    jack_server(16000, 256)
    assert main(["live", "--input", "no-such-card", "--duration", "1"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("rtsep live: error: no input device matches 'no-such-card'.")
    assert "system, JACK Audio Connection Kit (2 in, 2 out)" in error
    assert main(["devices"]) == 0
    assert "system, JACK Audio Connection Kit" in capsys.readouterr().out
