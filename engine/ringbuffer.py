"""Single-producer/single-consumer float32 ring buffer of shape ``[channels, capacity]``.

One thread writes (``write``), one other thread reads (``read``, ``peek``, ``discard``); both may
ask ``available``/``space`` at any time. Nothing on these paths allocates an array: reads copy into
an array the caller gives or into one preallocated here, writes copy from the caller's block.

Synchronisation is a pair of monotonic frame counters: ``_written`` (changed only by the writer)
and ``_read`` (changed only by the reader). Python ints never wrap, so ``_written - _read`` is
always the fill level, and ``counter % capacity`` is the array column. The writer copies its
frames in *before* it advances ``_written``; the reader copies frames out *before* it advances
``_read``. Memory-ordering assumption: under the GIL every attribute store is atomic and every
GIL hand-over is a full memory barrier, so the other thread never sees a counter advanced before
the copy it publishes is complete (numpy may release the GIL inside a copy, but the counter store
comes after the copy returns in the same thread). A free-threaded build (PEP 703) would need
explicit atomics here.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Lock-free SPSC ring buffer of float32 audio, ``[channels, capacity_frames]``.

    A write never overwrites unread frames and a read never returns unwritten ones: both move
    at most what fits (``space()`` / ``available()``) and return how much they moved.
    """

    def __init__(self, channels: int, capacity_frames: int) -> None:
        """Allocate the buffer and a read scratch of the same shape (``channels >= 1``,
        ``capacity_frames >= 1``)."""
        if channels < 1 or capacity_frames < 1:
            raise ValueError(
                f"RingBuffer needs channels >= 1 and capacity_frames >= 1, "
                f"got {channels} and {capacity_frames}"
            )
        self._data = np.zeros((channels, capacity_frames), dtype=np.float32)
        self._scratch = np.zeros((channels, capacity_frames), dtype=np.float32)
        self._capacity = capacity_frames
        self._written = 0
        self._read = 0

    @property
    def channels(self) -> int:
        """Number of channels (rows)."""
        return self._data.shape[0]

    @property
    def capacity(self) -> int:
        """Size of the buffer in frames."""
        return self._capacity

    @property
    def frames_written(self) -> int:
        """Total frames written since construction (monotonic)."""
        return self._written

    @property
    def frames_read(self) -> int:
        """Total frames read or discarded since construction (monotonic)."""
        return self._read

    def available(self) -> int:
        """Frames that can be read now."""
        return self._written - self._read

    def space(self) -> int:
        """Frames that can be written now."""
        return self._capacity - (self._written - self._read)

    def write(self, block: np.ndarray) -> int:
        """Copy up to ``space()`` frames of ``block`` (``[channels, frames]``) in; writer only.

        Returns the number of frames written; frames beyond the free space are not written
        (the caller counts them as an overrun).
        """
        frames = min(block.shape[1], self.space())
        start = self._written % self._capacity
        first = min(frames, self._capacity - start)
        self._data[:, start : start + first] = block[:, :first]
        self._data[:, : frames - first] = block[:, first:frames]
        self._written += frames
        return frames

    def peek(self, frames: int, out: np.ndarray | None = None) -> np.ndarray:
        """Copy up to ``frames`` of the oldest unread frames without consuming them; reader only.

        Returns ``out[:, :n]`` with ``n = min(frames, available())``. Without ``out``, the copy
        lands in a preallocated scratch array that the next ``peek``/``read`` overwrites.
        """
        if out is None:
            out = self._scratch
        frames = min(frames, self.available(), out.shape[1])
        start = self._read % self._capacity
        first = min(frames, self._capacity - start)
        out[:, :first] = self._data[:, start : start + first]
        out[:, first:frames] = self._data[:, : frames - first]
        return out[:, :frames]

    def read(self, frames: int, out: np.ndarray | None = None) -> np.ndarray:
        """Like ``peek``, then consume the frames returned; reader only."""
        view = self.peek(frames, out)
        self._read += view.shape[1]
        return view

    def discard(self, frames: int) -> int:
        """Drop up to ``frames`` of the oldest unread frames; reader only. Returns the count."""
        frames = max(0, min(frames, self.available()))
        self._read += frames
        return frames
