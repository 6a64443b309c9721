"""Live audio I/O on a JACK dummy-driver server: bit-exact transfer with whole-period delays."""

from __future__ import annotations

import time

import numpy as np
import pytest
from jack_server import JackPlayRecord, JackServer, patch, stream_ports

from rtsep.engine.audio_io import AudioDeviceError, find_device, list_devices, open_duplex

pytestmark = pytest.mark.jack

PERIOD_FRAMES = 256


def _signal(rate_hz: int) -> np.ndarray:
    """A quarter second of full-scale-ish noise in 2 channels: any slip or gain shows."""
    frames = rate_hz // 4
    return np.random.default_rng(rate_hz).uniform(-0.9, 0.9, (2, frames)).astype(np.float32)


def _delay_of(recording: np.ndarray, signal: np.ndarray) -> int | None:
    """Where ``signal`` occurs bit-exactly in ``recording``, or None."""
    frames = signal.shape[1]
    for delay in range(recording.shape[1] - frames + 1):
        if np.array_equal(recording[:, delay : delay + frames], signal):
            return delay
    return None


def _capture(stream, frames: int, timeout_s: float = 5.0) -> np.ndarray:
    recording = np.zeros((stream.input_channels, frames), dtype=np.float32)
    got, deadline = 0, time.monotonic() + timeout_s
    while got < frames and time.monotonic() < deadline:
        got += stream.input_ring.read(frames - got, out=recording[:, got:]).shape[1]
        time.sleep(0.005)
    assert got == frames, f"captured {got} of {frames} frames"
    return recording


@pytest.mark.parametrize(
    ("backend", "rate_hz", "blocksize_frames", "periods"),
    [
        ("sounddevice", 16000, PERIOD_FRAMES, 2),
        ("sounddevice", 48000, PERIOD_FRAMES, 2),
        ("sounddevice", 48000, 0, 1),
        ("rtmixer", 16000, PERIOD_FRAMES, 2),
    ],
)
def test_output_patched_to_input_returns_the_signal_bit_exact_whole_periods_late(
    jack_server, backend: str, rate_hz: int, blocksize_frames: int, periods: int
) -> None:
    server: JackServer = jack_server(rate_hz, PERIOD_FRAMES)
    signal = _signal(rate_hz)
    with open_duplex(
        "JACK",
        "JACK",
        samplerate_hz=rate_hz,
        blocksize_frames=blocksize_frames,
        channels=(2, 2),
        backend=backend,
    ) as stream:
        client = server.client()
        patch(client, stream_ports(client, "out"), stream_ports(client, "in"))
        assert stream.output_ring.write(signal) == signal.shape[1]  # plays from the first block
        stream.start()
        recording = _capture(stream, signal.shape[1] + 4 * PERIOD_FRAMES)
        stream.stop()
        counters = stream.counters()
        client.close()
    delay = _delay_of(recording, signal)
    assert delay == periods * PERIOD_FRAMES == stream.latency_frames
    assert not recording[:, :delay].any() and not recording[:, delay + signal.shape[1] :].any()
    assert counters.callbacks > 0 and counters.input_overruns == 0
    if backend == "sounddevice":
        assert counters.output_underruns > 0  # the ring ran dry after the signal: zeros played


def test_on_block_pass_through_adds_no_delay_to_the_device_round_trip(jack_server) -> None:
    server: JackServer = jack_server(16000, PERIOD_FRAMES)
    signal = _signal(16000)
    player = JackPlayRecord(server, signal, signal.shape[1] + 4 * PERIOD_FRAMES)
    holder = {}

    def on_block(captured: np.ndarray) -> None:  # runs in the audio thread
        holder["stream"].output_ring.write(captured)

    try:
        with open_duplex(
            "JACK", "JACK", samplerate_hz=16000, channels=(2, 2), on_block=on_block
        ) as stream:
            holder["stream"] = stream
            player.connect_output_to(stream_ports(player.client, "in"))
            player.connect_input_from(stream_ports(player.client, "out"))
            stream.start()
            recording = player.run()
            stream.stop()
            captured = stream.input_ring.available()
    finally:
        player.close()
    assert _delay_of(recording, signal) == stream.latency_frames == 2 * PERIOD_FRAMES
    assert captured > 0  # on_block came after the copy into the input ring


def test_a_full_input_ring_counts_overruns(jack_server) -> None:
    jack_server(16000, PERIOD_FRAMES)
    with open_duplex(samplerate_hz=16000, channels=(1, 1), ring_frames=PERIOD_FRAMES) as stream:
        stream.start()
        time.sleep(0.1)
        stream.stop()
        counters = stream.counters()
    assert counters.input_overruns > 0 and counters.output_underruns == counters.callbacks


@pytest.mark.parametrize("backend", ["sounddevice", "rtmixer"])
def test_a_stalled_server_counts_each_xrun_once_not_once_per_flag(jack_server, backend) -> None:
    """PortAudio's JACK host flags every server xrun as an input overflow and an output
    underflow in the same callback: ``xruns`` counts the callbacks, half the flags' sum."""
    server = jack_server(48000, 128)
    with open_duplex(
        samplerate_hz=48000, blocksize_frames=128, channels=(1, 1), backend=backend
    ) as stream:
        stream.start()
        time.sleep(0.2)
        for _ in range(3):
            server.pause(0.05)
            time.sleep(0.2)
        stream.stop()
        counters = stream.counters()
    assert counters.input_overflow_flags == counters.output_underflow_flags >= 1
    assert counters.input_underflow_flags == counters.output_overflow_flags == 0
    assert counters.xruns == counters.input_overflow_flags
    if backend == "sounddevice":
        assert counters.flagged_callbacks == counters.xruns


def test_devices_are_found_by_index_or_name_and_missing_ones_are_listed(jack_server) -> None:
    jack_server(16000, PERIOD_FRAMES)
    index = find_device("jack audio", "input")
    assert find_device(index, "output") == find_device(str(index), "input") == index
    assert "system, JACK Audio Connection Kit" in list_devices()
    with pytest.raises(AudioDeviceError) as error:
        find_device("no-such-card", "output")
    message = str(error.value)
    assert "no output device matches 'no-such-card'" in message
    assert f"{index:3d}: system, JACK Audio Connection Kit (2 in, 2 out)" in message
    with pytest.raises(AudioDeviceError, match="no input device has index 99"):
        find_device(99, "input")


def test_rtmixer_backend_refuses_on_block(jack_server) -> None:
    jack_server(16000, PERIOD_FRAMES)
    with pytest.raises(ValueError, match="cannot call on_block"):
        open_duplex(backend="rtmixer", on_block=lambda block: None)
