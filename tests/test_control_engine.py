"""The control channel steering a running engine: real sockets, real engine, real time."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from unpaced import first_undisturbed, run_unpaced

import rtsep
from rtsep.bindings import Client
from rtsep.engine.control_process import ControlProcess, ModelCueEncoder
from rtsep.engine.file_runner import run_file
from rtsep.engine.runtime import EngineConfig

RATE = 16000


@pytest.fixture(scope="module")
def model() -> rtsep.Model:
    return rtsep.load_model()


def tone_mixture(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    signal = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1250 * t)
    return signal.astype(np.float32)[None]


def run_with_server(model, mixture, cues, commands):
    """Run ``mixture`` in real time with the control process an engine runs (its own encoder of
    the shipped weights); ``commands(client)`` runs alongside."""
    servers, results = [], {}

    def on_start(engine):
        server = ControlProcess(
            engine.control, ModelCueEncoder(None), "tcp://127.0.0.1:*", "tcp://127.0.0.1:*"
        ).start()
        servers.append(server)

        def drive():
            with Client(server.endpoint, timeout_s=2.0) as client:
                results.update(commands(client))

        thread = threading.Thread(target=drive)
        thread.start()
        servers.append(thread)

    config = EngineConfig(block_samples=128, backend="onnxruntime")
    try:
        run = run_file(model, mixture, RATE, config, cues, realtime=True, on_start=on_start)
    finally:
        servers[1].join(timeout=10)
        servers[0].stop()
    return run, results


def test_set_cues_over_zeromq_switches_outputs_without_a_click(model):
    mixture = tone_mixture(2.0)

    def commands(client):
        time.sleep(0.6)
        reply = client.set_cues("music", "env")
        return {"reply": reply, "status": client.status()}

    def attempt():
        run, results = run_with_server(model, mixture, ["speech", "env"], commands)
        assert results["reply"]["cues"][0]["text"] == "music"
        assert run.engine.cues == ["music", "env"]
        return run

    run = first_undisturbed(attempt, lambda run: run.engine)
    applied = [e for e in run.engine.events if e["event"] == "cues_applied"]
    assert len(applied) == 1
    # Applied at the chunk boundary the engine recorded: sample for sample, the outputs are
    # those of an unpaced run whose cues change before that chunk (crossfade included).
    chunk = applied[0]["chunk"]
    delay = round(run.engine.latency.total_samples)
    heard = run.outputs[:, : mixture.shape[1] - delay]  # delay-compensated; reference is not
    switched, _ = run_unpaced(model, mixture, ["speech", "env"], (chunk, ["music", "env"]))
    scale = np.abs(switched).max()  # tolerances follow the outputs, whose level the weights set
    np.testing.assert_allclose(heard, switched[:, delay:], rtol=0, atol=1e-4 * scale)
    steady, _ = run_unpaced(model, mixture, ["speech", "env"])
    assert np.abs(heard - steady[:, delay:]).max() > 0.1 * scale  # the switch changed them
    # No click: no sample-to-sample jump into, through or out of the crossfade beyond what
    # the outputs do elsewhere (a new cue's output starts from fresh state, and its onset
    # counts as elsewhere, like the start of the run). The crossfade is the switch chunk's
    # output: aligned with the input (window - hop) samples before that chunk (overlap-add).
    steps = np.abs(np.diff(run.outputs, axis=1))
    fade_start = chunk * run.engine.chunk_samples - (
        model.config.window_samples - model.hop_samples
    )
    fade_end = fade_start + run.engine.chunk_samples
    around = steps[:, fade_start - 1 : fade_end]
    elsewhere = np.concatenate([steps[:, RATE // 4 : fade_start - 1], steps[:, fade_end:]], 1)
    assert around.max() <= 1.5 * elsewhere.max()


def test_gain_and_mute_over_zeromq_apply_to_the_output(model):
    mixture = tone_mixture(1.5)

    def commands(client):
        time.sleep(0.3)
        client.set_gain(0, -120.0)
        client.mute(1)
        return {"status": client.status()}

    run, results = run_with_server(model, mixture, ["speech", "music"], commands)
    tail = run.outputs[:, -RATE // 2 :]
    assert np.abs(tail).max() < 1e-5  # -120 dB and muted: silence at the end
    outputs = results["status"]["outputs"]
    assert outputs[0]["gain_db"] == -120.0 and outputs[1]["mute"] is True
