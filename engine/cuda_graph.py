"""One hop of the torch step as a CUDA graph: captured once for a batch shape, replayed per hop.

At small batches the eager torch step on a GPU is bound by kernel launches (hundreds of small
kernels per hop); a graph launches them all at once. The graph reads and writes static device
buffers: the hop's samples are copied into one, the state lives in others and the graph
updates it in place, the output lands in a third. Untested on a device so far (no session has
been lent one since it was written): ``tests/test_gpu.py`` checks it against the eager step,
``scripts/device_session.sh`` times both at B = 1.

:class:`CudaGraphBackend` is the same step for one stream behind the :class:`Backend` interface,
registered as the ``torch-cuda-graphs`` backend (``rtsep separate/live/batch --device cuda
--backend torch-cuda-graphs``); :class:`~rtsep.engine.BatchStreamer` takes ``cuda_graphs=True``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..model import STATE_NAMES, Model, StreamingNetwork
from .backends import TorchBackend, complex_gains

#: Eager runs on a side stream before capture (lazy initialisation: cuDNN, allocator).
WARMUP_HOPS = 3

#: ``queries_of(state) -> queries [B, N, E]``, traced into the graph.
QueryFunction = Callable[[dict[str, torch.Tensor]], torch.Tensor]


class CudaGraphHop:
    """``network.step_hop`` for one batch shape, captured as a CUDA graph.

    Args:
        network: the model's network, on a CUDA device.
        state: the streaming state to start from (``init_state(B, N)`` layout), copied into
            the graph's buffers; read the current state from :attr:`state`.
        queries_of: the hop's queries from the state (cue rows fixed, EDA rows the held
            attractors); runs inside the graph, so tensor operations only.
    """

    def __init__(
        self,
        network: StreamingNetwork,
        state: dict[str, torch.Tensor],
        queries_of: QueryFunction,
    ) -> None:
        if network.device.type != "cuda":
            raise ValueError(f"CUDA graphs need the model on a CUDA device, not {network.device}")
        self._network = network
        self._queries_of = queries_of
        self.state = {name: state[name].clone() for name in STATE_NAMES}
        batch = self.state["input_history"].shape[0]
        self._samples = torch.zeros(batch, network.config.hop_samples, device=network.device)
        start = {name: value.clone() for name, value in self.state.items()}
        side = torch.cuda.Stream(network.device)
        side.wait_stream(torch.cuda.current_stream(network.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_HOPS):
                self._hop()
            for name in STATE_NAMES:  # the warm-up must not advance the streams
                self.state[name].copy_(start[name])
        torch.cuda.current_stream(network.device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):  # records the kernels, runs none of them
            self._output = self._hop()

    def step(self, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``samples [B, hop]`` → ``(output [B, N, hop], gains_real, gains_imag [B, N, bins])``
        (buffers the next step overwrites); :attr:`state` is advanced by one hop."""
        self._samples.copy_(samples)
        self._graph.replay()
        return self._output

    def _hop(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        queries = self._queries_of(self.state)
        values = (self.state[name] for name in STATE_NAMES)
        output, real, imag, *new = self._network.step_hop(self._samples, queries, *values)
        for name, value in zip(STATE_NAMES, new):
            self.state[name].copy_(value)
        return output, real, imag


class CudaGraphBackend(TorchBackend):
    """The torch step of one stream, replayed as a CUDA graph (backend ``torch-cuda-graphs``).

    A graph is captured per output count, at the first hop that runs with that many outputs
    (a cue change to a new count pays one capture on that hop). The state stays the numpy
    bookkeeping of :class:`~rtsep.engine.backends.StatefulBackend`, so cue changes,
    checkpoints and crossfades work as with ``torch``: each hop copies it into the graph's
    buffers and back, as the eager :class:`~rtsep.engine.TorchBackend` copies it to the device
    and back.

    Args:
        model: the separation model, on a CUDA device (``ValueError`` otherwise).
        threads: torch CPU threads (the host side of each hop), as for ``torch``.
    """

    name = "torch-cuda-graphs"

    def __init__(self, model: Model, threads: int | None = 1) -> None:
        if model.device.type != "cuda":
            raise ValueError(
                f"the {self.name} backend needs the model on a CUDA device (--device cuda), "
                f"not {model.device}"
            )
        self._graphs: dict[int, tuple[CudaGraphHop, torch.Tensor]] = {}
        super().__init__(model, threads)

    @torch.inference_mode()
    def _run_hop(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        graph, queries = self._graph_for(self.outputs)
        queries.copy_(torch.from_numpy(self._hop_queries()))
        for name in STATE_NAMES:
            graph.state[name].copy_(torch.from_numpy(self._state[name]))
        # The hop's samples are copied into the graph's buffer.
        output, real, imag = graph.step(torch.from_numpy(samples))
        self._state = {name: graph.state[name].cpu().numpy() for name in STATE_NAMES}
        gains = complex_gains(real[0].cpu().numpy(), imag[0].cpu().numpy())
        return output[0].cpu().numpy(), gains

    def _graph_for(self, outputs: int) -> tuple[CudaGraphHop, torch.Tensor]:
        """The graph for ``outputs`` outputs and the query buffer it reads, captured once."""
        if outputs not in self._graphs:
            device = self.model.device
            queries = torch.zeros(1, outputs, self.model.config.embedding_dim, device=device)
            state = {name: torch.from_numpy(self._state[name]).to(device) for name in STATE_NAMES}
            graph = CudaGraphHop(self.model.network, state, lambda _state: queries)
            self._graphs[outputs] = (graph, queries)
        return self._graphs[outputs]
