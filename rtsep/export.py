"""ONNX export of the streaming step graph, with the state as explicit inputs and outputs.

The graph is one hop of :meth:`rtsep.model.StreamingNetwork.step_hop`: inputs
``hop_samples [1, hop]``, ``queries [1, N, E]`` and the state tensors named in
:data:`rtsep.model.STATE_NAMES`; outputs ``output [1, N, hop]`` (the model-rate audio),
``gains_real`` and ``gains_imag [1, N, bins]`` (the hop's complex gains on the mixture's
spectrum, which the engine applies at the device rate) and the new state under the same names
with the suffix ``_out``. ``N`` (the number of outputs) is dynamic; the batch is 1.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import torch

from .model import STATE_NAMES, Model

INPUT_NAMES = ("hop_samples", "queries", *STATE_NAMES)
OUTPUT_NAMES = ("output", "gains_real", "gains_imag", *(f"{name}_out" for name in STATE_NAMES))
OPSET = 17
#: Revision of the graph's inputs and outputs, part of the cache key: a cached export from
#: before a change (revision 1 had no gains) is never picked up.
GRAPH_REVISION = 2


class _StepGraph(torch.nn.Module):
    def __init__(self, model: Model) -> None:
        super().__init__()
        self.network = model.network

    def forward(self, hop_samples, queries, *state):
        return self.network.step_hop(hop_samples, queries, *state)


def export_onnx(model: Model, path: str | Path) -> Path:
    """Write the step graph of ``model`` to ``path`` (written atomically) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    outputs = model.config.max_sources
    state = model.network.init_state(1, outputs)
    args = (
        torch.zeros(1, model.hop_samples),
        torch.zeros(1, outputs, model.config.embedding_dim),
        *(state[name].cpu() for name in STATE_NAMES),
    )
    dynamic = {
        "queries": {1: "outputs"},
        "synthesis_carry": {1: "outputs"},
        "extractor_hidden": {1: "outputs"},
        "extractor_cell": {1: "outputs"},
    }
    dynamic |= {f"{name}_out": axes for name, axes in dynamic.items() if name in STATE_NAMES}
    dynamic |= {name: {1: "outputs"} for name in ("output", "gains_real", "gains_imag")}
    tmp = path.with_suffix(".tmp")
    network = model.network
    device = network.device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _StepGraph(model).cpu().eval(),
            args,
            str(tmp),
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    network.to(device)
    os.replace(tmp, path)
    return path


def weights_digest(model: Model) -> str:
    """A short hash of the model's weights and config, to key cached exports."""
    digest = hashlib.sha256(repr(model.config.to_dict()).encode())
    for name, tensor in sorted(model.network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_onnx(model: Model) -> Path:
    """The model's ONNX step graph, exported once per set of weights into a user cache folder
    (``$RTSEP_CACHE`` or ``~/.cache/rtsep``)."""
    folder = Path(os.environ.get("RTSEP_CACHE", Path.home() / ".cache" / "rtsep"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir()) / "rtsep-cache"
        folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{weights_digest(model)}-opset{OPSET}-r{GRAPH_REVISION}.onnx"
    return path if path.exists() else export_onnx(model, path)
