"""One hop of the torch step as a CUDA graph: captured once for a batch shape, replayed per hop.

At small batches the eager torch step on a GPU is bound by kernel launches (hundreds of small
kernels per hop); a graph launches them all at once. The graph reads and writes static device
buffers: the hop's samples are copied into one, the state lives in others and the graph
updates it in place, the output lands in a third. Untested on a device so far (no session has
been lent one since it was written): ``tests/test_gpu.py`` checks it against the eager step,
``scripts/device_session.sh`` times both at B = 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..model import STATE_NAMES, StreamingNetwork

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

    def step(self, samples: torch.Tensor) -> torch.Tensor:
        """``samples [B, hop]`` → ``output [B, N, hop]`` (a buffer the next step overwrites);
        :attr:`state` is advanced by one hop."""
        self._samples.copy_(samples)
        self._graph.replay()
        return self._output

    def _hop(self) -> torch.Tensor:
        queries = self._queries_of(self.state)
        values = (self.state[name] for name in STATE_NAMES)
        output, *new = self._network.step_hop(self._samples, queries, *values)
        for name, value in zip(STATE_NAMES, new):
            self.state[name].copy_(value)
        return output
