"""The ONNX export carries the state explicitly and matches the torch backend."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from architectures import COSTLY, VARIANTS, model_of

import rtsep
from rtsep.engine import OnnxBackend, Streamer, TorchBackend
from rtsep.export import export_onnx
from rtsep.model import STATE_NAMES


@pytest.fixture(scope="module", params=VARIANTS)
def model(request) -> rtsep.Model:
    return model_of(request.param)


@pytest.fixture(scope="module")
def onnx_path(model, tmp_path_factory):
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "step.onnx")


def test_export_has_the_state_as_explicit_inputs_and_outputs(onnx_path):
    graph = onnx.load(str(onnx_path)).graph
    inputs = [i.name for i in graph.input]
    outputs = [o.name for o in graph.output]
    assert inputs == ["hop_samples", "queries", *STATE_NAMES]
    assert outputs == [
        "output",
        "gains_real",
        "gains_imag",
        *(f"{name}_out" for name in STATE_NAMES),
    ]


@pytest.mark.parametrize(
    "cues", [None, ["speech"], ["music", "an explosion", "env"]], ids=["eda", "one", "three"]
)
@pytest.mark.parametrize("model", COSTLY, indirect=True)
def test_onnxruntime_matches_torch_over_200_chunks(model, onnx_path, cues):
    rng = np.random.default_rng(3)
    queries = model.cue_queries(cues).numpy() if cues else None
    torch_backend, onnx_backend = TorchBackend(model), OnnxBackend(model, onnx_path=str(onnx_path))
    torch_backend.reset(queries)
    onnx_backend.reset(queries)
    hop = model.hop_samples
    reference, candidate, peak = [], [], 0.0
    for index in range(200):
        hops = 1 + index % 3
        chunk = (0.1 * rng.standard_normal(hops * hop) * (1 + np.sin(index / 9))).astype(np.float32)
        peak = max(peak, float(np.abs(chunk).max()))
        reference.append(torch_backend.step(chunk))
        candidate.append(onnx_backend.step(chunk))
    audio = [np.concatenate([o.audio for o in run], 1) for run in (reference, candidate)]
    gains = [np.concatenate([o.gains for o in run], 1) for run in (reference, candidate)]
    # Relative to the input: a trained model may all but silence noise for a given cue.
    assert np.abs(audio[1] - audio[0]).max() / peak < 1e-5
    # The gains the engine applies at the device rate (bounded by 1.5 in every architecture).
    hops = sum(1 + index % 3 for index in range(200))
    assert gains[0].shape == (len(cues or range(model.config.max_sources)), hops, 129)
    assert np.abs(gains[1] - gains[0]).max() < 1e-5
    np.testing.assert_allclose(onnx_backend.existence, torch_backend.existence, atol=1e-4)


def test_streamer_on_onnxruntime_matches_separate(model):
    rng = np.random.default_rng(5)
    signal = (0.1 * rng.standard_normal(7000)).astype(np.float32)
    reference = model.separate(signal, ["speech", "env"]).sources
    streamer = Streamer(model, ["speech", "env"], backend="onnxruntime")
    output = np.concatenate(
        [streamer.process(signal[:3001]), streamer.process(signal[3001:]), streamer.flush()], 1
    )
    assert output.shape == reference.shape
    assert np.abs(output - reference).max() / np.abs(reference).max() < 1e-4
