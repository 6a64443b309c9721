"""The GPU path: CUDA results equal CPU results. Skipped without a CUDA device."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from architectures import VARIANTS, model_of

import rtsep
from rtsep.engine import BatchStreamer, OnnxBackend, Streamer, TorchBackend
from rtsep.engine.cuda_graph import CudaGraphBackend

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

TOLERANCE = 1e-4


@pytest.fixture(scope="module", params=VARIANTS)
def models(request) -> tuple[rtsep.Model, rtsep.Model]:
    """The same weights on the CPU and on CUDA."""
    cpu = model_of(request.param)
    gpu = rtsep.Model(model_of(request.param).network.to("cuda"), cpu.metadata)
    return cpu, gpu


def chunks(hops: int, hop: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [
        (0.1 * rng.standard_normal(hop) * (1 + np.sin(i / 9))).astype(np.float32)
        for i in range(hops)
    ]


def assert_same_over_200_hops(reference, candidate, queries, hop: int) -> None:
    """Both backends reset to ``queries``, fed the same 200 hops: outputs equal to 1e-4 of the
    input peak, gains to 1e-4."""
    reference.reset(queries)
    candidate.reset(queries)
    inputs = chunks(200, hop)
    expected = [reference.step(c) for c in inputs]
    got = [candidate.step(c) for c in inputs]
    peak = max(float(np.abs(c).max()) for c in inputs)
    for name in ("audio", "gains"):
        scale = peak if name == "audio" else 1.0
        a, b = (np.concatenate([getattr(o, name) for o in run], 1) for run in (expected, got))
        assert np.abs(b - a).max() / scale < TOLERANCE, name


@pytest.mark.parametrize("cues", [None, ["speech", "music"]], ids=["eda", "cues"])
def test_torch_cuda_backend_equals_cpu_over_200_hops(models, cues):
    cpu, gpu = models
    queries = cpu.cue_queries(cues).numpy() if cues else None
    assert_same_over_200_hops(TorchBackend(cpu), TorchBackend(gpu), queries, cpu.hop_samples)


def test_onnxruntime_cuda_provider_equals_cpu_over_200_hops(models):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime without the CUDA execution provider (install the gpu extra)")
    cpu, _ = models
    candidate = OnnxBackend(cpu, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    queries = cpu.cue_queries(["speech"]).numpy()
    assert_same_over_200_hops(OnnxBackend(cpu), candidate, queries, cpu.hop_samples)


def test_batched_streams_on_cuda_equal_single_streams_on_cpu(models):
    cpu, gpu = models
    cues = [["speech", "music"], ["env", "speech"], ["music", "env"], ["speech", "env"]]
    rng = np.random.default_rng(4)
    batch = (0.1 * rng.standard_normal((len(cues), 6000))).astype(np.float32)
    streamer = BatchStreamer(gpu, cues)
    together = np.concatenate([streamer.process(batch), streamer.flush()], axis=2)
    for b, stream_cues in enumerate(cues):
        single = Streamer(cpu, stream_cues)
        reference = np.concatenate([single.process(batch[b]), single.flush()], axis=1)
        assert np.abs(together[b] - reference).max() / np.abs(reference).max() < TOLERANCE


@pytest.mark.parametrize(
    "cues",
    [[["speech", "music"]], [None, ["speech", "music", "env", "speech"], None]],
    ids=["one-stream-cues", "eda-beside-cues"],
)
def test_cuda_graph_step_equals_eager_step_over_200_hops(models, cues):
    _, gpu = models
    hop = gpu.hop_samples
    batch = np.stack([np.concatenate(chunks(200, hop)) * (1 + b) for b in range(len(cues))])
    outputs = []
    for graphs in (False, True):
        streamer = BatchStreamer(gpu, cues, cuda_graphs=graphs)
        pieces = [streamer.process(batch[:, i * hop : (i + 1) * hop]) for i in range(200)]
        outputs.append(np.concatenate([*pieces, streamer.flush()], axis=2))
    eager, graphed = outputs
    assert graphed.shape == eager.shape
    assert np.abs(graphed - eager).max() / np.abs(batch).max() < TOLERANCE


def test_cuda_graph_backend_equals_eager_torch_through_a_cue_change(models):
    """200 hops with one cue, then a change to three outputs (a second capture) carrying the
    first output's state, 200 more: the graph backend gives what the eager one gives."""
    _, gpu = models
    hop = gpu.hop_samples
    first = gpu.cue_queries(["speech"]).numpy()
    second = gpu.cue_queries(["music", "speech", "env"]).numpy()
    inputs = chunks(400, hop)
    results = []
    for backend in (TorchBackend(gpu), CudaGraphBackend(gpu)):
        backend.reset(first)
        head = [backend.step(c).audio for c in inputs[:200]]
        backend.configure(list(second), carry=[None, 0, None])
        tail = [backend.step(c).audio for c in inputs[200:]]
        results.append((np.concatenate(head, 1), np.concatenate(tail, 1)))
    peak = max(float(np.abs(c).max()) for c in inputs)
    for eager, graphed in zip(*results):
        assert graphed.shape == eager.shape
        assert np.abs(graphed - eager).max() / peak < TOLERANCE
