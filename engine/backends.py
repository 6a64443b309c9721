"""Inference backends: one hop-stepping interface over torch and onnxruntime.

A backend owns the streaming state of one stream and a list of outputs. Each output is an
:data:`OutputSpec`: an ``int`` (an EDA slot: its query is the attractor the network holds
for that slot) or a query vector ``[E]`` (a label or text cue). ``step(chunk)`` runs whole hops
strictly in order and returns a :class:`StepOutput`: the raw model-rate output stream, which
lags the input by ``window - hop`` samples (the overlap-add tail; :class:`~rtsep.engine.Streamer`
compensates it), and each hop's complex gains on the mixture's spectrum, which the engine
applies at the device rate (:mod:`rtsep.engine.fullband`).

``configure(outputs, carry)`` changes the outputs between two chunks without touching the
shared state (separator, EDA): output ``i`` takes the per-output state of previous output
``carry[i]``, or starts from zeros. ``checkpoint()`` / ``restore()`` rewind a step, so the
engine can run one chunk under the old outputs, rewind, and run it again under the new ones
to crossfade a cue change. (Old and new outputs cannot share one step: every output attends
to all the queries of its step, so each set must run with its own queries only.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..model import STATE_NAMES, Model

OutputSpec = int | np.ndarray

#: State tensors with one entry per output (axis 1), in STATE_NAMES.
PER_OUTPUT_STATE = ("synthesis_carry", "extractor_hidden", "extractor_cell")


def complex_gains(real: np.ndarray, imag: np.ndarray) -> np.ndarray:
    """The step's two gain tensors as one ``complex64`` array of the same shape."""
    gains = np.empty(real.shape, np.complex64)
    gains.real = real
    gains.imag = imag
    return gains


def eda_outputs(model: Model) -> list[OutputSpec]:
    """One output per EDA slot."""
    return list(range(model.config.max_sources))


def cue_outputs(queries: np.ndarray) -> list[OutputSpec]:
    """One output per query row ``[N, E]``."""
    return [np.asarray(row, np.float32) for row in queries]


@dataclass(frozen=True)
class StepOutput:
    """What ``step`` returns for a chunk of ``k`` hops.

    ``audio float32 [outputs, k * hop]``: the model's own synthesis at the model rate;
    ``gains complex64 [outputs, k, bins]``: per hop, the gains that made it from the mixture's
    spectrum (``bins = window / 2 + 1`` at the model rate).
    """

    audio: np.ndarray
    gains: np.ndarray


@dataclass(frozen=True)
class BackendCheckpoint:
    """A backend's whole streaming state and outputs at one moment (see ``restore``)."""

    state: dict[str, np.ndarray]
    specs: list[OutputSpec]


class Backend(Protocol):
    name: str
    hop_samples: int

    def reset(self, queries: np.ndarray | None) -> None: ...

    def configure(
        self, outputs: Sequence[OutputSpec], carry: Sequence[int | None] | None = None
    ) -> None: ...

    def step(self, chunk: np.ndarray) -> StepOutput: ...

    def checkpoint(self) -> BackendCheckpoint: ...

    def restore(self, checkpoint: BackendCheckpoint) -> None: ...

    @property
    def outputs(self) -> int: ...

    @property
    def frame_index(self) -> int: ...

    @property
    def attractors(self) -> np.ndarray: ...

    @property
    def existence(self) -> np.ndarray: ...


class StatefulBackend:
    """State bookkeeping shared by the backends; state tensors are numpy arrays (batch 1).

    The base class for a backend of one's own (``docs/plugins.md``): a subclass implements
    ``_run_hop(samples [1, hop]) -> (audio [outputs, hop], gains complex64 [outputs, bins])``
    over ``self._state`` (the ``STATE_NAMES`` arrays) and ``self._hop_queries()``; reset,
    reconfiguration, checkpoints and the EDA read-outs come from here.
    """

    name = "base"

    def __init__(self, model: Model) -> None:
        self.model = model
        self.hop_samples = model.hop_samples
        self._specs: list[OutputSpec] = []
        self.reset(None)

    def reset(self, queries: np.ndarray | None) -> None:
        """Zero all state; ``queries [N, E]`` for cue outputs, ``None`` for every EDA slot."""
        specs = eda_outputs(self.model) if queries is None else cue_outputs(queries)
        state = self.model.network.init_state(1, len(specs))
        self._state = {name: state[name].cpu().numpy() for name in STATE_NAMES}
        self._set_specs(specs)

    def configure(
        self, outputs: Sequence[OutputSpec], carry: Sequence[int | None] | None = None
    ) -> None:
        """New outputs; output ``i`` keeps the per-output state of old output ``carry[i]``."""
        carry = list(carry) if carry is not None else [None] * len(outputs)
        if len(carry) != len(outputs):
            raise ValueError("carry must name one previous output (or None) per output")
        fresh = self.model.network.init_state(1, len(outputs))
        for name in PER_OUTPUT_STATE:
            old = self._state[name]
            new = fresh[name].cpu().numpy()
            for i, source in enumerate(carry):
                if source is not None:
                    new[:, i] = old[:, source]
            self._state[name] = new
        self._set_specs(list(outputs))

    def checkpoint(self) -> BackendCheckpoint:
        """The state and outputs now. Cheap: state arrays are replaced, never written in place."""
        return BackendCheckpoint(dict(self._state), list(self._specs))

    def restore(self, checkpoint: BackendCheckpoint) -> None:
        """Go back to ``checkpoint``: the next ``step`` computes what it would have then."""
        self._state = dict(checkpoint.state)
        self._set_specs(list(checkpoint.specs))

    def _set_specs(self, specs: list[OutputSpec]) -> None:
        self._specs = specs
        self._eda_positions = np.array(
            [i for i, s in enumerate(specs) if isinstance(s, int)], np.int64
        )
        self._eda_slots = np.array([s for s in specs if isinstance(s, int)], np.int64)
        cue_positions = [i for i, s in enumerate(specs) if not isinstance(s, int)]
        self._cue_positions = np.array(cue_positions, np.int64)
        self._cues = (
            np.stack([specs[i] for i in cue_positions]).astype(np.float32)
            if cue_positions
            else np.zeros((0, self.model.config.embedding_dim), np.float32)
        )
        self._queries = np.zeros((1, len(specs), self.model.config.embedding_dim), np.float32)
        self._queries[0, self._cue_positions] = self._cues

    def _hop_queries(self) -> np.ndarray:
        """``[1, N, E]``: cue rows fixed, EDA rows the attractors held right now."""
        if len(self._eda_slots):
            self._queries[0, self._eda_positions] = self._state["attractors"][0, self._eda_slots]
        return self._queries

    @property
    def outputs(self) -> int:
        return len(self._specs)

    @property
    def specs(self) -> list[OutputSpec]:
        return list(self._specs)

    @property
    def frame_index(self) -> int:
        """Hops processed since the last reset."""
        return int(self._state["frame_index"][0])

    @property
    def attractors(self) -> np.ndarray:
        """Held attractors ``[max_sources + 1, E]`` of the last grid frame."""
        return self._state["attractors"][0]

    @property
    def existence(self) -> np.ndarray:
        """Existence probabilities ``[max_sources + 1]`` of the held attractors."""
        return 1.0 / (1.0 + np.exp(-self._state["existence_logits"][0]))

    def step(self, chunk: np.ndarray) -> StepOutput:
        """``chunk float32 [k * hop]`` → :class:`StepOutput` (raw audio and gains per hop)."""
        hop = self.hop_samples
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.shape[-1] % hop:
            raise ValueError(f"chunk length {chunk.shape[-1]} is not a multiple of {hop}")
        hops = chunk.shape[-1] // hop
        audio = np.empty((self.outputs, chunk.shape[-1]), np.float32)
        gains = np.empty((self.outputs, hops, self.model.config.frequency_bins), np.complex64)
        for index in range(hops):
            span = slice(index * hop, (index + 1) * hop)
            audio[:, span], gains[:, index] = self._run_hop(chunk[None, span])
        return StepOutput(audio, gains)

    def _run_hop(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class TorchBackend(StatefulBackend):
    """Runs :meth:`SeparationNetwork.step_hop` in torch (CPU or CUDA)."""

    name = "torch"

    def __init__(self, model: Model, threads: int | None = 1) -> None:
        if threads:
            torch.set_num_threads(threads)
        super().__init__(model)

    @torch.inference_mode()
    def _run_hop(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        device = self.model.device
        inputs = [torch.from_numpy(samples), torch.from_numpy(self._hop_queries())]
        inputs += [torch.from_numpy(self._state[name]) for name in STATE_NAMES]
        output, real, imag, *state = self.model.network.step_hop(*(t.to(device) for t in inputs))
        self._state = {name: value.cpu().numpy() for name, value in zip(STATE_NAMES, state)}
        return output[0].cpu().numpy(), complex_gains(real[0].cpu().numpy(), imag[0].cpu().numpy())


class OnnxBackend(StatefulBackend):
    """Runs the exported step graph in onnxruntime (CPU, or the CUDA execution provider)."""

    name = "onnxruntime"

    def __init__(
        self,
        model: Model,
        threads: int = 1,
        onnx_path: str | None = None,
        providers: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        from ..export import cached_onnx

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        path = onnx_path or str(cached_onnx(model))
        self.session = ort.InferenceSession(
            path, options, providers=providers or ["CPUExecutionProvider"]
        )
        super().__init__(model)

    def _run_hop(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feeds = dict(self._state)
        feeds["hop_samples"] = samples
        feeds["queries"] = self._hop_queries()
        output, real, imag, *state = self.session.run(None, feeds)
        self._state = dict(zip(STATE_NAMES, state))
        return output[0], complex_gains(real[0], imag[0])


def onnx_backend(model: Model, threads: int = 1) -> OnnxBackend:
    """The ``onnxruntime`` entry point: the CUDA execution provider for a model on CUDA."""
    providers = None
    if model.device.type == "cuda":
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return OnnxBackend(model, threads, providers=providers)


def backend_names() -> list[str]:
    """Every installed backend (entry points of ``rtsep.backends``), sorted; not ``auto``."""
    from ..plugins import BACKENDS_GROUP, registered

    return list(registered(BACKENDS_GROUP))


def resolve_backend_name(name: str) -> str:
    """``auto`` → ``onnxruntime`` when it is installed, else ``torch``; any other name must be
    a registered backend (``ValueError`` naming the installed ones)."""
    if name == "auto":
        try:
            import onnxruntime  # noqa: F401

            return "onnxruntime"
        except ImportError:
            return "torch"
    names = backend_names()
    if name not in names:
        raise ValueError(f"unknown backend {name!r}: choose one of auto, {', '.join(names)}")
    return name


def make_backend(model: Model, name: str = "auto", threads: int = 1) -> Backend:
    """Build the backend called ``name``: ``auto`` or a name registered in the
    ``rtsep.backends`` entry-point group (``torch``, ``onnxruntime``, or a plugin's), by
    calling its factory ``(model, threads)``."""
    from ..plugins import BACKENDS_GROUP, load

    factory = load(BACKENDS_GROUP, resolve_backend_name(name))
    return factory(model, threads)
