"""Engines of several streams sharing one batched model call per hop.

Each stream keeps its own :class:`~rtsep.engine.runtime.Engine` (resampling, routing,
tracker, report) and runs on its own thread; only the network step is shared. The engine's
backend is a :class:`GroupMember`: its ``step`` hands the hop to the :class:`StepGroup` and
waits until every member of the group has handed in its hop, then one
:meth:`~rtsep.model.StreamingNetwork.step_hop` call over ``[B, ...]`` (torch, on the model's
device) steps them all and each member gets its own row back. A member's state stays its own
(numpy, batch 1, as :class:`~rtsep.engine.backends.TorchBackend` keeps it) and is stacked per
hop, so the rows are exactly what each stream computes alone, members may leave at any time
(a finished or failed stream) and the batch shrinks with them.

All members must be at the same hop (the network's ``frame_index`` is one value for the whole
batch): they join before the first hop and then step in lock-step. ``rtsep batch --streams``
(:func:`rtsep.batch.separate_group`) gives each file's engine its member through
``run_file``'s ``on_start`` hook, before the first hop. On a GPU every hop copies the states to
the device and back (:class:`~rtsep.engine.BatchStreamer` keeps them there).
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from ..model import STATE_NAMES, Model
from .backends import OutputSpec, StatefulBackend, complex_gains


class GroupMember(StatefulBackend):
    """One stream's backend inside a :class:`StepGroup` (the :class:`Backend` protocol)."""

    name = "torch-batched"

    def __init__(self, model: Model, group: StepGroup) -> None:
        self._group = group
        super().__init__(model)

    def _run_hop(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._group.run_hop(self, samples)


class StepGroup:
    """Up to ``streams`` engine backends stepped together, one batched torch call per hop.

    Each of the ``streams`` threads calls :meth:`join` once (a new member, configured with the
    outputs its engine planned) or :meth:`leave` with ``None`` (its stream never started: a
    file that could not be read), and every member :meth:`leave` s when its stream is done.
    No hop runs before every thread has joined or left; then a hop runs as soon as every
    member has handed one in. Every member must have the same number of outputs.

    Args:
        model: the separation model; the step runs on its device.
        streams: how many threads will join or leave.
    """

    def __init__(self, model: Model, streams: int) -> None:
        self.model = model
        self._undecided = streams  # threads that have neither joined nor left yet
        self._members: list[GroupMember] = []
        self._hops: dict[GroupMember, np.ndarray] = {}  # hop samples [1, hop] handed in
        # (raw output [N, hop], gains [N, bins]) per member
        self._outputs: dict[GroupMember, tuple[np.ndarray, np.ndarray]] = {}
        self._error: BaseException | None = None
        self._hop_count = 0
        self._changed = threading.Condition()
        self._axes = _batch_axes(model)

    def join(self, specs: list[OutputSpec]) -> GroupMember:
        """A new member with outputs ``specs`` (the engine's plan), zero state."""
        member = GroupMember(self.model, self)
        member.configure(specs)
        with self._changed:
            self._undecided -= 1
            self._members.append(member)
            self._step_if_ready()
        return member

    def leave(self, member: GroupMember | None) -> None:
        """``member`` is done (``None``: a thread whose stream never joined)."""
        with self._changed:
            if member is None:
                self._undecided -= 1
            elif member in self._members:
                self._members.remove(member)
                self._hops.pop(member, None)
            self._step_if_ready()

    def run_hop(self, member: GroupMember, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``samples float32 [1, hop]`` of ``member`` → its raw output ``[N, hop]`` and gains
        ``complex64 [N, bins]``, once the whole group has stepped (the member's state is
        updated)."""
        with self._changed:
            hop = self._hop_count
            self._hops[member] = samples
            self._step_if_ready()
            while self._hop_count == hop and self._error is None:
                self._changed.wait()
            if member not in self._outputs:
                raise RuntimeError(f"the batched step failed: {self._error}") from self._error
            return self._outputs.pop(member)

    def _step_if_ready(self) -> None:
        """With the lock held: run the hop when nobody is undecided and every member has one."""
        members = [m for m in self._members if m in self._hops]
        if self._undecided or not members or len(members) < len(self._members):
            return
        try:
            self._step(members)
        except Exception as error:  # every waiting member raises it
            self._error = error
        self._hops.clear()
        self._hop_count += 1
        self._changed.notify_all()

    @torch.inference_mode()
    def _step(self, members: list[GroupMember]) -> None:
        if len({m.outputs for m in members}) != 1:
            raise ValueError("every stream of a step group needs the same number of outputs")
        if len({m.frame_index for m in members}) != 1:
            raise RuntimeError("the streams of a step group are not at the same hop")
        device = self.model.device
        inputs = [
            np.concatenate([self._hops[m] for m in members]),
            np.concatenate([m._hop_queries() for m in members]),
        ]
        for name in STATE_NAMES:
            axis = self._axes[name]
            states = [m._state[name] for m in members]
            inputs.append(states[0] if axis is None else np.concatenate(states, axis=axis))
        output, real, imag, *state = self.model.network.step_hop(
            *(torch.from_numpy(np.ascontiguousarray(x)).to(device) for x in inputs)
        )
        output = output.cpu().numpy()
        gains = complex_gains(real.cpu().numpy(), imag.cpu().numpy())
        rows = {
            name: _split(value.cpu().numpy(), self._axes[name], len(members))
            for name, value in zip(STATE_NAMES, state)
        }
        for index, member in enumerate(members):
            member._state = {name: rows[name][index] for name in STATE_NAMES}
            self._outputs[member] = (output[index], gains[index])


def _batch_axes(model: Model) -> dict[str, int | None]:
    """Per state tensor, the axis that grows with the batch (``None``: one for all streams,
    ``frame_index``), found by comparing the zero state of one and of two streams."""
    outputs = model.config.max_sources
    one = model.network.init_state(1, outputs)
    two = model.network.init_state(2, outputs)
    axes: dict[str, int | None] = {}
    for name in STATE_NAMES:
        grown = [i for i, (a, b) in enumerate(zip(one[name].shape, two[name].shape)) if a != b]
        axes[name] = grown[0] if grown else None
    return axes


def _split(value: np.ndarray, axis: int | None, streams: int) -> list[np.ndarray]:
    if axis is None:
        return [value] * streams
    return np.split(value, streams, axis=axis)
