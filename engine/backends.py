"""Inference backends: one hop-stepping interface over torch and onnxruntime.

A backend owns the streaming state of one stream. ``reset(queries)`` starts a new stream for
a query set (``None``: the EDA attractors choose the outputs); ``step(chunk)`` runs whole hops
strictly in order and returns the raw output stream, which lags the input by
``window - hop`` samples (the overlap-add tail; :class:`~rtsep.engine.Streamer` and the
engine compensate it).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from ..model import STATE_NAMES, Model


class Backend(Protocol):
    name: str
    hop_samples: int

    def reset(self, queries: np.ndarray | None) -> None: ...

    def step(self, chunk: np.ndarray) -> np.ndarray: ...

    @property
    def outputs(self) -> int: ...

    @property
    def attractors(self) -> np.ndarray: ...

    @property
    def existence(self) -> np.ndarray: ...


class TorchBackend:
    """Runs :meth:`SeparationNetwork.step_hop` in torch (CPU or CUDA)."""

    name = "torch"

    def __init__(self, model: Model, threads: int | None = 1) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.model = model
        self.hop_samples = model.hop_samples
        self.reset(None)

    def reset(self, queries: np.ndarray | None) -> None:
        network = self.model.network
        self._queries = None if queries is None else torch.as_tensor(queries, device=network.device)[None]
        outputs = self.model.config.max_sources if queries is None else len(queries)
        self._state = network.init_state(1, outputs)

    @property
    def outputs(self) -> int:
        return self._state["synthesis_carry"].shape[1]

    @torch.inference_mode()
    def step(self, chunk: np.ndarray) -> np.ndarray:
        """``chunk float32 [k * hop]`` → raw output ``float32 [outputs, k * hop]``."""
        signal = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))
        signal = signal.to(self.model.device)[None]
        output, self._state = self.model.network.step(signal, self._queries, self._state)
        return output[0].cpu().numpy()

    @property
    def attractors(self) -> np.ndarray:
        """Held attractors ``[max_sources + 1, E]`` of the last grid frame."""
        return self._state["attractors"][0].cpu().numpy()

    @property
    def existence(self) -> np.ndarray:
        """Existence probabilities ``[max_sources + 1]`` of the held attractors."""
        return torch.sigmoid(self._state["existence_logits"][0]).cpu().numpy()


class OnnxBackend:
    """Runs the exported step graph in onnxruntime (CPU, or the CUDA execution provider)."""

    name = "onnxruntime"

    def __init__(
        self, model: Model, threads: int = 1, onnx_path: str | None = None, providers: list[str] | None = None
    ) -> None:
        import onnxruntime as ort

        from ..export import cached_onnx

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        path = onnx_path or str(cached_onnx(model))
        self.session = ort.InferenceSession(path, options, providers=providers or ["CPUExecutionProvider"])
        self.model = model
        self.hop_samples = model.hop_samples
        self._max_sources = model.config.max_sources
        self.reset(None)

    def reset(self, queries: np.ndarray | None) -> None:
        outputs = self._max_sources if queries is None else len(queries)
        self._eda = queries is None
        self._queries = None if queries is None else np.asarray(queries, np.float32)[None]
        state = self.model.network.init_state(1, outputs)
        self._state = {name: state[name].cpu().numpy() for name in STATE_NAMES}

    @property
    def outputs(self) -> int:
        return self._state["synthesis_carry"].shape[1]

    def step(self, chunk: np.ndarray) -> np.ndarray:
        """``chunk float32 [k * hop]`` → raw output ``float32 [outputs, k * hop]``."""
        hop = self.hop_samples
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.shape[-1] % hop:
            raise ValueError(f"chunk length {chunk.shape[-1]} is not a multiple of {hop}")
        out = np.empty((self.outputs, chunk.shape[-1]), np.float32)
        for start in range(0, chunk.shape[-1], hop):
            feeds = dict(self._state)
            feeds["hop_samples"] = chunk[None, start : start + hop]
            feeds["queries"] = self._state["attractors"][:, : self._max_sources] if self._eda else self._queries
            result = self.session.run(None, feeds)
            out[:, start : start + hop] = result[0][0]
            self._state = dict(zip(STATE_NAMES, result[1:]))
        return out

    @property
    def attractors(self) -> np.ndarray:
        return self._state["attractors"][0]

    @property
    def existence(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self._state["existence_logits"][0]))


BACKENDS = ("torch", "onnxruntime")


def resolve_backend_name(name: str) -> str:
    """``auto`` → ``onnxruntime`` when it is installed, else ``torch``."""
    if name == "auto":
        try:
            import onnxruntime  # noqa: F401

            return "onnxruntime"
        except ImportError:
            return "torch"
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of auto, {', '.join(BACKENDS)}")
    return name


def make_backend(model: Model, name: str = "auto", threads: int = 1) -> Backend:
    """Build the backend called ``name`` (``auto``, ``torch`` or ``onnxruntime``)."""
    name = resolve_backend_name(name)
    if name == "torch":
        return TorchBackend(model, threads)
    providers = None
    if model.device.type == "cuda":
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return OnnxBackend(model, threads, providers=providers)
